"""Exit codes opsctl promises to scripts, and the error type that carries them."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    """Unexpected error."""
    USAGE = 2
    """Bad command line (typer's own)."""
    NOT_FOUND = 3
    """The TradingSymbol or revision does not exist."""
    UNREACHABLE = 4
    """The API server cannot be reached, or refused our credentials."""
    TIMEOUT = 5
    """A --wait ran out of time."""
    REJECTED = 6
    """The API server rejected the request (invalid, conflict)."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 not found, 4 API unreachable or unauthorised, "
    "5 timed out waiting, 6 rejected by the API server."
)


class OpsctlError(Exception):
    """An expected failure: printed as one line, exits with its code."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
