"""Partnerships (合作区域): alliances of regions that share a catalogue and recognise admissions."""
