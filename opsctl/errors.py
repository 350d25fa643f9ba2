"""Exit codes opsctl (and `python -m drills`, the same commands) promises to scripts, and the error that
carries them.

| code | meaning                                                                                        |
|------|------------------------------------------------------------------------------------------------|
| 0    | ok (also when a reader closed the pipe early, as with `| head -1`)                             |
| 1    | unexpected error (including 5xx answers of the API server)                                     |
| 2    | usage: a bad command line, or a setting the command needs is missing (a bucket, a DSN)         |
| 3    | not found: the TradingSymbol, the revision, a backup, a drill or its report; or no data at all |
| 4    | unreachable: the API server, Prometheus, S3, PostgreSQL or Redis; no usable kubeconfig; 401/403 |
| 5    | timed out waiting (`--wait`, `--timeout`)                                                      |
| 6    | rejected: the API server refused the request (409, 422, other 4xx), opsctl refused it for the  |
|      | same kind of reason before sending it, or a backup failed verification                         |
| 7    | a check failed: a drill failed one or missed its RTO/RPO objective, or the audit chain does    |
|      | not verify (an entry edited, deleted or moved)                                                 |
| 8    | no answer: a server accepted the connection but did not answer within --request-timeout        |

Every failure prints one line `opsctl: error: ...` on stderr that says what failed and what to do, and no
traceback (OPSCTL_DEBUG=1 adds one for unexpected errors)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1
    """Unexpected error."""
    USAGE = 2
    """Bad command line (typer's own), or a missing setting."""
    NOT_FOUND = 3
    """The object asked for does not exist, or the answer is empty."""
    UNREACHABLE = 4
    """A server cannot be reached, refused our credentials, or there is no usable kubeconfig."""
    TIMEOUT = 5
    """A --wait ran out of time."""
    REJECTED = 6
    """The API server rejected the request (invalid, conflict), or opsctl did for the same reason."""
    CHECK_FAILED = 7
    """A drill failed a check or missed its objective, or the audit chain does not verify."""
    NO_ANSWER = 8
    """A server took the connection and did not answer within --request-timeout."""


EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected error, 2 usage or missing setting, 3 not found or nothing to show, "
    "4 unreachable or unauthorised (API server, Prometheus, S3, databases; kubeconfig), 5 timed out waiting, "
    "6 rejected (by the API server, as not applicable, or a corrupted backup), 7 a check failed (a drill, the "
    "audit chain), "
    "8 no answer within --request-timeout. Errors are one line on stderr: 'opsctl: error: ...'."
)


class OpsctlError(Exception):
    """An expected failure: printed as one line, exits with its code."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
