"""Failures the backup and drill commands report as one line and an exit code (the same numbering as
opsctl's, plus 7 for a drill that ran but failed a check or missed an objective)."""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    OK = 0
    ERROR = 1
    """Unexpected error."""
    USAGE = 2
    """Bad command line or configuration (a missing bucket or DSN)."""
    NOT_FOUND = 3
    """No such backup, scenario or report; no backup at all to restore."""
    UNREACHABLE = 4
    """S3, PostgreSQL or Redis cannot be reached, or refused our credentials."""
    CORRUPT = 6
    """A backup failed verification (missing, truncated or altered object): restore refuses it."""
    DRILL_FAILED = 7
    """A drill ran and failed a check or missed its RTO/RPO objective."""


class DrillsError(Exception):
    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
