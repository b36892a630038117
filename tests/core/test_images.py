"""Avatar images: only real PNG, JPEG, WebP and GIF images within the limits are taken,
and they come out as metadata-free WebP squares of the asked sizes."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from beatmachine.core.images import (
    RENDITION_MEDIA_TYPE,
    ImageLimits,
    ImageRefused,
    SquareRenditions,
    square_renditions,
    webp_canvas,
)
from tests.images import png_chunk, png_claiming

SIZES = (64, 256, 512)
LIMITS = ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=40_000_000)
EXIF_ORIENTATION = 0x0112
ROTATED_90_CW = 6  # the stored picture must be turned 90 degrees clockwise to stand up


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue: shows crops and turns."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    return image


def opened(rendition: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(rendition))
    image.load()
    return image


async def accepted(raw: bytes, limits: ImageLimits = LIMITS) -> SquareRenditions:
    return await square_renditions(raw, SIZES, limits)


async def refused(raw: bytes, limits: ImageLimits = LIMITS) -> ImageRefused:
    with pytest.raises(ImageRefused) as caught:
        await square_renditions(raw, SIZES, limits)
    return caught.value


# --- what is taken ---------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP", "GIF"])
async def test_each_accepted_format_becomes_webp_squares_of_every_size(
    image_format: str,
) -> None:
    result = await accepted(encoded(halves(300, 200), image_format))

    assert result.source_format == image_format
    assert (result.width, result.height) == (300, 200)
    assert result.media_type == RENDITION_MEDIA_TYPE == "image/webp"
    assert sorted(result.renditions) == list(SIZES)
    for size, rendition in result.renditions.items():
        image = opened(rendition)
        assert image.format == "WEBP"
        assert image.size == (size, size)


async def test_a_wide_image_is_cropped_to_its_centred_square() -> None:
    # 300 x 100: red left third, blue middle third, red right third.
    image = Image.new("RGB", (300, 100), (255, 0, 0))
    image.paste((0, 0, 255), (100, 0, 200, 100))

    result = await accepted(encoded(image, "PNG"))

    square = opened(result.renditions[64]).convert("RGB")
    red, green, blue = square.getpixel((32, 32))  # type: ignore[misc]
    assert blue > 200 and red < 50 and green < 50
    corner_red, _, corner_blue = square.getpixel((2, 2))  # type: ignore[misc]
    assert corner_blue > 200 and corner_red < 50


async def test_exif_orientation_is_applied_then_dropped() -> None:
    stored = halves(200, 100)  # red left, blue right as stored
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CW
    raw = encoded(stored, "JPEG", exif=exif.tobytes(), quality=95)

    result = await accepted(raw)

    # Turned clockwise: 100 wide, 200 high, the red left side now on top.
    assert (result.width, result.height) == (100, 200)
    square = opened(result.renditions[256]).convert("RGB")
    top_red, _, top_blue = square.getpixel((128, 32))  # type: ignore[misc]
    bottom_red, _, bottom_blue = square.getpixel((128, 224))  # type: ignore[misc]
    assert top_red > 200 and top_blue < 50
    assert bottom_blue > 200 and bottom_red < 50
    assert not opened(result.renditions[256]).getexif()


async def test_a_broken_exif_block_keeps_the_picture_as_stored() -> None:
    # ImageWidth stored as text beside the orientation: Pillow cannot write it back.
    entries = [
        struct.pack("<HHI4s", 0x0100, 2, 4, b"abc\x00"),  # ASCII
        struct.pack("<HHIHH", EXIF_ORIENTATION, 3, 1, ROTATED_90_CW, 0),  # SHORT
    ]
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + b"".join(entries)
    raw = encoded(halves(200, 100), "JPEG", exif=b"Exif\x00\x00" + tiff + b"\x00" * 4)

    result = await accepted(raw)

    assert result.source_format == "JPEG"
    assert sorted(result.renditions) == list(SIZES)


async def test_a_large_jpeg_reports_its_full_upright_size() -> None:
    # Decoded at a reduced scale, but the size reported is the picture's own.
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CW
    raw = encoded(halves(3000, 2000), "JPEG", exif=exif.tobytes())

    result = await accepted(raw)

    assert (result.width, result.height) == (2000, 3000)
    assert opened(result.renditions[512]).size == (512, 512)


async def test_a_16_bit_grey_image_keeps_its_tones() -> None:
    image = Image.new("I;16", (64, 64), 0x8000)  # mid grey in 16 bits

    result = await accepted(encoded(image, "PNG"))

    red, green, blue = opened(result.renditions[64]).convert("RGB").getpixel((32, 32))  # type: ignore[misc]
    assert 120 <= red <= 136 and red == green == blue


async def test_a_transparent_colour_of_a_grey_image_stays_transparent() -> None:
    image = Image.new("L", (64, 64), 0)
    raw = encoded(image, "PNG", transparency=0)

    result = await accepted(raw)

    assert opened(result.renditions[64]).convert("RGBA").getpixel((32, 32))[3] == 0  # type: ignore[index]


async def test_no_metadata_survives_the_re_encoding() -> None:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x8825] = {2: (59.0, 54.0, 0.0)}  # a GPS latitude
    raw = encoded(
        halves(120, 120),
        "JPEG",
        exif=exif.tobytes(),
        icc_profile=b"\x00" * 128,
        comment=b"taken at home",
    )
    assert b"CameraMaker" in raw

    result = await accepted(raw)

    for rendition in result.renditions.values():
        image = opened(rendition)
        assert not image.getexif()
        assert "icc_profile" not in image.info
        assert "xmp" not in image.info
        assert b"CameraMaker" not in rendition
        assert b"taken at home" not in rendition


async def test_an_animated_gif_gives_its_first_frame() -> None:
    first = Image.new("RGB", (64, 64), (255, 0, 0))
    second = Image.new("RGB", (64, 64), (0, 0, 255))
    raw = encoded(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)

    result = await accepted(raw)

    image = opened(result.renditions[64])
    assert getattr(image, "n_frames", 1) == 1
    red, _, blue = image.convert("RGB").getpixel((32, 32))  # type: ignore[misc]
    assert red > 200 and blue < 50


async def test_transparency_is_kept() -> None:
    image = Image.new("RGBA", (80, 80), (0, 0, 0, 0))

    result = await accepted(encoded(image, "PNG"))

    assert opened(result.renditions[64]).convert("RGBA").getpixel((10, 10))[3] == 0  # type: ignore[index]


async def test_whatever_follows_the_image_is_left_behind() -> None:
    # A polyglot: a valid PNG with a page appended, which some readers would serve.
    payload = b"<html><script>alert(1)</script></html>"
    raw = encoded(halves(64, 64), "PNG") + payload

    result = await accepted(raw)

    assert all(payload not in rendition for rendition in result.renditions.values())


async def test_an_image_at_the_pixel_limit_is_taken() -> None:
    limits = ImageLimits(max_bytes=LIMITS.max_bytes, max_pixels=100 * 100)

    result = await accepted(encoded(halves(100, 100), "PNG"), limits)

    assert (result.width, result.height) == (100, 100)


# --- what is refused -------------------------------------------------------------------


async def test_an_empty_file_is_refused() -> None:
    error = await refused(b"")

    assert error.reason == "is empty"
    assert error.too_large is False


async def test_a_file_over_the_byte_limit_is_refused_as_too_large() -> None:
    raw = encoded(halves(64, 64), "PNG")
    limits = ImageLimits(max_bytes=len(raw) - 1, max_pixels=LIMITS.max_pixels)

    error = await refused(raw, limits)

    assert error.reason == f"is larger than {len(raw) - 1} bytes"
    assert error.too_large is True


async def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    limits = ImageLimits(max_bytes=LIMITS.max_bytes, max_pixels=100 * 100 - 1)

    error = await refused(encoded(halves(100, 100), "PNG"), limits)

    assert error.reason == "has more than 9999 pixels"
    assert error.too_large is True


async def test_a_header_over_the_pixel_limit_is_refused_before_its_pixels_are_read() -> None:
    # 100 million pixels with one tiny row of data: decoding would find it damaged.
    bomb = png_claiming(10_000, 10_000)

    error = await refused(bomb)

    assert error.reason == f"has more than {LIMITS.max_pixels} pixels"
    assert error.too_large is True


async def test_a_decompression_bomb_of_20000_by_20000_pixels_is_refused() -> None:
    bomb = png_claiming(20_000, 20_000)
    assert len(bomb) < 200

    error = await refused(bomb)

    assert error.reason == f"has more than {LIMITS.max_pixels} pixels"
    assert error.too_large is True


def webp_claiming_canvas(width: int, height: int) -> bytes:
    """A real 8 x 8 lossless WebP behind an extended header that declares a canvas of
    `width` x `height` pixels."""
    inner = encoded(halves(8, 8), "WEBP", lossless=True)[12:]  # its VP8L chunk
    extended = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    extended += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + extended + inner
    return b"RIFF" + struct.pack("<I", len(body)) + body


async def test_a_webp_declaring_a_huge_canvas_is_refused_from_its_header() -> None:
    # libwebp itself cannot open this file (its frame does not fill the canvas): the
    # size refusal can only come from reading the header first.
    error = await refused(webp_claiming_canvas(16_383, 16_383))

    assert error.reason == f"has more than {LIMITS.max_pixels} pixels"
    assert error.too_large is True


@pytest.mark.parametrize(
    ("options", "frames"),
    [({"lossless": True}, 1), ({"quality": 80}, 1), ({"lossless": True}, 2)],
    ids=["lossless", "lossy", "animated"],
)
def test_the_webp_canvas_is_read_from_each_kind_of_first_chunk(
    options: dict[str, object], frames: int
) -> None:
    first = halves(120, 50)
    extra = {"save_all": True, "append_images": [halves(120, 50)]} if frames > 1 else {}

    assert webp_canvas(encoded(first, "WEBP", **options, **extra)) == (120, 50)


def test_a_file_that_is_not_webp_declares_no_canvas() -> None:
    assert webp_canvas(encoded(halves(8, 8), "PNG")) is None


async def test_a_png_with_a_text_chunk_too_large_to_read_is_refused_as_too_large() -> None:
    # 64 MB of text compressed into about 64 KB: Pillow stops inflating such chunks.
    small = encoded(halves(8, 8), "PNG")
    text = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * 64_000_000, 9))
    bloated = small[:33] + text + small[33:]  # after the signature and header

    error = await refused(bloated)

    assert error.reason == "holds metadata too large to read"
    assert error.too_large is True


@pytest.mark.parametrize(
    "raw",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b"<script>alert(1)</script></svg>",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"BM" + b"\x00" * 60,  # a bitmap header: an image, but not one we take
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a WAV file
    ],
    ids=["svg", "html", "bmp", "pdf", "wav"],
)
async def test_anything_but_png_jpeg_webp_or_gif_is_refused(raw: bytes) -> None:
    error = await refused(raw)

    assert error.reason == "is not a PNG, JPEG, WebP or GIF image"
    assert error.too_large is False


async def test_a_truncated_png_is_refused_as_damaged() -> None:
    image = Image.effect_noise((256, 256), 64).convert("RGB")
    raw = encoded(image, "PNG")

    error = await refused(raw[: len(raw) // 2])

    assert error.reason == "is damaged or incomplete"


async def test_a_truncated_jpeg_is_refused_as_damaged() -> None:
    image = Image.effect_noise((256, 256), 64).convert("RGB")
    raw = encoded(image, "JPEG")

    error = await refused(raw[: len(raw) // 2])

    assert error.reason == "is damaged or incomplete"
