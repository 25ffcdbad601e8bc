"""`GET /_mercato/contacts/v1/users/{user_id}/friends`: the commerce appservice's Circle asks
who a user's friends are (the opted-in contacts their imports found, and who found them),
with its own token (`contacts.circle_token`), never the bridge's as_token."""

from __future__ import annotations

from aiohttp import web

from bridges.contacts.api.routes import CONTEXT, SERVICE_PREFIX, bearer, route
from bridges.contacts.db.friends import friends_of
from mercato.commands import ArgumentError, matrix_user_id
from mercato.http_api import ApiError, Spec, same_secret


@route("GET", f"{SERVICE_PREFIX}/users/{{user_id}}/friends", Spec(
    "The opted-in contacts found for a user and the people who found them: each with "
    "`found_by` (you, them or both); for the Circle (bearer: contacts.circle_token)",
    auth="service"))
async def friends(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if not same_secret(bearer(request), ctx.config.contacts.circle_token):
        raise ApiError("This token may not ask who a user's friends are.",
                       errcode="M_FORBIDDEN", status=403)
    try:
        user_id = matrix_user_id(request.match_info["user_id"])
    except ArgumentError:
        raise ApiError("The user must be a Matrix ID such as @alice:example.org.",
                       errcode="M_INVALID_PARAM") from None
    found = await friends_of(ctx.db, user_id)
    return web.json_response({"user_id": user_id, "friends": [
        {"user_id": friend, "found_by": "both" if len(how) > 1 else next(iter(how))}
        for friend, how in sorted(found.items())]})
