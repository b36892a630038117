"""What an uploaded audio file is: its kind from its bytes, its duration from decoding
it, and the refusals of files that are not what they say or beyond the limits."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from beatmachine.media.inspection import (
    AudioLimits,
    AudioRefused,
    InspectedAudio,
    Refusal,
    inspect,
)
from tests.media.audio import ENCODINGS, encoded, make

LIMITS = AudioLimits(max_seconds=30)


async def inspected(path: Path, filename: str | None = None, declared: str = "") -> InspectedAudio:
    return await inspect(
        path, filename=filename or path.name, declared_type=declared, limits=LIMITS
    )


async def refused(path: Path, filename: str | None = None, declared: str = "") -> AudioRefused:
    with pytest.raises(AudioRefused) as caught:
        await inspected(path, filename, declared)
    return caught.value


@pytest.mark.parametrize("kind", sorted(ENCODINGS))
async def test_each_accepted_kind_is_told_by_its_bytes(tmp_path: Path, kind: str) -> None:
    path = encoded(tmp_path, kind, seconds=0.5)

    audio = await inspected(path, filename="upload.bin")

    assert audio.kind.name == kind
    assert audio.duration == pytest.approx(0.5, abs=0.03)


async def test_a_matching_name_and_type_are_accepted(tmp_path: Path) -> None:
    path = encoded(tmp_path, "mp3")

    audio = await inspected(path, filename="clave-0.mp3", declared="audio/mpeg")

    assert (audio.kind.name, audio.codec, audio.sample_rate) == ("mp3", "mp3", 44100)


async def test_audio_declared_as_an_image_is_refused(tmp_path: Path) -> None:
    path = encoded(tmp_path, "wav")

    error = await refused(path, filename="clave-0.png", declared="image/png")

    assert (error.kind, error.reason) == (
        Refusal.UNSUPPORTED,
        "is WAV audio, not what its name or type says",
    )


async def test_a_png_renamed_wav_is_not_audio(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG")
    path = tmp_path / "clave-0.wav"
    path.write_bytes(out.getvalue())

    error = await refused(path, declared="audio/wav")

    assert (error.kind, error.reason) == (
        Refusal.UNSUPPORTED,
        "is not WAV, FLAC, Ogg Vorbis, Opus, MP3 or WebM audio",
    )


async def test_an_mp3_with_a_flac_name_and_type_is_refused(tmp_path: Path) -> None:
    path = encoded(tmp_path, "mp3")

    error = await refused(path, filename="clave-0.flac", declared="audio/flac")

    assert (error.kind, error.reason) == (
        Refusal.UNSUPPORTED,
        "is MP3 audio, not what its name or type says",
    )


async def test_a_zero_length_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "clave-0.wav"
    path.write_bytes(b"")

    error = await refused(path)

    assert (error.kind, error.reason) == (Refusal.INVALID, "is empty")


async def test_a_truncated_wav_is_cut_short(tmp_path: Path) -> None:
    whole = encoded(tmp_path, "wav").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[: len(whole) // 2])

    error = await refused(path)

    assert error.kind is Refusal.INVALID
    assert error.reason == f"is cut short ({len(whole) // 2} of the {len(whole)} bytes it declares)"


async def test_a_wav_with_another_file_behind_it_is_a_polyglot(tmp_path: Path) -> None:
    payload = b"PK\x03\x04" + b"\x00" * 60  # a zip archive riding behind the audio
    path = tmp_path / "poly.wav"
    path.write_bytes(encoded(tmp_path, "wav").read_bytes() + payload)

    error = await refused(path)

    assert (error.kind, error.reason) == (
        Refusal.UNSUPPORTED,
        f"holds {len(payload)} bytes of other data after its audio",
    )


async def test_a_two_hour_file_is_too_long(tmp_path: Path) -> None:
    path = make(
        tmp_path / "long.flac",
        source="anullsrc=r=1000:cl=mono",
        seconds=7200,
        options=["-c:a", "flac", "-compression_level", "0"],
    )

    error = await refused(path)

    assert (error.kind, error.reason) == (Refusal.TOO_LARGE, "is longer than 30 seconds")


async def test_a_file_at_the_duration_limit_is_taken(tmp_path: Path) -> None:
    path = encoded(tmp_path, "flac", seconds=30)

    audio = await inspected(path)

    assert audio.duration == pytest.approx(30, abs=0.01)


async def test_a_duration_claimed_by_the_header_does_not_count(tmp_path: Path) -> None:
    # A WAV header saying "2 seconds" over 0.3 seconds of data, its RIFF size true to the
    # file: decoding decides.
    raw = bytearray(encoded(tmp_path, "wav").read_bytes())
    data_at = raw.index(b"data")
    raw[data_at + 4 : data_at + 8] = (2 * 44100 * 2).to_bytes(4, "little")
    path = tmp_path / "claims.wav"
    path.write_bytes(bytes(raw))

    audio = await inspected(path)

    assert audio.duration == pytest.approx(0.3, abs=0.01)


async def test_a_video_is_refused(tmp_path: Path) -> None:
    path = make(
        tmp_path / "clip.webm",
        source="testsrc=size=32x32:rate=5",
        seconds=0.4,
        options=[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.4",
            "-c:v",
            "libvpx",
            "-c:a",
            "libopus",
            "-t",
            "0.4",
        ],
    )

    error = await refused(path)

    assert (error.kind, error.reason) == (
        Refusal.UNSUPPORTED,
        "holds video or other streams besides audio",
    )


async def test_a_damaged_file_cannot_be_decoded(tmp_path: Path) -> None:
    raw = bytearray(encoded(tmp_path, "flac", seconds=1).read_bytes())
    for at in range(200, len(raw), 7):
        raw[at] ^= 0x5A  # noise over the frames, the header intact
    path = tmp_path / "noise.flac"
    path.write_bytes(bytes(raw))

    error = await refused(path)

    assert (error.kind, error.reason) == (Refusal.INVALID, "is damaged and cannot be decoded")
