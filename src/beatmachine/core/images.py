"""Images that people send (avatars): what the bytes really are, within limits,
re-encoded to fixed squares that carry nothing but pixels.

- The format is read from the bytes by Pillow, never taken from a file name or a declared
  type, and only PNG, JPEG, WebP and GIF are opened: an SVG, an HTML page or anything
  else is refused before any decoder runs.
- The pixel count comes from the header and is checked before a pixel is decoded, so a
  decompression bomb (a small file claiming 20,000 x 20,000 pixels) never expands.
- The first frame is decoded (an animated GIF or WebP gives its first picture; a
  truncated file is refused), turned upright by its EXIF orientation, cropped to a
  centred square and re-encoded at each size as WebP into a new image: EXIF, XMP, ICC
  profiles, comments and whatever followed the image in the file (a polyglot's second
  payload) are left behind.

Decoding is CPU work: `square_renditions` runs in a worker thread.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
RENDITION_MEDIA_TYPE = "image/webp"
RENDITION_QUALITY = 85
_NOT_AN_IMAGE = "is not a PNG, JPEG, WebP or GIF image"


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
    return await anyio.to_thread.run_sync(render_squares, raw, tuple(sizes), limits)


def render_squares(raw: bytes, sizes: Sequence[int], limits: ImageLimits) -> SquareRenditions:
    """The work of `square_renditions`, on the calling thread."""
    if not raw:
        raise ImageRefused("is empty")
    if len(raw) > limits.max_bytes:
        raise ImageRefused(f"is larger than {limits.max_bytes} bytes", too_large=True)
    with _opened(raw, limits) as image:
        source_format = str(image.format)
        upright = _decoded_upright(image, max(sizes))
    width, height = upright.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = upright.crop((left, top, left + side, top + side))
    return SquareRenditions(
        source_format=source_format,
        width=width,
        height=height,
        renditions={size: _webp(square, size) for size in sizes},
    )


def _opened(raw: bytes, limits: ImageLimits) -> Image.Image:
    try:
        # Pillow's own bomb check warns below twice its global limit; ours is the limit.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"has more than {limits.max_pixels} pixels", too_large=True) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(_NOT_AN_IMAGE) from exc
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise ImageRefused(_NOT_AN_IMAGE)
    if width * height > limits.max_pixels:
        image.close()
        raise ImageRefused(f"has more than {limits.max_pixels} pixels", too_large=True)
    return image


def _decoded_upright(image: Image.Image, largest: int) -> Image.Image:
    try:
        if image.format == "JPEG":
            # Decode at the smallest scale (1/2, 1/4, 1/8) still at least the largest
            # square: a 40-megapixel photo then needs a fraction of the memory.
            image.draft("RGB", (largest, largest))
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused("is damaged or incomplete") from exc
    try:
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        # An unreadable orientation tag: keep the picture as stored.
        upright = image
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    return upright.convert("RGBA" if has_alpha else "RGB")


def _webp(square: Image.Image, size: int) -> bytes:
    resized = square.resize((size, size), Image.Resampling.LANCZOS)
    # A new image holds the pixels only: no info, EXIF or ICC profile is carried over.
    clean = Image.new(resized.mode, resized.size)
    clean.paste(resized)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=RENDITION_QUALITY, method=4)
    return out.getvalue()
