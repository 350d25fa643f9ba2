"""`opsctl backup create | list | verify | restore | prune`: the backup commands of `python -m drills`
(same flags, environment variables and exit codes; -o json|yaml given to opsctl applies)."""

from __future__ import annotations

from drills.cli import backup_app

app = backup_app
