"""Who is signed in to Mercato's web pages, and the CSRF tokens their forms carry.

A session is a random ID in the `mercato_session` cookie (HttpOnly, SameSite=Lax, Secure over
https); the commerce database keeps only its hash, with the Matrix user it belongs to. It
ends after a week unused or a month in all, or on logout. Every form carries `csrf_token`
(bound to the browser's `mercato_csrf` secret and its session) and every POST handler calls
`check_csrf`, which also refuses another site's Origin or Referer.

The pages' interface:

    user = await signed_in_user(request)          # "@alice:example.org" or None
    user = await require_user(request)            # or a redirect to the sign-in page
    token = csrf_token(request)                   # put in every form (page.render does)
    form = await check_csrf(request)              # the POSTed form, or a 403 page
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from appservices.commerce.http import CONTEXT
from appservices.commerce.shops.storage import now_ms
from appservices.commerce.web import rules
from appservices.commerce.web import storage as rows
from appservices.commerce.web.errors import WebError
from mercato.logging import get_logger

log = get_logger(__name__)

_NEW_BROWSER_SECRET = web.RequestKey("mercato_web_new_csrf_secret", str)
_COOKIE_GONE = web.RequestKey("mercato_web_session_ended", bool)


@dataclass(frozen=True)
class WebSession:
    user_id: str
    how: str
    created_at: int


_LOADED: web.RequestKey[WebSession | None] = web.RequestKey("mercato_web_session")


def _site_url(request: web.Request) -> str:
    return request.app[CONTEXT].config.site_url


def csrf_key(request: web.Request) -> bytes:
    """The key CSRF tokens are signed with, derived from the commerce appservice's secret."""
    return rules.csrf_key(request.app[CONTEXT].config.as_token)


def _browser_secret(request: web.Request) -> str:
    existing = request.get(_NEW_BROWSER_SECRET) or request.cookies.get(rules.CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return str(existing)
    secret = rules.new_secret()
    request[_NEW_BROWSER_SECRET] = secret  # the middleware sets the cookie on the answer
    return secret


def _session_id(request: web.Request) -> str | None:
    if request.get(_COOKIE_GONE):
        return None
    value = request.cookies.get(rules.SESSION_COOKIE)
    return value if value and len(value) <= 100 else None


async def current_session(request: web.Request) -> WebSession | None:
    """The request's live session, read once per request (and its last use recorded)."""
    if _LOADED in request:
        found: WebSession | None = request[_LOADED]
        return found
    session: WebSession | None = None
    raw = _session_id(request)
    if raw:
        db = request.app[CONTEXT].db
        row = await rows.get_session(db, rules.hash_secret(raw))
        now = now_ms()
        if row and rules.session_alive(row.created_at, row.last_seen_at, now):
            session = WebSession(user_id=row.user_id, how=row.how, created_at=row.created_at)
            if rules.needs_touch(row.last_seen_at, now):
                await rows.touch_session(db, row.id_hash, now)
        elif row:
            await rows.delete_session(db, row.id_hash)
    request[_LOADED] = session
    return session


async def signed_in_user(request: web.Request) -> str | None:
    """The Matrix user ID signed in on this browser, or None."""
    session = await current_session(request)
    return session.user_id if session else None


async def require_user(request: web.Request) -> str:
    """The signed-in user; otherwise a redirect (303) to the sign-in page, which comes back
    to this page afterwards."""
    user = await signed_in_user(request)
    if user is None:
        raise web.HTTPSeeOther(signin_url(request.path_qs))
    return user


def signin_url(next_path: str) -> str:
    return f"{rules.SIGNIN_PATH}?{urlencode({'next': rules.safe_next(next_path)})}"


def csrf_token(request: web.Request) -> str:
    """The CSRF token for this browser and session: every form posts it as `csrf_token`."""
    return rules.csrf_token(csrf_key(request), _browser_secret(request), _session_id(request))


def allowed_origins(request: web.Request) -> tuple[str, ...]:
    """This site's origins: the configured public URL and the address the request came to."""
    here = f"{request.scheme}://{request.host}".lower()
    return tuple({rules.origin_of(_site_url(request)), here})


Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


async def check_csrf(request: web.Request, form: Form | None = None) -> Form:
    """The POSTed form if it carries this browser's CSRF token and comes from this site;
    otherwise a 403 page (WebError), and the handler changes nothing."""
    if form is None:
        form = await request.post()
    sent = form.get(rules.CSRF_FIELD)
    token_ok = rules.csrf_matches(csrf_key(request), request.cookies.get(rules.CSRF_COOKIE),
                                  _session_id(request), sent if isinstance(sent, str) else None)
    origin_ok = rules.same_origin_request(request.headers.get("Origin"),
                                          request.headers.get("Referer"),
                                          allowed_origins(request))
    if not (token_ok and origin_ok):
        log.info("web.csrf_refused", path=request.path, token=token_ok, origin=origin_ok)
        raise WebError(403, "This form has expired",
                       "Nothing was changed: the form was not sent from this page as it was "
                       "shown to you (it may be old, or another site sent it). Go back, reload "
                       "the page and send it again.",
                       action_href=request.path if request.method == "GET" else "/",
                       action_text="Start again")
    return form


# -- starting and ending sessions (the sign-in routes) --------------------------------------

async def start_session(request: web.Request, response: web.StreamResponse, user_id: str,
                        how: str, *, embedded: bool = False) -> None:
    """Sign `user_id` in on this browser: a new session row and its cookie on `response`."""
    raw = rules.new_secret()
    await rows.insert_session(request.app[CONTEXT].db, rules.hash_secret(raw), user_id, how,
                              now_ms())
    set_session_cookie(request, response, raw, embedded=embedded)
    log.info("web.signed_in", user_id=user_id, how=how)


def set_session_cookie(request: web.Request, response: web.StreamResponse, raw: str, *,
                       embedded: bool = False) -> None:
    flags = rules.session_cookie_flags(_site_url(request), embedded=embedded)
    response.set_cookie(rules.SESSION_COOKIE, raw, max_age=rules.SESSION_MAX_MS // 1000,
                        path="/", httponly=True, secure=flags.secure, samesite=flags.samesite,
                        partitioned=flags.partitioned or None)


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Sign this browser out: its session row deleted and its cookie cleared."""
    raw = _session_id(request)
    if raw:
        await rows.delete_session(request.app[CONTEXT].db, rules.hash_secret(raw))
    request[_COOKIE_GONE] = True
    request[_LOADED] = None
    response.del_cookie(rules.SESSION_COOKIE, path="/")


def set_browser_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Give the browser its CSRF secret if this request made one (the middleware calls it)."""
    secret = request.get(_NEW_BROWSER_SECRET)
    if not secret or response.prepared:
        return
    flags = rules.session_cookie_flags(_site_url(request), embedded=True)
    response.set_cookie(rules.CSRF_COOKIE, secret, path="/", httponly=True,
                        secure=flags.secure, samesite=flags.samesite,
                        partitioned=flags.partitioned or None)
