"""Inputs that once crashed the contacts importers."""

from __future__ import annotations

import pytest

from bridges.contacts.importers import ImportFailed, read_all


@pytest.mark.parametrize("data", [
    b'\x01"\n\x01',  # found by hypothesis: an open quote running over the header's end
    b'name,"phone\nemail',
])
def test_a_broken_csv_header_is_refused_not_a_crash(data: bytes) -> None:
    try:
        contacts, report = read_all(data, region="NO", max_contacts=10)
    except ImportFailed as e:
        assert "CSV" in e.message or "contact" in e.message
    else:
        assert report.contacts >= len(contacts)
