"""`opsctl drill run NAME | list | report`: the drill commands of `python -m drills` (same flags,
environment variables and exit codes; exit 7 when a drill fails a check or misses its objective)."""

from __future__ import annotations

from drills.cli import drill_app

app = drill_app
