"""ffmpeg as a subprocess: the build shipped by `imageio-ffmpeg` (libvorbis, libmp3lame,
libopus, loudnorm; no system ffmpeg needed), run with a time limit, and what an input
file holds as ffmpeg reads it.

The event loop only waits on the process; a process that outlives its time limit, or
whose caller is cancelled, is killed and reaped before the call returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg  # type: ignore[import-untyped]

# Input formats `probe` opens by default: the audio containers the platform takes. Others
# are never opened (a "concat" script or a playlist would make ffmpeg read other files).
AUDIO_FORMATS = ("wav", "flac", "ogg", "mp3", "matroska", "webm")
_INPUT = re.compile(r"^Input #0, (?P<formats>[^ ]+), from ", re.MULTILINE)
_DURATION = re.compile(r"^\s+Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)", re.MULTILINE)
_AUDIO = re.compile(
    r"^\s+Stream #0:\d+\S*: Audio: (?P<codec>[\w-]+)[^\n]*?, (?P<rate>\d+) Hz, (?P<layout>[^,\n]+)",
    re.MULTILINE,
)
_OTHER_STREAM = re.compile(
    r"^\s+Stream #0:\d+\S*: (?:Video|Subtitle|Data|Attachment): (?P<rest>[^\n]*)$",
    re.MULTILINE,
)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "binaural": 2,
    "downmix": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}


class FfmpegTimedOut(Exception):
    """ffmpeg ran past its time limit and was killed (`pid` is gone when this is raised)."""

    def __init__(self, time_limit: float, pid: int) -> None:
        self.time_limit = time_limit
        self.pid = pid
        super().__init__(f"ffmpeg ran longer than {time_limit:g} s and was stopped")


@dataclass(frozen=True)
class Completed:
    """A finished ffmpeg run: its exit status and output."""

    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True)
class AudioStream:
    """The first audio stream of an input, as ffmpeg decodes it."""

    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class Probe:
    """What ffmpeg found in an input: the demuxer's format names (`("matroska", "webm")`),
    the duration its container states (None where it states none), its first audio
    stream, whether it has cover pictures, and whether it has streams of other kinds
    (video, subtitles, data).

    All of it is what the file says of itself: its tags are printed among these lines, so
    a hostile file can make them say anything. Limits are enforced on what decoding it
    gives, never on a probe."""

    formats: tuple[str, ...]
    duration: float | None
    audio: AudioStream | None
    pictures: bool
    other_streams: bool


@functools.cache
def executable() -> str:
    """The path of the bundled ffmpeg binary."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def run(args: Sequence[str], *, time_limit: float, stdin: bytes | None = None) -> Completed:
    """ffmpeg with `args` (after `-hide_banner`, and `-nostdin` unless `stdin` is given
    for it to read as `pipe:0`), given `time_limit` seconds; `FfmpegTimedOut` once it is
    killed."""
    process = await asyncio.create_subprocess_exec(
        executable(),
        "-hide_banner",
        *(() if stdin is not None else ("-nostdin",)),
        *args,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), time_limit)
    except TimeoutError:
        await _stop(process)
        raise FfmpegTimedOut(time_limit, process.pid) from None
    except BaseException:
        await _stop(process)
        raise
    assert process.returncode is not None  # communicate() waited for it
    return Completed(process.returncode, stdout, stderr.decode(errors="replace"))


async def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    # Reaped even when cancelled again meanwhile (anyio repeats a cancellation on every
    # turn of the loop); the cancellation goes on once the process is gone.
    waiter = asyncio.ensure_future(process.wait())
    cancelled = False
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def probe(
    path: Path, *, time_limit: float, formats: Sequence[str] = AUDIO_FORMATS
) -> Probe | None:
    """What `path` holds as ffmpeg reads its header (see `Probe`), or None if ffmpeg cannot
    open it as one of `formats` (empty, another format, or no format it knows); only the
    local file is read (`path` must be absolute). `FfmpegTimedOut` past `time_limit`."""
    if not path.is_absolute():
        raise ValueError(f"not an absolute path: {path}")
    # Without an output ffmpeg describes the input and exits with status 1.
    completed = await run(
        [
            *("-protocol_whitelist", "file"),
            *("-format_whitelist", ",".join(formats)),
            *("-i", f"file:{path}"),
        ],
        time_limit=time_limit,
    )
    return parse_probe(completed.stderr)


def parse_probe(description: str) -> Probe | None:
    """The Probe of ffmpeg's description of its input (see `probe`)."""
    found = _INPUT.search(description)
    if found is None:
        return None
    duration = _DURATION.search(description)
    audio = _AUDIO.search(description)
    return Probe(
        formats=tuple(found["formats"].split(",")),
        duration=(
            int(duration["h"]) * 3600 + int(duration["m"]) * 60 + float(duration["s"])
            if duration
            else None
        ),
        audio=(
            AudioStream(audio["codec"], int(audio["rate"]), _channels(audio["layout"].strip()))
            if audio
            else None
        ),
        pictures=any(
            line["rest"].endswith("(attached pic)") for line in _OTHER_STREAM.finditer(description)
        ),
        other_streams=any(
            not line["rest"].endswith("(attached pic)")
            for line in _OTHER_STREAM.finditer(description)
        ),
    )


def _channels(layout: str) -> int:
    """Channels of a layout as ffmpeg names it ("mono", "5.1(side)", "7.1.4", "3 channels");
    0 for a name it does not count."""
    layout = layout.split("(")[0].strip()
    if layout in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[layout]
    counted = re.fullmatch(r"(\d+) channels", layout)
    if counted:
        return int(counted[1])
    if re.fullmatch(r"\d+(?:\.\d+)+", layout):
        return sum(int(part) for part in layout.split("."))
    return 0
