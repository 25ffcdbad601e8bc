"""Who is calling the commerce API: the operator, the shop bot for a user, or a shop key."""

from __future__ import annotations

from aiohttp import web

from appservices.commerce.config import CommerceConfig
from appservices.commerce.errors import CommerceError, InvalidInput
from appservices.commerce.shops import storage as store
from appservices.commerce.shops.operations import Principal, validate_user_id
from mercato.db import Database
from mercato.http_api import bearer_token, same_secret

ACTING_USER_HEADER = "X-Mercato-Acting-User"


class Unauthorized(CommerceError):
    status = 401
    errcode = "M_UNKNOWN_TOKEN"


async def principal_from_request(request: web.Request, db: Database,
                                 config: CommerceConfig) -> Principal | None:
    """None for an anonymous caller; raises Unauthorized for a token that is not valid."""
    token = bearer_token(request)
    if token is None:
        if request.headers.get("Authorization"):
            raise Unauthorized("Use 'Authorization: Bearer <token>'.", errcode="M_MISSING_TOKEN")
        return None
    if same_secret(token, config.operator_token):
        acting = request.headers.get(ACTING_USER_HEADER, "")
        return Principal(kind="operator", user_id=acting)
    if same_secret(token, config.service_token):
        acting_for = request.headers.get(ACTING_USER_HEADER)
        if not acting_for:
            raise Unauthorized(f"The service token needs the {ACTING_USER_HEADER} header "
                               "naming the Matrix user it acts for.",
                               errcode="M_MISSING_PARAM", status=400)
        return Principal(kind="user", user_id=validate_user_id(acting_for, ACTING_USER_HEADER))
    found = await store.lookup_api_key(db, token) if token.startswith("mk_") else None
    if found is None:
        raise Unauthorized("This token is unknown or the API key was revoked; create a new "
                           "key with the shop bot or the API.")
    merchant, key = found
    return Principal(kind="api_key", key_slug=merchant.slug, key_role=key.role,
                     key_id=key.key_id)


def require_user(principal: Principal | None, why: str) -> Principal:
    """A Matrix user acting through the service token; `why` says who the route is for."""
    principal = require_principal(principal)
    if principal.kind != "user":
        raise InvalidInput("Authorization", f"{why} (service token)")
    return principal


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthorized("Sign this request: 'Authorization: Bearer <API key>'.",
                           errcode="M_MISSING_TOKEN")
    return principal
