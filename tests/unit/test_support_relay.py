"""What a support relay carries: the buyer's ID is text in the staff room, never markup."""

from __future__ import annotations

from appservices.commerce.support.desk import relayable_content


def test_the_sender_prefix_is_escaped_in_the_formatted_body() -> None:
    # A historical or remote user ID may hold '<' and '>' (the spec allows them).
    buyer = "@<img src=x onerror=alert(1)>:evil.example"
    relayed = relayable_content({"msgtype": "m.text", "body": "hello",
                                 "format": "org.matrix.custom.html",
                                 "formatted_body": "<i>hello</i>"}, prefix=f"{buyer}: ")
    assert relayed["formatted_body"] == (
        "<b>@&lt;img src=x onerror=alert(1)&gt;:evil.example:</b> <i>hello</i>")
    assert relayed["body"] == f"{buyer}: hello"
