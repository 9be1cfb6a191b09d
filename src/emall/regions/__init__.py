"""Administrative divisions (行政区划): lookups and the region checks every feature uses."""
