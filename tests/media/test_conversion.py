"""The working form of a sample: mono, 44,100 Hz, trimmed to its sound (10 ms before the
attack kept), at -16 LUFS unless that passes -1 dBTP true peak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beatmachine.media import conversion
from beatmachine.media.conversion import (
    KEEP_AFTER_RELEASE,
    KEEP_BEFORE_ATTACK,
    SAMPLE_RATE,
    ConversionFailed,
    convert,
    wav_samples,
)
from tests.media.audio import make

TIME_LIMIT = 30.0
FORMATS = ("wav", "flac")


def stereo_tone_after_silence(
    tmp_path: Path, *, silence: float, tone: float, volume: float
) -> Path:
    """`silence` seconds of nothing, then a 1 kHz tone of `tone` seconds at `volume`,
    then 0.2 s of nothing, as a 48 kHz stereo FLAC."""
    source = (
        f"aevalsrc='if(between(t,{silence},{silence + tone}),{volume}*sin(2*PI*1000*t),0)'"
        ":s=48000:c=stereo"
    )
    return make(
        tmp_path / "hit.flac", source=source, seconds=silence + tone + 0.2, options=["-c:a", "flac"]
    )


async def test_the_silence_around_the_sound_is_trimmed_keeping_10_ms(tmp_path: Path) -> None:
    path = stereo_tone_after_silence(tmp_path, silence=0.5, tone=0.3, volume=0.25)

    form = await convert(str(path), formats=FORMATS, max_seconds=30, time_limit=TIME_LIMIT)

    expected = round(0.3 * SAMPLE_RATE) + KEEP_BEFORE_ATTACK + KEEP_AFTER_RELEASE
    assert abs(form.length - expected) <= 30
    pcm = wav_samples(form.wav)
    assert len(pcm) == form.length
    # The kept 10 ms before the attack are (almost) silent; the tone starts after them.
    assert np.abs(pcm[: KEEP_BEFORE_ATTACK - 30]).max() < 100
    assert np.abs(pcm[KEEP_BEFORE_ATTACK + 30 : KEEP_BEFORE_ATTACK + 500]).max() > 1000


async def test_a_quiet_sound_is_brought_to_minus_16_lufs(tmp_path: Path) -> None:
    path = stereo_tone_after_silence(tmp_path, silence=0.1, tone=1.0, volume=0.05)

    form = await convert(str(path), formats=FORMATS, max_seconds=30, time_limit=TIME_LIMIT)

    assert form.loudness.integrated == pytest.approx(-16.0, abs=0.3)
    assert form.loudness.true_peak <= -1.0 + 0.1
    assert form.gain_db > 0


async def test_a_peaky_sound_stops_at_the_true_peak_ceiling(tmp_path: Path) -> None:
    # A 20 ms click in 0.5 s: reaching -16 LUFS would need a peak far above full scale.
    path = stereo_tone_after_silence(tmp_path, silence=0.1, tone=0.02, volume=0.1)

    form = await convert(str(path), formats=FORMATS, max_seconds=30, time_limit=TIME_LIMIT)

    assert form.loudness.true_peak == pytest.approx(-1.0, abs=0.2)
    assert form.loudness.integrated < -16.0


async def test_the_working_form_is_mono_16_bit_44100_hz_and_has_a_preview(tmp_path: Path) -> None:
    path = stereo_tone_after_silence(tmp_path, silence=0.0, tone=0.3, volume=0.5)

    form = await convert(str(path), formats=FORMATS, max_seconds=30, time_limit=TIME_LIMIT)

    assert len(wav_samples(form.wav)) == form.length  # reads only mono 16-bit 44.1 kHz
    assert form.preview[:3] == b"ID3" or form.preview[0] == 0xFF


async def test_a_silent_sample_cannot_be_converted(tmp_path: Path) -> None:
    path = make(tmp_path / "silence.wav", source="anullsrc=r=44100:cl=mono", seconds=0.5)

    with pytest.raises(ConversionFailed) as caught:
        await convert(str(path), formats=FORMATS, max_seconds=30, time_limit=TIME_LIMIT)

    assert caught.value.reason == "the sample is silent"


def test_the_gain_is_the_smaller_of_the_target_and_the_ceiling() -> None:
    quiet = conversion.Loudness(integrated=-30.0, true_peak=-20.0)
    peaky = conversion.Loudness(integrated=-30.0, true_peak=-5.0)

    assert conversion.normalising_gain(quiet) == pytest.approx(14.0)
    assert conversion.normalising_gain(peaky) == pytest.approx(4.0)


def test_a_sound_below_the_absolute_gate_is_too_quiet_to_measure() -> None:
    # ebur128 answers -70 LUFS when every block is gated out.
    with pytest.raises(ConversionFailed) as caught:
        conversion.normalising_gain(conversion.Loudness(integrated=-70.0, true_peak=-60.0))

    assert caught.value.reason == "the sample is too quiet to measure"


async def test_a_file_is_opened_only_as_the_kind_it_was_found_to_be(tmp_path: Path) -> None:
    path = make(tmp_path / "tone.mp3", seconds=0.3, options=["-c:a", "libmp3lame"])

    with pytest.raises(ConversionFailed) as caught:
        await convert(str(path), formats=("wav",), max_seconds=30, time_limit=TIME_LIMIT)

    assert caught.value.reason == "the audio could not be decoded"
