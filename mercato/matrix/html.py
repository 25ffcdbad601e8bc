"""HTML that is safe in `formatted_body`: the Matrix spec's allowlist, enforced by nh3.

Whatever a merchant typed is escaped or stripped here before it reaches any client.
"""

from __future__ import annotations

import nh3

# Client-Server API, "m.room.message msgtypes": the tags clients should render.
MATRIX_TAGS = frozenset({
    "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup",
    "sub", "li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div", "table",
    "thead", "tbody", "tr", "th", "td", "caption", "pre", "span", "img", "details",
    "summary",
})

MATRIX_ATTRIBUTES = {
    "span": {"data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"},
    "div": {"data-mx-maths"},
    "a": {"href", "target"},
    "img": {"width", "height", "alt", "title", "src"},
    "ol": {"start"},
    "code": {"class"},
}

URL_SCHEMES = frozenset({"https", "http", "ftp", "mailto", "magnet", "mxc"})


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # The spec only allows images from the media repository: no tracking pixels.
    if tag == "img" and attribute == "src" and not value.startswith("mxc://"):
        return None
    return value


def sanitize_html(html: str) -> str:
    """Keep only the spec's tags and attributes; links get rel=noopener."""
    return nh3.clean(
        html,
        tags=set(MATRIX_TAGS),
        attributes={tag: set(attrs) for tag, attrs in MATRIX_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=_filter_attribute,
    )
