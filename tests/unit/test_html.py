"""formatted_body HTML: the Matrix allowlist survives, everything else is stripped or escaped."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.matrix.html import MATRIX_ATTRIBUTES, MATRIX_TAGS, sanitize_html


class _Elements(HTMLParser):
    """The start tags of a fragment, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


@pytest.mark.parametrize("html", [
    "<p>Hello <b>bold</b> <i>it</i> <u>u</u> <s>s</s> <del>d</del> <em>e</em></p>",
    "<h1>Sale</h1><h6>small</h6><blockquote>quote</blockquote><hr><br>",
    "<ul><li>one</li></ul><ol start=\"3\"><li>three</li></ol>",
    "<table><caption>c</caption><thead><tr><th>h</th></tr></thead>"
    "<tbody><tr><td>d</td></tr></tbody></table>",
    "<pre><code class=\"language-python\">x = 1</code></pre>",
    "<details><summary>More</summary>hidden</details>",
    "<span data-mx-color=\"#ff0000\" data-mx-bg-color=\"#000000\">red</span>",
    "<span data-mx-spoiler=\"reason\">secret</span>",
    "<sup>2</sup><sub>i</sub><strong>s</strong><div>block</div>",
    "<img src=\"mxc://example.org/abc\" alt=\"shoe\" width=\"32\" height=\"32\" title=\"t\">",
])
def test_allowed_markup_is_kept(html: str) -> None:
    assert _elements(sanitize_html(html)) == _elements(html)


def test_links_keep_their_url_and_get_noopener() -> None:
    out = sanitize_html('<a href="https://shop.example/p/1" target="_blank">Buy</a>')
    ((tag, attrs),) = _elements(out)
    assert tag == "a"
    assert attrs["href"] == "https://shop.example/p/1"
    assert attrs["target"] == "_blank"
    assert attrs["rel"] == "noopener noreferrer"
    assert out.endswith(">Buy</a>")


@pytest.mark.parametrize("url", ["mailto:shop@example.com", "mxc://example.org/file",
                                 "http://shop.example", "magnet:?xt=urn:btih:abc"])
def test_allowed_link_schemes_are_kept(url: str) -> None:
    ((_, attrs),) = _elements(sanitize_html(f'<a href="{url}">x</a>'))
    assert attrs["href"] == url


def test_script_is_removed_with_its_content() -> None:
    assert sanitize_html("<p>before</p><script>alert(1)</script><p>after</p>") == \
        "<p>before</p><p>after</p>"
    assert "alert" not in sanitize_html("<SCRIPT src=x>alert(1)</SCRIPT>")


@pytest.mark.parametrize("html", [
    '<b onclick="steal()">x</b>',
    '<img src="mxc://a/b" onerror="steal()">',
    '<a href="https://x.org" onmouseover="steal()">x</a>',
    '<span data-mx-color="#f00" ONLOAD="steal()">x</span>',
])
def test_event_handler_attributes_are_removed(html: str) -> None:
    out = sanitize_html(html)
    assert "steal" not in out
    for _, attrs in _elements(out):
        assert not [name for name in attrs if name.startswith("on")]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)",
                                 " javascript:alert(1)", "java&#x09;script:alert(1)",
                                 "data:text/html;base64,PHNjcmlwdD4=", "vbscript:msgbox(1)"])
def test_dangerous_link_schemes_are_removed(url: str) -> None:
    out = sanitize_html(f'<a href="{url}">click</a>')
    ((tag, attrs),) = _elements(out)
    assert tag == "a"
    assert "href" not in attrs
    assert "click" in out


@pytest.mark.parametrize("src", ["https://tracker.example/pixel.gif", "http://x/y.png",
                                 "data:image/png;base64,AAAA", "//tracker.example/p.gif"])
def test_images_only_from_the_media_repository(src: str) -> None:
    ((tag, attrs),) = _elements(sanitize_html(f'<img src="{src}" alt="pic">'))
    assert tag == "img"
    assert "src" not in attrs
    assert attrs["alt"] == "pic"


def test_font_is_stripped_but_its_text_kept() -> None:
    assert sanitize_html('<font color="red">on sale</font>') == "on sale"


def test_style_and_unknown_attributes_are_removed() -> None:
    out = sanitize_html('<span style="position:fixed" class="x" data-mx-color="#f00">'
                        'hi</span><p style="color:red">p</p>')
    assert out == '<span data-mx-color="#f00">hi</span><p>p</p>'


@pytest.mark.parametrize("html", ["<iframe src=https://x></iframe>", "<object></object>",
                                  "<style>p{}</style>", "<form><input></form>",
                                  "<svg onload=steal()></svg>", "<math></math>"])
def test_unlisted_elements_are_removed(html: str) -> None:
    assert _elements(sanitize_html(html)) == []


def test_text_is_escaped() -> None:
    assert sanitize_html("5 < 6 & 7 > 3") == "5 &lt; 6 &amp; 7 &gt; 3"
    assert sanitize_html("&lt;script&gt;") == "&lt;script&gt;"


def test_comments_are_removed() -> None:
    assert sanitize_html("a<!-- <script>x</script> -->b") == "ab"


_WRAPPERS = [
    "{}",
    "<p>{}</p>",
    "<script>{}</script>",
    "<b onclick='{}'>x</b>",
    '<a href="javascript:{}">x</a>',
    '<a href="{}">x</a>',
    '<img src="{}">',
    "<span style='{}'>x</span>",
    "<div><script>{}</script>{}</div>",
    "<textarea>{}</textarea>",
    "<noscript>{}</noscript>",
    "<svg><script>{}</script></svg>",
]
_SAFE_ATTRIBUTE_NAMES = {name for names in MATRIX_ATTRIBUTES.values() for name in names} | {"rel"}


@given(text=st.text(), wrapper=st.sampled_from(_WRAPPERS))
def test_no_script_or_javascript_survives_any_text(text: str, wrapper: str) -> None:
    out = sanitize_html(wrapper.replace("{}", text))
    # Text is escaped, so "<script" can only appear as a real tag.
    assert "<script" not in out.lower()
    for tag, attrs in _elements(out):
        assert tag in MATRIX_TAGS
        assert set(attrs) <= _SAFE_ATTRIBUTE_NAMES
        for name, value in attrs.items():
            assert not (value or "").strip().lower().startswith("javascript:"), (name, value)
        if tag == "img" and "src" in attrs:
            assert (attrs["src"] or "").startswith("mxc://")
    # "javascript:" may stay as escaped text, never as a link target.
    assert 'href="javascript:' not in out.lower()


@given(text=st.text())
def test_sanitizing_is_idempotent(text: str) -> None:
    once = sanitize_html(f"<p>{text}</p>")
    assert sanitize_html(once) == once
