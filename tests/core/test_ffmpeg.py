"""The bundled ffmpeg: what it reads in each audio format the platform takes, what it
says of files that are no audio, and its time limit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from beatmachine.core import ffmpeg
from beatmachine.core.ffmpeg import AudioStream, FfmpegTimedOut, Probe

TIME_LIMIT = 60.0
SILENCE_2H = ["-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "7200"]
RED_PICTURE = ["-v", "error", "-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1"]


async def generated(path: Path, *output: str, seconds: float = 1.0) -> Path:
    """A 440 Hz tone of `seconds` written by ffmpeg to `path` with the `output` options."""
    completed = await ffmpeg.run(
        ["-v", "error", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}", *output, "-y", str(path)],
        time_limit=TIME_LIMIT,
    )
    assert completed.returncode == 0, completed.stderr
    return path


def process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(
    ("name", "options", "formats", "audio"),
    [
        ("tone.wav", ["-ac", "1"], ("wav",), AudioStream("pcm_s16le", 44100, 1)),
        ("tone.flac", ["-ac", "2"], ("flac",), AudioStream("flac", 44100, 2)),
        ("tone.ogg", ["-c:a", "libvorbis"], ("ogg",), AudioStream("vorbis", 44100, 1)),
        ("tone.opus", ["-c:a", "libopus"], ("ogg",), AudioStream("opus", 48000, 1)),
        ("tone.mp3", ["-c:a", "libmp3lame"], ("mp3",), AudioStream("mp3", 44100, 1)),
        (
            "tone.webm",
            ["-c:a", "libvorbis"],
            ("matroska", "webm"),
            AudioStream("vorbis", 44100, 1),
        ),
    ],
    ids=["wav", "flac", "vorbis", "opus", "mp3", "webm"],
)
async def test_each_audio_format_is_read_with_its_stream(
    tmp_path: Path,
    name: str,
    options: list[str],
    formats: tuple[str, ...],
    audio: AudioStream,
) -> None:
    path = await generated(tmp_path / name, *options)

    found = await ffmpeg.probe(path, time_limit=TIME_LIMIT)

    assert found is not None
    assert (found.formats, found.audio, found.other_streams) == (formats, audio, False)
    assert found.duration == pytest.approx(1.0, abs=0.02)


async def test_the_stated_duration_of_a_long_file_is_read_without_decoding_it(
    tmp_path: Path,
) -> None:
    # Two hours of silence in a few kilobytes of FLAC.
    path = tmp_path / "long.flac"
    completed = await ffmpeg.run(
        [*SILENCE_2H, "-c:a", "flac", "-y", str(path)],
        time_limit=TIME_LIMIT,
    )
    assert completed.returncode == 0, completed.stderr

    found = await ffmpeg.probe(path, time_limit=TIME_LIMIT)

    assert found is not None
    assert found.duration == pytest.approx(7200.0, abs=0.1)


async def test_an_image_is_read_as_a_picture_with_no_audio(tmp_path: Path) -> None:
    path = tmp_path / "cover.png"
    completed = await ffmpeg.run(
        [*RED_PICTURE, "-y", str(path)],
        time_limit=TIME_LIMIT,
    )
    assert completed.returncode == 0, completed.stderr

    found = await ffmpeg.probe(path, time_limit=TIME_LIMIT)

    assert found is not None
    assert found.audio is None
    assert found.other_streams is True


@pytest.mark.parametrize(
    "content", [b"", b"just some text, no media at all\n"], ids=["empty", "text"]
)
async def test_a_file_ffmpeg_cannot_open_gives_no_probe(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sample.wav"
    path.write_bytes(content)

    assert await ffmpeg.probe(path, time_limit=TIME_LIMIT) is None


async def test_a_run_past_its_time_limit_is_killed(tmp_path: Path) -> None:
    # An hour of tone decoded at the speed of real time: it would run for an hour.
    args = ["-re", "-f", "lavfi", "-i", "sine=d=3600", "-f", "null", "-"]

    with pytest.raises(FfmpegTimedOut) as caught:
        await ffmpeg.run(args, time_limit=0.5)

    assert caught.value.time_limit == 0.5
    assert process_is_gone(caught.value.pid)


async def test_a_cancelled_run_leaves_no_process(tmp_path: Path) -> None:
    args = ["-re", "-f", "lavfi", "-i", "sine=d=3600", "-f", "null", "-"]
    task = asyncio.create_task(ffmpeg.run(args, time_limit=3600))
    started: set[int] = set()
    async with asyncio.timeout(30):  # only a guard against a hang
        while not started:  # until the process is there
            await asyncio.sleep(0.05)
            started = _children()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task

    assert all(process_is_gone(pid) for pid in started)


def _children() -> set[int]:
    """The pids of this process's running ffmpeg children."""
    me = os.getpid()
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == me and b"ffmpeg" in cmdline and b"sine=d=3600" in cmdline:
            children.add(int(entry.name))
    return children


def test_the_description_of_a_surround_file_counts_its_channels() -> None:
    description = (
        "Input #0, wav, from 'surround.wav':\n"
        "  Duration: 00:00:02.50, bitrate: 4234 kb/s\n"
        "  Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 48000 Hz, 5.1(side), s16\n"
    )

    assert ffmpeg.parse_probe(description) == Probe(
        formats=("wav",),
        duration=2.5,
        audio=AudioStream("pcm_s16le", 48000, 6),
        other_streams=False,
    )
