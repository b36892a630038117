"""A sample's working form: what every sound of a bank is made from.

1. Decoded by ffmpeg to mono, 44,100 Hz, 32-bit float.
2. Trimmed: everything before the first sample within `SILENCE_BELOW_PEAK_DB` of the
   peak goes, keeping `KEEP_BEFORE_ATTACK` (10 ms) before it; after the last such
   sample, 10 ms are kept too.
3. Loudness-normalised by one gain: EBU R128 (ITU-R BS.1770-4) integrated loudness to
   `TARGET_LUFS` (-16 LUFS), unless that would lift the true peak (4x oversampled)
   above `TRUE_PEAK_CEILING_DBTP` (-1 dBTP); then the gain is what reaches the ceiling,
   and the sound stays quieter than the target. Nothing is compressed or limited. A
   sound shorter than one 400 ms gating block is measured over one block (padded with
   silence), so a 100 ms hit is as loud as the same hit followed by silence.
4. Kept as 16-bit PCM WAV, with an MP3 preview of `PREVIEW_BITRATE`.

The numbers are computed in a worker thread (numpy) and by ffmpeg subprocesses with time
limits: nothing of it runs on the event loop.
"""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Collection
from dataclasses import dataclass

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from beatmachine.core import ffmpeg

SAMPLE_RATE = 44_100
TARGET_LUFS = -16.0
TRUE_PEAK_CEILING_DBTP = -1.0
SILENCE_BELOW_PEAK_DB = 45.0
KEEP_BEFORE_ATTACK = SAMPLE_RATE // 100  # 10 ms
KEEP_AFTER_RELEASE = SAMPLE_RATE // 100
GATING_BLOCK = int(SAMPLE_RATE * 0.4)
ABSOLUTE_GATE_LUFS = -70.0
PREVIEW_BITRATE = "64k"
_LOUDNESS = re.compile(r"^\s+I:\s+(?P<value>-?[\d.]+|-inf) LUFS", re.MULTILINE)
_TRUE_PEAK = re.compile(r"^\s+Peak:\s+(?P<value>-?[\d.]+|-inf) dBFS", re.MULTILINE)

Samples = npt.NDArray[np.float32]


class ConversionFailed(Exception):
    """The sample cannot be made into the working form; `reason` says why (for the owner)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (LUFS) and true peak (dBTP) of a sound."""

    integrated: float
    true_peak: float


@dataclass(frozen=True)
class WorkingForm:
    """The converted sample: its WAV and MP3 preview bytes, its length in samples, the
    gain applied and its loudness after it."""

    wav: bytes
    preview: bytes
    length: int
    gain_db: float
    loudness: Loudness


async def decode(
    path: str, *, formats: Collection[str], max_seconds: float, time_limit: float
) -> Samples:
    """The first audio stream of the file at `path`, as mono float samples at 44,100 Hz
    (at most `max_seconds` of it), opened only as one of `formats` (the demuxers of the
    kind the upload was found to be)."""
    completed = await ffmpeg.run(
        [
            *("-v", "error", "-protocol_whitelist", "file"),
            *("-format_whitelist", ",".join(sorted(formats)), "-i", f"file:{path}"),
            *("-map", "0:a:0", "-t", f"{max_seconds:g}"),
            *("-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"),
        ],
        time_limit=time_limit,
    )
    if completed.returncode != 0:
        raise ConversionFailed("the audio could not be decoded")
    return await anyio.to_thread.run_sync(
        lambda: np.frombuffer(completed.stdout, dtype="<f4").astype(np.float32)
    )


def trimmed(samples: Samples) -> Samples:
    """`samples` without the silence before the attack and after the release (keeping
    10 ms of each); `ConversionFailed` when nothing is heard."""
    magnitude = np.abs(samples)
    peak = float(magnitude.max()) if len(magnitude) else 0.0
    if peak <= 10 ** (-90 / 20):
        raise ConversionFailed("the sample is silent")
    heard = magnitude >= peak * 10 ** (-SILENCE_BELOW_PEAK_DB / 20)
    first = int(np.argmax(heard))
    last = len(heard) - 1 - int(np.argmax(heard[::-1]))
    start = max(0, first - KEEP_BEFORE_ATTACK)
    end = min(len(samples), last + 1 + KEEP_AFTER_RELEASE)
    return samples[start:end]


async def measure(samples: Samples, *, time_limit: float) -> Loudness:
    """EBU R128 integrated loudness and true peak of `samples` (see the module)."""
    completed = await ffmpeg.run(
        [
            *("-v", "info", "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0"),
            *("-af", f"apad=whole_len={GATING_BLOCK},ebur128=peak=true:framelog=quiet"),
            *("-f", "null", "-"),
        ],
        time_limit=time_limit,
        stdin=await anyio.to_thread.run_sync(lambda: samples.astype("<f4").tobytes()),
    )
    loudness = _LOUDNESS.findall(completed.stderr)
    peak = _TRUE_PEAK.findall(completed.stderr)
    if completed.returncode != 0 or not loudness or not peak:
        raise ConversionFailed("the loudness could not be measured")
    return Loudness(integrated=_decibels(loudness[-1]), true_peak=_decibels(peak[-1]))


def _decibels(value: str) -> float:
    return float("-inf") if value == "-inf" else float(value)


def normalising_gain(loudness: Loudness) -> float:
    """The gain in dB that brings `loudness` to the target without passing the ceiling."""
    # ebur128 answers -70 LUFS (its absolute gate) when no block is loud enough to count.
    if loudness.integrated <= ABSOLUTE_GATE_LUFS:
        raise ConversionFailed("the sample is too quiet to measure")
    return min(TARGET_LUFS - loudness.integrated, TRUE_PEAK_CEILING_DBTP - loudness.true_peak)


def as_pcm16(samples: Samples) -> npt.NDArray[np.int16]:
    """Float samples as 16-bit integers (rounded, clipped to the range)."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")


def wav_bytes(pcm: npt.NDArray[np.int16]) -> bytes:
    """A mono 16-bit 44,100 Hz WAV file of `pcm`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm.tobytes())
    return out.getvalue()


def wav_samples(raw: bytes) -> npt.NDArray[np.int16]:
    """The samples of a working-form WAV file (as `wav_bytes` writes them)."""
    with wave.open(io.BytesIO(raw), "rb") as reader:
        if (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) != (
            1,
            2,
            SAMPLE_RATE,
        ):
            raise ValueError("not a mono 16-bit 44,100 Hz WAV file")
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


async def preview(pcm: npt.NDArray[np.int16], *, time_limit: float) -> bytes:
    """An MP3 of `pcm` at `PREVIEW_BITRATE`."""
    completed = await ffmpeg.run(
        [
            *("-v", "error", "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0"),
            *("-c:a", "libmp3lame", "-b:a", PREVIEW_BITRATE, "-f", "mp3", "-"),
        ],
        time_limit=time_limit,
        stdin=await anyio.to_thread.run_sync(pcm.tobytes),
    )
    if completed.returncode != 0 or not completed.stdout:
        raise ConversionFailed("the preview could not be encoded")
    return completed.stdout


async def convert(
    path: str, *, formats: Collection[str], max_seconds: float, time_limit: float
) -> WorkingForm:
    """The working form of the audio file at `path`, opened as one of `formats` (see the
    module)."""
    decoded = await decode(path, formats=formats, max_seconds=max_seconds, time_limit=time_limit)
    sound = await anyio.to_thread.run_sync(trimmed, decoded)
    gain = normalising_gain(await measure(sound, time_limit=time_limit))
    pcm = await anyio.to_thread.run_sync(lambda: as_pcm16(sound * np.float32(10 ** (gain / 20))))
    # Measured again as it will be played: rounded to 16 bits.
    played = await anyio.to_thread.run_sync(lambda: pcm.astype(np.float32) / np.float32(32767.0))
    after = await measure(played, time_limit=time_limit)
    return WorkingForm(
        wav=await anyio.to_thread.run_sync(wav_bytes, pcm),
        preview=await preview(pcm, time_limit=time_limit),
        length=len(pcm),
        gain_db=round(gain, 2),
        loudness=after,
    )
