"""Formats from the first bytes of real files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ig_outbound.worker.media import sniff
from tests.media.samples import HEADERS, NOT_MEDIA, VARIANTS
from tests.media.seed import ALLOWED

FORMATS = sorted({fmt for _, fmt in ALLOWED})


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_allowed_format_is_known_by_its_first_bytes(fmt: str) -> None:
    assert sniff(HEADERS[fmt] + bytes(100)) == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_signature_alone_is_enough(fmt: str) -> None:
    assert sniff(HEADERS[fmt]) == fmt


@pytest.mark.parametrize(("head", "fmt"), VARIANTS.values(), ids=VARIANTS.keys())
def test_other_writers_of_the_same_formats_are_known_too(head: bytes, fmt: str) -> None:
    assert sniff(head) == fmt


@pytest.mark.parametrize("head", NOT_MEDIA.values(), ids=NOT_MEDIA.keys())
def test_bytes_of_no_allowed_format_are_unknown(head: bytes) -> None:
    assert sniff(head) is None


@given(st.binary(max_size=200))
def test_any_bytes_give_a_format_or_none(head: bytes) -> None:
    assert sniff(head) in {*FORMATS, None}
