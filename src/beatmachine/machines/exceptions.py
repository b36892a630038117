"""Errors of the machines domain."""

from __future__ import annotations

from beatmachine.core.errors import AppError


class MachineNotFound(AppError):
    code, status, message = "MACHINE_NOT_FOUND", 404, "No such machine."


class MachineVersionNotFound(AppError):
    code, status, message = "MACHINE_VERSION_NOT_FOUND", 404, "No such version of this machine."


class InstrumentNotFound(AppError):
    code, status, message = "INSTRUMENT_NOT_FOUND", 404, "No such instrument in this machine."


class MachineExists(AppError):
    code, status, message = "CONFLICT", 409, "A machine with this id or flavor already exists."


class InstrumentExists(AppError):
    code, status, message = "CONFLICT", 409, "This machine already has an instrument with this id."
