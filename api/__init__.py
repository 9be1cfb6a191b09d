"""The emall HTTP API: a Litestar app around the ``emall`` library."""
