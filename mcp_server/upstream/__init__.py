"""Clients for the vendors' HTTP APIs: one module each, sharing the request path in `http`."""
