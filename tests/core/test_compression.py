"""Content negotiation of pre-compressed bodies (RFC 9110 12.5.3) and the codings."""

from __future__ import annotations

import gzip

import brotli
import pytest

from beatmachine.core.compression import compress, negotiate


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", "br"),
        ("br", "br"),
        ("gzip", "gzip"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0.8, gzip;q=0.8", "br"),
        ("BR", "br"),
        ("*", "br"),
        ("*;q=0.5, br;q=0", "gzip"),
        ("br;q=0, gzip;q=0", None),
        ("identity", None),
        ("deflate", None),
        ("", None),
        ("br;q=abc, gzip", "gzip"),
        (" , ;;, gzip ; q=0.3", "gzip"),
    ],
)
def test_negotiate_picks_the_accepted_coding(header: str, expected: str | None) -> None:
    assert negotiate(header) == expected


def test_brotli_round_trips() -> None:
    body = b'{"success":true}' * 200

    assert brotli.decompress(compress(body, "br")) == body


def test_gzip_round_trips_and_is_reproducible() -> None:
    body = b'{"success":true}' * 200

    assert gzip.decompress(compress(body, "gzip")) == body
    assert compress(body, "gzip") == compress(body, "gzip")
