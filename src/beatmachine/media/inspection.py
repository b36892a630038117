"""What an uploaded audio file really is, before anything of it is stored.

The container and codec come from ffmpeg reading the bytes (only the audio demuxers are
allowed to open it); the name and type the client gave must agree with them. The
duration is what decoding gives, never what the file states (a tag can claim anything),
and decoding stops just past the limit, so a 2-hour file costs no more than a long
sample. A WAV file must hold exactly what its RIFF header declares: less is a file cut
short, more is another payload riding behind the audio (a polyglot).

Nothing here knows HTTP: refusals are `AudioRefused` with the kind of answer they get.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import anyio.to_thread

from beatmachine.core import ffmpeg

SAMPLE_RATE = 44_100
# Decoding for the duration check reads this much further than the limit, to tell a
# file at the limit from one over it.
_PAST_LIMIT_SECONDS = 0.5
# Decoded for counting only: mono 16-bit at a low rate keeps the pipe small.
_COUNT_RATE = 8000
# ffmpeg runs of upload checks at once per process: the rest wait their turn.
CHECKS_AT_ONCE = 2
_CHECKS: anyio.CapacityLimiter | None = None


def _checks() -> anyio.CapacityLimiter:
    global _CHECKS
    if _CHECKS is None:
        _CHECKS = anyio.CapacityLimiter(CHECKS_AT_ONCE)
    return _CHECKS


class Refusal(StrEnum):
    """How a refused file is answered: not audio or not what it says (415), over a
    limit (413), damaged or unusable (422), or not checked in time here (503: the
    server is busy, the file is not to blame)."""

    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    INVALID = "invalid"
    BUSY = "busy"


class AudioRefused(Exception):
    """The file is not taken; `reason` completes "the file ..."."""

    def __init__(self, kind: Refusal, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class AudioKind:
    """An accepted kind of audio file: its container name, the codecs it may hold, and
    the file extensions and media types that declare it."""

    name: str
    label: str
    formats: frozenset[str]
    codecs: frozenset[str]
    extensions: frozenset[str]
    media_types: frozenset[str]


KINDS = (
    AudioKind(
        "wav",
        "WAV",
        frozenset({"wav"}),
        frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le", "pcm_u8"}),
        frozenset({".wav", ".wave"}),
        frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}),
    ),
    AudioKind(
        "flac",
        "FLAC",
        frozenset({"flac"}),
        frozenset({"flac"}),
        frozenset({".flac"}),
        frozenset({"audio/flac", "audio/x-flac"}),
    ),
    AudioKind(
        "ogg",
        "Ogg Vorbis",
        frozenset({"ogg"}),
        frozenset({"vorbis"}),
        frozenset({".ogg", ".oga"}),
        frozenset({"audio/ogg", "audio/vorbis", "application/ogg"}),
    ),
    AudioKind(
        "opus",
        "Opus",
        frozenset({"ogg"}),
        frozenset({"opus"}),
        frozenset({".opus", ".ogg", ".oga"}),
        frozenset({"audio/opus", "audio/ogg", "application/ogg"}),
    ),
    AudioKind(
        "mp3",
        "MP3",
        frozenset({"mp3"}),
        frozenset({"mp3", "mp3float"}),
        frozenset({".mp3"}),
        frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg"}),
    ),
    AudioKind(
        "webm",
        "WebM",
        frozenset({"matroska", "webm"}),
        frozenset({"vorbis", "opus"}),
        frozenset({".webm"}),
        frozenset({"audio/webm", "video/webm"}),
    ),
)
# Types that say nothing of what a file is.
_UNDECLARED_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
ACCEPTED = "WAV, FLAC, Ogg Vorbis, Opus, MP3 or WebM audio"


@dataclass(frozen=True)
class AudioLimits:
    """What an audio file may be: at most `max_seconds` long (as decoded)."""

    max_seconds: float
    time_limit: float = 60.0


@dataclass(frozen=True)
class InspectedAudio:
    """An accepted file: its kind, codec, the rate and channels of its audio, and the
    duration decoding it gives, in seconds."""

    kind: AudioKind
    codec: str
    sample_rate: int
    channels: int
    duration: float


def _kind_of(found: ffmpeg.Probe) -> AudioKind | None:
    if found.audio is None:
        return None
    for kind in KINDS:
        if kind.formats.intersection(found.formats) and found.audio.codec in kind.codecs:
            return kind
    return None


def _declared_kinds(filename: str, declared_type: str) -> list[set[str]]:
    """The kinds each declaration allows: an audio file extension, and a media type
    (one that says nothing, such as `application/octet-stream`, is left out, and so is
    an extension of no audio kind: `.bin`, none at all)."""
    declarations: list[set[str]] = []
    extension = Path(filename).suffix.lower()
    by_extension = {kind.name for kind in KINDS if extension in kind.extensions}
    if by_extension:
        declarations.append(by_extension)
    media_type = declared_type.split(";", 1)[0].strip().lower()
    if media_type not in _UNDECLARED_TYPES:
        declarations.append({kind.name for kind in KINDS if media_type in kind.media_types})
    return declarations


def _riff_mismatch(path: Path) -> AudioRefused | None:
    """A WAV file that holds less or more than its RIFF header declares."""
    with path.open("rb") as handle:
        head = handle.read(12)
        size = handle.seek(0, 2)
    if len(head) < 12 or head[:4] != b"RIFF":
        return None  # RF64 and other variants: nothing declared to compare
    declared = int.from_bytes(head[4:8], "little") + 8
    if declared in (8, 0xFFFFFFFF + 8):  # written while streaming: no size known
        return None
    if size < declared:
        return AudioRefused(
            Refusal.INVALID, f"is cut short ({size} of the {declared} bytes it declares)"
        )
    if size > declared + 1:  # a pad byte may follow an odd-sized chunk
        return AudioRefused(
            Refusal.UNSUPPORTED, f"holds {size - declared} bytes of other data after its audio"
        )
    return None


async def inspect(
    path: Path, *, filename: str, declared_type: str, limits: AudioLimits
) -> InspectedAudio:
    """The audio in the file at `path` (absolute), checked as the module says; raises
    `AudioRefused` otherwise."""
    if await anyio.to_thread.run_sync(lambda: path.stat().st_size) == 0:
        raise AudioRefused(Refusal.INVALID, "is empty")
    async with _checks():
        return await _inspect(path, filename=filename, declared_type=declared_type, limits=limits)


def kind_named(name: str) -> AudioKind:
    """The accepted kind called `name` (`wav`, `mp3`, …)."""
    return next(kind for kind in KINDS if kind.name == name)


async def _inspect(
    path: Path, *, filename: str, declared_type: str, limits: AudioLimits
) -> InspectedAudio:
    try:
        found = await ffmpeg.probe(path, time_limit=limits.time_limit)
    except ffmpeg.FfmpegTimedOut:
        raise AudioRefused(Refusal.BUSY, "could not be checked in time") from None
    kind = None if found is None else _kind_of(found)
    if found is None or found.audio is None or kind is None:
        raise AudioRefused(Refusal.UNSUPPORTED, f"is not {ACCEPTED}")
    if found.other_streams:
        raise AudioRefused(Refusal.UNSUPPORTED, "holds video or other streams besides audio")
    for allowed in _declared_kinds(filename, declared_type):
        if kind.name not in allowed:
            raise AudioRefused(
                Refusal.UNSUPPORTED,
                f"is {kind.label} audio, not what its name or type says",
            )
    if kind.name == "wav":
        mismatch = await anyio.to_thread.run_sync(_riff_mismatch, path)
        if mismatch is not None:
            raise mismatch
    duration = await _decoded_duration(path, kind, limits)
    if duration > limits.max_seconds:
        raise AudioRefused(Refusal.TOO_LARGE, f"is longer than {limits.max_seconds:g} seconds")
    if duration == 0:
        raise AudioRefused(Refusal.INVALID, "holds no sound")
    return InspectedAudio(
        kind=kind,
        codec=found.audio.codec,
        sample_rate=found.audio.sample_rate,
        channels=found.audio.channels,
        duration=duration,
    )


async def _decoded_duration(path: Path, kind: AudioKind, limits: AudioLimits) -> float:
    """Seconds of audio that decoding the file gives (up to just past the limit)."""
    try:
        completed = await ffmpeg.run(
            [
                *("-v", "error"),
                *("-protocol_whitelist", "file"),
                *("-format_whitelist", ",".join(sorted(kind.formats))),
                *("-i", f"file:{path}"),
                *("-map", "0:a:0", "-t", f"{limits.max_seconds + _PAST_LIMIT_SECONDS:g}"),
                *("-ac", "1", "-ar", str(_COUNT_RATE), "-f", "s16le", "-"),
            ],
            time_limit=limits.time_limit,
        )
    except ffmpeg.FfmpegTimedOut:
        raise AudioRefused(Refusal.BUSY, "could not be checked in time") from None
    if completed.returncode != 0 or completed.stderr.strip():
        raise AudioRefused(Refusal.INVALID, "is damaged and cannot be decoded")
    return len(completed.stdout) / 2 / _COUNT_RATE
