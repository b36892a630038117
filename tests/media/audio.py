"""Audio files for the media tests, made by the bundled ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

from beatmachine.core import ffmpeg

# Encoder options of each kind: (extension, ffmpeg options).
ENCODINGS: dict[str, tuple[str, list[str]]] = {
    "wav": (".wav", ["-c:a", "pcm_s16le"]),
    "flac": (".flac", ["-c:a", "flac"]),
    "ogg": (".ogg", ["-c:a", "libvorbis", "-q:a", "3"]),
    "opus": (".opus", ["-c:a", "libopus", "-b:a", "48k"]),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "96k"]),
    "webm": (".webm", ["-c:a", "libopus", "-b:a", "48k"]),
}


def make(
    path: Path,
    source: str = "sine=frequency=440:sample_rate=44100",
    seconds: float = 0.3,
    options: list[str] | None = None,
) -> Path:
    """`path` written from the lavfi `source`, `seconds` long."""
    subprocess.run(  # noqa: S603 (our own arguments)
        [
            ffmpeg.executable(),
            *("-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", f"{seconds:g}"),
            *(options or []),
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


def encoded(directory: Path, kind: str, seconds: float = 0.3, stem: str = "sound") -> Path:
    """A tone of `seconds` encoded as `kind` (a key of ENCODINGS)."""
    extension, options = ENCODINGS[kind]
    return make(directory / f"{stem}{extension}", seconds=seconds, options=options)
