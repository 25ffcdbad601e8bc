"""Read a file someone sent, chunk by chunk, from the homeserver's media repository.

Streaming, with a byte limit enforced while reading (a declared size can lie), so
neither a 50 MB upload nor a lying one is ever held in memory or written to disk.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp

from mercato.matrix.paths import matrix_path

_MXC = re.compile(r"^mxc://([A-Za-z0-9.:\[\]-]+)/([A-Za-z0-9_-]+)$")
CHUNK_BYTES = 64 * 1024


class MediaError(Exception):
    """The file cannot be fetched; the message is fit to show the sender."""


class TooLarge(MediaError):
    pass


def media_paths(mxc: str) -> list[str]:
    """Where the homeserver serves a file: authenticated media first, then the legacy path."""
    match = _MXC.match(mxc)
    if not match:
        raise MediaError("The attachment has no valid mxc:// address.")
    server, media_id = match.groups()
    return [str(matrix_path("client", "v1", "media", "download", server, media_id)),
            str(matrix_path("media", "v3", "download", server, media_id))]


async def stream_media(session: aiohttp.ClientSession, homeserver_url: str, token: str,
                       mxc: str, max_bytes: int) -> AsyncIterator[bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    for path in media_paths(mxc):
        async with session.get(homeserver_url + path, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=300)) as resp:
            if resp.status in (404, 405) and path.startswith("/_matrix/client/v1"):
                body = await resp.json(content_type=None) if resp.content_length != 0 else {}
                if isinstance(body, dict) and body.get("errcode") == "M_UNRECOGNIZED":
                    continue  # an older homeserver without authenticated media
            if resp.status == 404:
                raise MediaError("The file is no longer on the server; send it again.")
            if resp.status != 200:
                raise MediaError(f"The server would not give me the file (HTTP {resp.status}); "
                                 "send it again in a moment.")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise TooLarge()
            total = 0
            async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise TooLarge()
                yield chunk
            return
