"""The names of the numbers the rollup keeps, and the kinds of usage events."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a usage event records."""

    PATTERN_CREATED = "pattern_created"
    PATTERN_SAVED = "pattern_saved"
    PATTERN_PLAYED = "pattern_played"
    PATTERN_LIKED = "pattern_liked"
    USER_REGISTERED = "user_registered"


class Metric(StrEnum):
    """A rollup's `metric`; its `key` is in the comment."""

    PATTERNS_CREATED = "patterns_created"  # flavor
    PATTERNS_SAVED = "patterns_saved"  # flavor
    INSTRUMENTS = "instruments"  # instrument id: patterns created that switch it on
    TEMPO = "tempo"  # "<flavor>:<bpm>", patterns created
    KEY = "key"  # "<flavor>:<keyNote>", patterns created
    PLAYS = "plays"  # ""
    LIKES = "likes"  # ""
    SIGNUPS = "signups"  # ""
    ACTIVE_USERS = "active_users"  # "": distinct accounts active in the period
    COHORT_ACTIVE = "cohort_active"  # cohort week "YYYY-MM-DD": of it, active that week
    PATTERN_PLAYS = "pattern_plays"  # pattern id (days only: the trending ranges' input)
    PATTERN_LIKES = "pattern_likes"  # pattern id (days only)


# Counts that add up: a week's, month's or year's value is the sum of its days.
SUMMED = (
    Metric.PATTERNS_CREATED,
    Metric.PATTERNS_SAVED,
    Metric.INSTRUMENTS,
    Metric.TEMPO,
    Metric.KEY,
    Metric.PLAYS,
    Metric.LIKES,
    Metric.SIGNUPS,
)
