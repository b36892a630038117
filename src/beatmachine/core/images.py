"""Images that people send (avatars): what the bytes really are, within limits,
re-encoded to fixed squares that carry nothing but pixels.

- The format is read from the bytes by Pillow, never taken from a file name or a declared
  type, and only PNG, JPEG, WebP and GIF are opened: an SVG, an HTML page or anything
  else is refused before any decoder runs.
- The pixel count comes from the header and is checked before a pixel is decoded, so a
  decompression bomb (a small file claiming 20,000 x 20,000 pixels) never expands. A
  WebP's canvas is read from its first chunk by this module, before Pillow opens it:
  libwebp reserves its canvases (up to 1 GB each) as soon as it opens a file.
- The first frame is decoded (an animated GIF or WebP gives its first picture; a
  truncated file is refused), turned upright by its EXIF orientation, cropped to a
  centred square and re-encoded at each size as WebP into a new image: EXIF, XMP, ICC
  profiles, comments and whatever followed the image in the file (a polyglot's second
  payload) are left behind.

Decoding is CPU work: `square_renditions` runs in a worker thread.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread
from PIL import ExifTags, Image, UnidentifiedImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
RENDITION_MEDIA_TYPE = "image/webp"
RENDITION_QUALITY = 85
_NOT_AN_IMAGE = "is not a PNG, JPEG, WebP or GIF image"
DECODERS_AT_ONCE = 2
_DECODERS: anyio.CapacityLimiter | None = None
# EXIF orientation -> the turn that makes the stored picture upright.
_TRANSPOSES: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = {5, 6, 7, 8}
# Pillow warns of large images on opening; the limit of ImageLimits is checked right after
# and refuses them, so the warning says nothing (set once: filters are process-wide).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageRefused(Exception):
    """The bytes are not an accepted image, or lie beyond the limits. `reason` completes
    "the image ..." for the person who sent it; `too_large` marks a limit of size."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        self.reason = reason
        self.too_large = too_large
        super().__init__(reason)


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be: at most `max_bytes` long and `max_pixels` in area."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class SquareRenditions:
    """An accepted image: what it was (`source_format`, its upright size) and its squares,
    WebP bytes by side length."""

    source_format: str
    width: int
    height: int
    renditions: dict[int, bytes]
    media_type: str = RENDITION_MEDIA_TYPE


async def square_renditions(
    raw: bytes, sizes: Sequence[int], limits: ImageLimits
) -> SquareRenditions:
    """`raw` checked (see the module's docstring) and re-encoded as a centred square of
    each of `sizes` pixels, in a worker thread; `ImageRefused` says why not."""
    return await anyio.to_thread.run_sync(
        render_squares, raw, tuple(sizes), limits, limiter=_decoders()
    )


def _decoders() -> anyio.CapacityLimiter:
    # A decoded image can take a few hundred MB: only so many at once per process.
    global _DECODERS
    if _DECODERS is None:
        _DECODERS = anyio.CapacityLimiter(DECODERS_AT_ONCE)
    return _DECODERS


def render_squares(raw: bytes, sizes: Sequence[int], limits: ImageLimits) -> SquareRenditions:
    """The work of `square_renditions`, on the calling thread."""
    if not raw:
        raise ImageRefused("is empty")
    if len(raw) > limits.max_bytes:
        raise ImageRefused(f"is larger than {limits.max_bytes} bytes", too_large=True)
    canvas = webp_canvas(raw)
    if canvas is not None and canvas[0] * canvas[1] > limits.max_pixels:
        raise ImageRefused(f"has more than {limits.max_pixels} pixels", too_large=True)
    with _opened(raw, limits) as image:
        source_format = "JPEG" if image.format == "MPO" else str(image.format)
        stored_width, stored_height = image.size
        orientation = _orientation(image)
        square = _upright(_decoded_square(image, max(sizes)), orientation)
    if orientation in _SWAPS_SIDES:
        stored_width, stored_height = stored_height, stored_width
    return SquareRenditions(
        source_format=source_format,
        width=stored_width,
        height=stored_height,
        renditions={size: _webp(square, size) for size in sizes},
    )


def _opened(raw: bytes, limits: ImageLimits) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"has more than {limits.max_pixels} pixels", too_large=True) from exc
    except ValueError as exc:
        # PNG text and ICC chunks are inflated while the header is read; Pillow stops at
        # a few MB ("Decompressed data too large", "Too much memory used in text chunks").
        if "too large" in str(exc).lower() or "too much memory" in str(exc).lower():
            raise ImageRefused("holds metadata too large to read", too_large=True) from exc
        raise ImageRefused(_NOT_AN_IMAGE) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageRefused(_NOT_AN_IMAGE) from exc
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise ImageRefused(_NOT_AN_IMAGE)
    if width * height > limits.max_pixels:
        image.close()
        raise ImageRefused(f"has more than {limits.max_pixels} pixels", too_large=True)
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # any unreadable EXIF block: keep the picture as stored
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSES else 1


def _decoded_square(image: Image.Image, largest: int) -> Image.Image:
    """The centred square of the first frame, decoded, as RGB or (where anything is
    transparent) RGBA. The centred square of the stored picture is the centred square of
    the upright one, and it is cut before the conversion, which copies what it converts."""
    try:
        if image.format in ("JPEG", "MPO"):
            # Decode at the smallest scale (1/2, 1/4, 1/8) still at least the largest
            # square: a 40-megapixel photo then needs a fraction of the memory.
            image.draft("RGB", (largest, largest))
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused("is damaged or incomplete") from exc
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    if square.mode.startswith("I"):
        # 16- and 32-bit grey: scaled down to 8 bits (a plain convert would clip to white).
        square = square.point(lambda value: value / 256, "L")
    return square.convert("RGBA" if has_alpha else "RGB")


def webp_canvas(raw: bytes) -> tuple[int, int] | None:
    """The width and height a WebP file's first chunk declares (VP8X canvas, VP8 frame
    or VP8L image), or None when `raw` is not a WebP file this can read."""
    if len(raw) < 30 or raw[:4] != b"RIFF" or raw[8:12] != b"WEBP":
        return None
    chunk = raw[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(raw[24:27], "little") + 1
        height = int.from_bytes(raw[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and raw[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", raw[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and raw[20] == 0x2F:
        bits = int.from_bytes(raw[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _upright(square: Image.Image, orientation: int) -> Image.Image:
    turn = _TRANSPOSES[orientation]
    return square if turn is None else square.transpose(turn)


def _webp(square: Image.Image, size: int) -> bytes:
    resized = square.resize((size, size), Image.Resampling.LANCZOS)
    # A new image holds the pixels only: no info, EXIF or ICC profile is carried over.
    clean = Image.new(resized.mode, resized.size)
    clean.paste(resized)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=RENDITION_QUALITY, method=4)
    return out.getvalue()
