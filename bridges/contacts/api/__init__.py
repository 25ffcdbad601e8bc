"""The bridge's HTTP API on its appservice port: the Matrix identity service (v2 lookup)
for clients, and a small service API for `mercato contacts`, behind the as_token."""

from bridges.contacts.api.routes import ROUTES, ApiContext, add_api_routes

__all__ = ["ROUTES", "ApiContext", "add_api_routes"]
