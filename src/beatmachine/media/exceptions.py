"""Errors of the media domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError, Conflict


class SampleNotFound(AppError):
    code, status, message = "SAMPLE_NOT_FOUND", 404, "No such sample."


class SampleNameTaken(Conflict):
    message = "You already have a sample of this name."


class QuotaExceeded(AppError):
    code, status, message = "QUOTA_EXCEEDED", 413, "The sample would pass your storage quota."


class NotRetryable(Conflict):
    message = "Only a sample whose conversion failed can be converted again."
