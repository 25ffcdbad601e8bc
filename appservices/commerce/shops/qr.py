"""QR codes of a shop's follow link, drawn with segno (a maintained, pure-Python QR
library): PNG for printing services and chat, SVG for the poster and any size. Pure.

The channel's QR code holds its matrix.to link, which opens the channel in the scanner's
own Matrix client; the poster's holds Mercato's counted link (/s/<slug>/follow?from=
poster), which redirects to the same matrix.to link.
"""

from __future__ import annotations

import io
from urllib.parse import quote

import segno

ERROR_LEVEL = "m"  # survives a crease or a smudge on a printed card (15% of the code)
POSTER_SOURCE = "poster"


def channel_link(alias: str) -> str:
    """The matrix.to link that opens the channel in any Matrix client (the alias's # is
    written %23, as the storefront's follow link has it)."""
    return "https://matrix.to/#/" + alias.replace("#", "%23", 1)


def counted_link(site_url: str, slug: str, source: str = POSTER_SOURCE) -> str:
    """Mercato's own link for printed material: counts the scan, then opens matrix.to."""
    return f"{site_url.rstrip('/')}/s/{quote(slug)}/follow?from={quote(source)}"


def png(data: str, scale: int = 10) -> bytes:
    out = io.BytesIO()
    segno.make(data, error=ERROR_LEVEL, micro=False).save(out, kind="png", scale=scale,
                                                          border=4)
    return out.getvalue()


def svg(data: str, *, inline: bool = False) -> str:
    """An SVG QR code; `inline` for an HTML page (no XML declaration, sized by its
    viewBox so CSS sets its size)."""
    out = io.BytesIO()
    segno.make(data, error=ERROR_LEVEL, micro=False).save(
        out, kind="svg", xmldecl=not inline, svgns=True, scale=4, border=4,
        omitsize=inline, svgclass="qr", light="#fff", title="QR code")
    return out.getvalue().decode("utf-8")
