"""Exit codes opsctl promises to scripts, and the error type that carries them.

| code | meaning                                                                                   |
|------|-------------------------------------------------------------------------------------------|
| 0    | ok                                                                                        |
| 1    | unexpected error (including 5xx answers of the API server)                                |
| 2    | usage error: bad command line (typer's own)                                               |
| 3    | not found: the TradingSymbol, the revision asked for, or the TradingSymbol API itself     |
| 4    | the API server cannot be reached, no usable kubeconfig, or access refused (401/403)       |
| 5    | timed out waiting (`rollback --wait`)                                                     |
| 6    | rejected: the API server refused the request (409, 422, other 4xx; its message is printed) |
|      | or opsctl refused it for the same kind of reason before sending it (rollback to the       |
|      | revision that is already running)                                                         |

Every failure prints one line `opsctl: error: ...` on stderr and no traceback (set OPSCTL_DEBUG=1 to get one
for unexpected errors)."""

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
    """The API server rejected the request (invalid, conflict), or opsctl did for the same reason."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected error, 2 usage, 3 not found (TradingSymbol or revision), "
    "4 API unreachable or unauthorised, 5 timed out waiting, 6 rejected by the API server "
    "(or a rollback to the running revision). Errors are one line on stderr: 'opsctl: error: ...'."
)


class OpsctlError(Exception):
    """An expected failure: printed as one line, exits with its code."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
