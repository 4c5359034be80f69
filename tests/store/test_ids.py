"""Ids: one strict reading of the decimal text clients send."""

from __future__ import annotations

import pytest

from voiceprint.store.ids import MAX_ID, new_id, parse_id


@pytest.mark.parametrize("text", ["1", "42", "7391234567890123456", str(MAX_ID)])
def test_ascii_decimal_ids_are_read(text: str) -> None:
    assert parse_id(text) == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "-4",
        "+4",
        " 4",
        "4 ",
        "04",
        "4.0",
        "x1",
        "1e3",
        "²",  # passes str.isdigit(), fails int()
        "١٢",  # Arabic-Indic digits: int() reads 12
        "１２",  # fullwidth digits
        str(MAX_ID + 1),
        "9" * 40,
    ],
)
def test_anything_else_is_not_an_id(text: str) -> None:
    assert parse_id(text) is None


def test_new_ids_increase_and_read_back() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(parse_id(str(i)) == i for i in ids[:10])
