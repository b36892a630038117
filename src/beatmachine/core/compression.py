"""Content codings for bodies that are compressed once and sent many times.

The compression middleware compresses each response as it goes out, at a speed-minded
level; a cached document compressed once at the highest level and kept beside its plain
bytes costs nothing per request and is smaller.
"""

from __future__ import annotations

import gzip
from typing import Literal

import brotli

Encoding = Literal["br", "gzip"]
# Below this, compressing saves less than the headers it costs.
MIN_COMPRESS_BYTES = 1024
# In the server's order of preference, for when the client accepts several equally.
ENCODINGS: tuple[Encoding, ...] = ("br", "gzip")


def negotiate(accept_encoding: str) -> Encoding | None:
    """The coding to send for an `Accept-Encoding` header (RFC 9110 12.5.3): the one with
    the highest q-value among br and gzip, br on a tie; None for identity."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name:
            weights[name.lower()] = quality
    best: Encoding | None = None
    best_quality = 0.0
    for encoding in ENCODINGS:
        quality = weights.get(encoding, weights.get("*", 0.0))
        if quality > best_quality:
            best, best_quality = encoding, quality
    return best


def compress(body: bytes, encoding: Encoding) -> bytes:
    """`body` in `encoding` at the highest level (CPU-heavy: run it off the event loop)."""
    if encoding == "br":
        return bytes(brotli.compress(body, quality=11))
    return gzip.compress(body, compresslevel=9, mtime=0)
