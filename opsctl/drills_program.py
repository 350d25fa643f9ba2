"""`python -m drills`: the backup and drill commands of opsctl as a program of their own, for CronJobs and
workflows (`python -m drills backup create`, `python -m drills run restore-latest`): the same verbs, options,
output formats, errors and exit codes as `opsctl backup ...` and `opsctl drill ...`."""

from __future__ import annotations

from drills.config import ENV
from opsctl import backup_cli, drill_cli, kit
from opsctl.errors import EXIT_CODES_HELP
from opsctl.kit import Lazy
from opsctl.options import Output
from opsctl.storage import Drill, Storage

app = kit.program(
    "drills",
    "Backups (create, list, verify, restore, prune) and DR drills (run, list, report); the same commands are "
    "`opsctl backup ...` and `opsctl drill ...`. Settings come from flags (before or after the command), then "
    "environment variables (secrets only from the environment), then an optional --config YAML of non-secret "
    "settings. See docs/backups-and-drills.md.",
    "Environment: " + "; ".join(f"{name}: {what}" for name, what in ENV.items()) + ". " + EXIT_CODES_HELP,
    {"backup": Lazy(backup_cli.__name__, backup_cli.HELP)},
    Storage, Drill, Output,
)
drill_cli.register(app)
