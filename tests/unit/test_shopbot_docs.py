from bots.shopbot.docs import DOC, render


def test_command_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render(), "run `python -m bots.shopbot.docs` and commit the result"
