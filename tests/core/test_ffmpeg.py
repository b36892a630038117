"""The bundled ffmpeg: what it reads in each audio format the platform takes, what it
says of files that are no audio, and its time limit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import anyio
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


async def test_an_image_is_not_opened_as_audio(tmp_path: Path) -> None:
    path = tmp_path / "cover.png"
    completed = await ffmpeg.run([*RED_PICTURE, "-y", str(path)], time_limit=TIME_LIMIT)
    assert completed.returncode == 0, completed.stderr

    assert await ffmpeg.probe(path, time_limit=TIME_LIMIT) is None


async def test_cover_art_counts_as_a_picture_not_as_another_stream(tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    await ffmpeg.run([*RED_PICTURE, "-y", str(cover)], time_limit=TIME_LIMIT)
    tone = await generated(tmp_path / "tone.mp3", "-c:a", "libmp3lame")
    path = tmp_path / "with-cover.mp3"
    completed = await ffmpeg.run(
        [
            *("-v", "error", "-i", str(tone), "-i", str(cover), "-map", "0:a", "-map", "1:v"),
            *("-c", "copy", "-disposition:v", "attached_pic", "-y", str(path)),
        ],
        time_limit=TIME_LIMIT,
    )
    assert completed.returncode == 0, completed.stderr

    found = await ffmpeg.probe(path, time_limit=TIME_LIMIT)

    assert found is not None
    assert found.audio == AudioStream("mp3", 44100, 1)
    assert (found.pictures, found.other_streams) == (True, False)


async def test_long_tags_do_not_hide_the_description(tmp_path: Path) -> None:
    lyrics = "\n".join(f"line {n} of a long song that goes on and on" for n in range(60))
    path = await generated(tmp_path / "tagged.flac", "-metadata", f"lyrics={lyrics}")

    found = await ffmpeg.probe(path, time_limit=TIME_LIMIT)

    assert found is not None
    assert found.audio == AudioStream("flac", 44100, 1)


async def test_a_concat_script_is_not_followed_to_other_files(tmp_path: Path) -> None:
    await generated(tmp_path / "other.mp3", "-c:a", "libmp3lame")
    script = tmp_path / "upload.wav"
    script.write_text("ffconcat version 1.0\nfile other.mp3\n")

    assert await ffmpeg.probe(script, time_limit=TIME_LIMIT) is None


async def test_a_relative_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an absolute path"):
        await ffmpeg.probe(Path("tone.wav"), time_limit=TIME_LIMIT)


@pytest.mark.parametrize(
    "content", [b"", b"just some text, no media at all\n"], ids=["empty", "text"]
)
async def test_a_file_ffmpeg_cannot_open_gives_no_probe(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sample.wav"
    path.write_bytes(content)

    assert await ffmpeg.probe(path, time_limit=TIME_LIMIT) is None


async def test_a_run_past_its_time_limit_is_killed() -> None:
    # An hour of tone decoded at the speed of real time: it would run for an hour.
    args = ["-re", "-f", "lavfi", "-i", "sine=d=3600", "-f", "null", "-"]

    with pytest.raises(FfmpegTimedOut) as caught:
        await ffmpeg.run(args, time_limit=0.5)

    assert caught.value.time_limit == 0.5
    assert process_is_gone(caught.value.pid)


async def test_a_run_cancelled_by_anyio_is_reaped_before_it_returns() -> None:
    args = ["-re", "-f", "lavfi", "-i", "sine=d=3600", "-f", "null", "-"]
    # anyio cancels again on every turn of the loop while the process is being stopped.
    with anyio.move_on_after(0.5) as scope:
        await ffmpeg.run(args, time_limit=3600)

    assert scope.cancelled_caught
    assert _children() == set()


async def test_a_cancelled_run_leaves_no_process() -> None:
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
        pictures=False,
        other_streams=False,
    )


@pytest.mark.parametrize(
    ("layout", "channels"),
    [("mono", 1), ("stereo", 2), ("5.1(side)", 6), ("7.1.4", 12), ("3 channels", 3)],
)
def test_each_layout_counts_its_channels(layout: str, channels: int) -> None:
    description = (
        "Input #0, wav, from 'x.wav':\n"
        "  Duration: 00:00:01.00, bitrate: 1 kb/s\n"
        f"  Stream #0:0: Audio: pcm_s16le, 48000 Hz, {layout}, s16\n"
    )

    found = ffmpeg.parse_probe(description)

    assert found is not None and found.audio is not None
    assert found.audio.channels == channels


def test_a_stated_duration_of_n_a_is_none() -> None:
    description = (
        "Input #0, ogg, from 'x.ogg':\n"
        "  Duration: N/A, start: 0.000000, bitrate: N/A\n"
        "  Stream #0:0: Audio: vorbis, 44100 Hz, mono, fltp\n"
    )

    found = ffmpeg.parse_probe(description)

    assert found is not None and found.duration is None


async def test_a_run_reads_what_it_is_given_on_its_standard_input() -> None:
    samples = bytes(range(256)) * 16  # 2048 16-bit samples

    completed = await ffmpeg.run(
        ["-f", "s16le", "-ar", "8000", "-ac", "1", "-i", "pipe:0", "-f", "s16le", "-"],
        time_limit=TIME_LIMIT,
        stdin=samples,
    )

    assert (completed.returncode, completed.stdout) == (0, samples)
