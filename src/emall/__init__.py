"""emall: a cross-region government procurement e-mall (政府采购电子卖场).

The library holds the domain: identity, catalogue, ordering and search sync. It never imports
an HTTP framework; the Litestar app in ``api/`` is one way to serve it.
"""

__version__ = "0.1.0"
