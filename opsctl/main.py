"""opsctl: operate TradingSymbols — status, history, rollback, pause and the kill switch, the analysis of
new revisions, the auto-tuner, policies, error budgets, backups and DR drills.

NAME is the TradingSymbol's metadata.name (`spy` for the SPY manifest); a ticker works when one
TradingSymbol in the namespace trades it."""

from __future__ import annotations

from opsctl import kit, rollout_cli, symbols_cli, top_cli, version_cli
from opsctl.errors import EXIT_CODES_HELP
from opsctl.kit import Lazy
from opsctl.options import Cluster, Output

EPILOG = (
    "Options may go before or after the command (kubectl's way): -n/--namespace, --context, --kubeconfig, "
    "--request-timeout, -o/--output. -o: table (default), wide, json, yaml, name, jsonpath=TEMPLATE; json/yaml "
    "of get/history are the API objects (a List when several), of describe {object, revisions, events}, of "
    'other commands a small result, e.g. {"name": "spy", "namespace": "default", "action": "rollback", '
    '"revision": 2, "request": "rollback-3f9c0a1b2c3d", "fromRevision": 2, "toRevision": 1, "waited": false, '
    '"outcome": "Accepted"}. Shell completion: opsctl --install-completion. '
    + EXIT_CODES_HELP
)

# Command groups, loaded when named (boto3, the Prometheus client and the policy models stay out of `get`);
# each help is the group's own (a test keeps them equal).
GROUPS = {
    "tune": Lazy("opsctl.tune_cli", "The auto-tuner: status, freeze, unfreeze."),
    "policy": Lazy("opsctl.policy_cli", "Lint policy files; check TradingSymbol manifests against admission and "
                                        "risk policies."),
    "slo": Lazy("opsctl.slo_cli", "Error budgets per TradingSymbol and SLO, measured in Prometheus."),
    "backup": Lazy("opsctl.backup_cli", "Backups to S3: create, list, verify, restore, prune."),
    "drill": Lazy("opsctl.drill_cli", "DR drills: run NAME, list, report."),
    "audit": Lazy("opsctl.audit_cli", "The audit trail: verify the chain, its head, the entries, the monthly archive."),
    "report": Lazy("opsctl.report_cli", "Reports: the production analysis, compliance evidence, cost per symbol."),
    "backtest": Lazy("opsctl.backtest_cli", "Backtests of the live engine on recorded or synthetic data, on Dask."),
    "model": Lazy("opsctl.model_cli", "Meta-models in the MLflow registry: list, describe, promote."),
    "fleet": Lazy("opsctl.fleet_cli", "FleetRollouts: list, status, pause, resume, abort, retry."),
}

app = kit.program("opsctl", __doc__ or "", EPILOG, GROUPS, Cluster, Output, version=version_cli.client_version)
for verbs in (symbols_cli, rollout_cli, top_cli, version_cli):
    app.add_typer(verbs.app)
