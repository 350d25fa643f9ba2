"""`python -m drills`: a thin entry over opsctl's backup and drill commands (opsctl.drills_program), which
CronJobs and workflows call; `opsctl backup ...` and `opsctl drill ...` are the same commands."""

from __future__ import annotations

from opsctl.drills_program import app

__all__ = ["app"]
