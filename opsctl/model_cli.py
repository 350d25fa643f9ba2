"""`opsctl model list|describe|promote`: the meta-models in the MLflow model registry (modelops/): their
versions and aliases, a version's metrics, data range and feature importance, and moving `champion`.

The registry is the tracking server at --tracking-uri (MLFLOW_TRACKING_URI). A promotion is appended to the
audit log at --database-url (TRADEOPS_DATABASE_URL): who, the model, the version, the alias and the version
it replaced. Exit codes: 2 no tracking URI, 3 no such model or version, 4 the tracking server or the audit
database cannot be reached (for the database: after the promotion, which the message says)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl import kit, printing
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kit import verb
from opsctl.options import Output, option_set
from opsctl.tables import Column

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# MLflow and the modelops package (seconds to import) load inside the commands only.

app = kit.group("Meta-models in the MLflow registry: list, describe, promote.")
LIST_COLUMNS = [Column("NAME"), Column("VERSION"), Column("ALIASES"), Column("RUN")]
IMPORTANCE_COLUMNS = [Column("FEATURE"), Column("IMPORTANCE"), Column("STD"), Column("MEAN |SHAP|")]


@option_set
@dataclass
class Registry:
    """Which MLflow tracking server holds the registry."""

    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", envvar="MLFLOW_TRACKING_URI", metavar="URI",
        help="MLflow tracking server, e.g. http://127.0.0.1:5000 (default: $MLFLOW_TRACKING_URI)")] = None

    def client(self) -> MlflowClient:
        if not self.tracking_uri:
            raise OpsctlError(ExitCode.USAGE, "no MLflow tracking server: pass --tracking-uri or set "
                                              "MLFLOW_TRACKING_URI")
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri)


def _call(fn: Any, *args: Any) -> Any:
    """An MLflow call with its failures mapped to opsctl's exit codes."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    try:
        return fn(*args)
    except RestException as exc:
        code = ExitCode.NOT_FOUND if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") \
            else ExitCode.ERROR
        raise OpsctlError(code, exc.message) from None
    except (requests.exceptions.ConnectionError, MlflowException) as exc:
        if isinstance(exc, MlflowException) and "Max retries" not in str(exc) and "connect" not in str(exc).lower():
            raise OpsctlError(ExitCode.ERROR, str(exc)) from None
        raise OpsctlError(ExitCode.UNREACHABLE, f"MLflow tracking server unreachable: {str(exc)[:200]}") from None


def _name(symbol_or_name: str) -> str:
    from modelops.tracking import model_name

    return symbol_or_name if symbol_or_name.startswith("tradeops-meta-") else model_name(symbol_or_name)


@verb(app, name="list")
def list_models(registry: Registry, out: Output,
                symbol: Annotated[str | None, typer.Argument(help="a symbol or model name")] = None) -> None:
    """Registered versions with their aliases (champion, challenger)."""
    from modelops.tracking import list_versions

    versions = _call(list_versions, registry.client(), _name(symbol) if symbol else None)
    if printing.emit(out, [dataclasses.asdict(v) for v in versions], [f"model/{v.name}/{v.version}" for v in versions]):
        return
    if not versions:
        raise OpsctlError(ExitCode.NOT_FOUND, "no registered models" + (f" for {symbol}" if symbol else ""))
    printing.table(LIST_COLUMNS, [[v.name, v.version, ",".join(v.aliases) or "-", v.run_id] for v in versions])


@verb(app)
def describe(registry: Registry, out: Output, symbol: Annotated[str, typer.Argument(help="a symbol or model name")],
             ref: Annotated[str, typer.Argument(help="a version number or an alias")] = "champion") -> None:
    """A version's metrics (precision against coverage with intervals), data range and feature importance
    (permutation importance, and the LightGBM member's mean |SHAP value| per held-out window)."""
    from modelops.tracking import describe as describe_version

    view = _call(describe_version, registry.client(), _name(symbol), ref)
    if printing.emit(out, dataclasses.asdict(view), [f"model/{view.name}/{view.version}"]):
        return
    printing.say(f"{view.name} version {view.version} ({', '.join(view.aliases) or 'no alias'}), run {view.run_id}")
    printing.say(f"data: {view.tags.get('data.symbol', '?')} from {view.tags.get('data.start', '?')} to "
                 f"{view.tags.get('data.end', '?')} (exchange time); verdict {view.tags.get('verdict', '?')}")
    for key in ("primary_hit_rate", "meta_precision", "score_baseline_hit_rate", "majority_baseline_hit_rate"):
        if key in view.metrics:
            printing.say(f"{key}: {view.metrics[key]:.3f} [{view.metrics.get(key + '_ci_low', float('nan')):.3f}, "
                         f"{view.metrics.get(key + '_ci_high', float('nan')):.3f}]")
    if "coverage" in view.metrics:
        printing.say(f"coverage: {view.metrics['coverage']:.3f}")
    for window in view.importance:
        ranked = sorted(window["mean"].items(), key=lambda kv: -kv[1])
        shap = window.get("shap") or {}
        printing.table(IMPORTANCE_COLUMNS, [[k, f"{v:.4f}", f"{window['std'][k]:.4f}",
                                             f"{shap[k]:.4f}" if k in shap else "-"] for k, v in ranked],
                       title=f"Permutation importance and TreeSHAP (LightGBM member), {window['symbol']} "
                             f"{window['window'][0]:.0f}–{window['window'][1]:.0f}")


def _record(database_url: str | None, name: str, version: str, previous: str | None) -> None:
    """Append the promotion to the audit log; without a database say so (it is then not in the trail)."""
    import datetime

    from audit.entries import model_promotion
    from audit.identity import opsctl_actor
    from audit.store import AuditStoreError, append
    from modelops.tracking import CHAMPION, model_name

    if not database_url:
        printing.note("warning: promotion NOT recorded in the audit trail: pass --database-url or set "
                      "TRADEOPS_DATABASE_URL")
        return
    symbol = name.removeprefix(model_name("")).upper()
    entry = model_promotion(actor=opsctl_actor(None), model=name, symbol=symbol, alias=CHAMPION, version=version,
                            previous=previous, at=datetime.datetime.now(datetime.UTC))
    try:
        append(database_url, [entry])
    except AuditStoreError as error:
        raise OpsctlError(ExitCode.UNREACHABLE, f"{name}: champion is now version {version}, but the promotion was "
                                                f"not recorded in the audit trail: {error}") from None


@verb(app)
def promote(registry: Registry, out: Output, symbol: Annotated[str, typer.Argument(help="a symbol or model name")],
            ref: Annotated[str, typer.Argument(help="the version or alias to promote")] = "challenger",
            database_url: Annotated[str | None, typer.Option(
                envvar="TRADEOPS_DATABASE_URL", metavar="DSN",
                help="PostgreSQL of the audit log the promotion is appended to ($TRADEOPS_DATABASE_URL)")] = None,
            ) -> None:
    """Point the `champion` alias at a version (the challenger by default), recorded in the audit trail."""
    from modelops.tracking import promote as promote_version

    name = _name(symbol)
    previous, version = _call(promote_version, registry.client(), name, ref)
    _record(database_url, name, version, previous)
    if printing.emit(out, {"name": name, "champion": version, "previous": previous}, [f"model/{name}/{version}"]):
        return
    printing.say(f"{name}: champion is version {version}" + (f" (was {previous})" if previous else " (first)"))
