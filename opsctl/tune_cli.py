"""`opsctl tune`: the auto-tuner's state and history, and freezing it."""

from __future__ import annotations

from opsctl import kit, printing
from opsctl.client import get_symbol, patch_symbol
from opsctl.completion import NameArg
from opsctl.follow import now
from opsctl.kit import verb
from opsctl.kube import Obj
from opsctl.options import Cluster, Output
from opsctl.render import symbol_name
from opsctl.tables import Column, age
from trading_operator import naming

app = kit.group("The auto-tuner: status, freeze, unfreeze.")
HISTORY_COLUMNS = [Column("AGE"), Column("PARAMETER"), Column("FROM"), Column("TO"), Column("REVISION"),
                   Column("BASELINE"), Column("OBJECTIVE"), Column("OUTCOME")]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


@verb(app)
def status(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Policy, accepted values, the proposal under analysis, budgets and the history of proposals."""
    ts = get_symbol(cluster.connect(), name)
    name = ts["metadata"]["name"]
    tuning = (ts.get("status") or {}).get("tuning") or {}
    frozen = naming.TUNING_FROZEN_ANNOTATION in (ts["metadata"].get("annotations") or {})
    if printing.emit(out, {**tuning, "frozen": frozen}, [symbol_name(name)]):
        return
    if not tuning:
        policy = ((ts.get("spec") or {}).get("policies") or {}).get("tuning", "default")
        printing.say(f"{name}: no tuning (its tuning policy {policy!r} is disabled or not yet applied)")
        return
    state = "frozen" if frozen else "converged" if tuning.get("converged") else "searching"
    moment = now()
    printing.say(f"{name}: tuning policy {tuning.get('policy')}, {state}")
    printing.say(f"accepted values: {tuning.get('overrides') or 'none (the spec values)'}")
    if tuning.get("candidate"):
        printing.say(f"under analysis: {tuning['candidate']} (baseline objective {tuning.get('baselineObjective')})")
    last = tuning.get("lastChangeAt")
    printing.say(f"last proposal {age(last, moment) + ' ago' if last else '-'}, "
            f"{len(tuning.get('changeTimes') or [])} in the last hour")
    rows = [[age(h.get("time"), moment), h.get("parameter", ""), f"{h.get('fromValue'):g}", f"{h.get('toValue'):g}",
             str(h.get("revision", "")), _number(h.get("baseline")), _number(h.get("objective")), h.get("outcome", "")]
            for h in tuning.get("history") or []]
    printing.table(HISTORY_COLUMNS, rows, title="Proposals")


def _freeze(cluster: Cluster, out: Output, name: str, frozen: bool) -> None:
    target = cluster.connect()
    ts = get_symbol(target, name)
    name = ts["metadata"]["name"]
    changed = (naming.TUNING_FROZEN_ANNOTATION in (ts["metadata"].get("annotations") or {})) != frozen
    if changed:
        value = "true" if frozen else None
        patch: Obj = {"metadata": {"annotations": {naming.TUNING_FROZEN_ANNOTATION: value}}}
        patch_symbol(target, name, patch)
    action = "freeze" if frozen else "unfreeze"
    if printing.emit(out, {"name": name, "namespace": target.namespace, "action": action, "changed": changed},
                [symbol_name(name)]):
        return
    if not changed:
        printing.say(f"{name} unchanged: tuning {'already frozen' if frozen else 'not frozen'}")
    else:
        what = "frozen: no new proposals (one under analysis finishes)" if frozen else "unfrozen"
        printing.say(f"{name}: tuning {what}")


@verb(app)
def freeze(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Stop new tuning proposals."""
    _freeze(cluster, out, name, True)


@verb(app)
def unfreeze(cluster: Cluster, out: Output, name: NameArg) -> None:
    """Allow tuning proposals again."""
    _freeze(cluster, out, name, False)
