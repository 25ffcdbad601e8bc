"""The reference for the intake benchmark: an aiohttp handler that only parses the JSON."""

import sys

from aiohttp import web


async def transaction(request: web.Request) -> web.Response:
    body = await request.json()
    if not isinstance(body.get("events"), list):
        return web.json_response({"errcode": "M_BAD_JSON"}, status=400)
    return web.json_response({})


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_put("/_matrix/app/v1/transactions/{txn_id}", transaction)
    app.router.add_get("/health", lambda _: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                print=lambda *_: None)


if __name__ == "__main__":
    main()
