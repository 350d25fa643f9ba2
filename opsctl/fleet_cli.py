"""`opsctl fleet`: FleetRollouts — one change rolled out over many TradingSymbols in waves."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from audit.identity import stamp
from opsctl import kit, printing
from opsctl.follow import now
from opsctl.kit import verb
from opsctl.kube import Obj
from opsctl.options import Cluster, Output, Target
from opsctl.tables import Column, age
from trading_operator.fleet_api import FLEET_ABORT_ANNOTATION, FLEET_API_VERSION, FLEET_PLURAL, FLEET_SINGULAR

app = kit.group("FleetRollouts: list, status, abort.")
FleetArg = Annotated[str, typer.Argument(metavar="NAME", help="The FleetRollout's name.")]
LIST_COLUMNS = [Column("NAME"), Column("PHASE"), Column("WAVE"), Column("SYMBOLS"), Column("CHANGE", wrap=True),
                Column("AGE")]
SYMBOL_COLUMNS = [Column("WAVE"), Column("NAME"), Column("STATE"), Column("FROM"), Column("TO"),
                  Column("MESSAGE", wrap=True)]
CONDITION_COLUMNS = [Column("TYPE"), Column("STATUS"), Column("REASON"), Column("MESSAGE", wrap=True)]


def _path(namespace: str | None, name: str | None = None) -> str:
    path = f"/apis/{FLEET_API_VERSION}" + (f"/namespaces/{namespace}" if namespace else "") + f"/{FLEET_PLURAL}"
    return path + (f"/{name}" if name else "")


def _what(target: Target, name: str) -> str:
    return f'FleetRollout "{name}" in namespace "{target.namespace}"'


def _get(target: Target, name: str) -> Obj:
    return dict(target.kube.get(_path(target.namespace, name), what=_what(target, name)))


def _change(rollout: Obj) -> str:
    change = (rollout.get("spec") or {}).get("change") or {}
    parts = [f"image {change['image']}"] if change.get("image") else []
    if change.get("config"):
        parts.append(f"config {json.dumps(change['config'], separators=(',', ':'))}")
    return ", ".join(parts) or "-"


def _tally(symbols: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for symbol in symbols:
        counts[symbol.get("state", "Pending")] = counts.get(symbol.get("state", "Pending"), 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "0"


def _name(name: str) -> str:
    return f"{FLEET_SINGULAR}.{FLEET_API_VERSION.split('/')[0]}/{name}"


@verb(app, name="list")
def list_(cluster: Cluster, out: Output) -> None:
    """The FleetRollouts of the namespace: phase, wave, symbols by state, the change."""
    target = cluster.connect()
    listed = target.kube.get(_path(target.namespace),
                             what="the FleetRollout API (is the CRD installed? kubectl apply -f deploy/crds/)")
    items = sorted((dict(i) for i in listed.get("items") or []), key=lambda o: o["metadata"]["name"])
    if printing.emit(out, {"apiVersion": "v1", "kind": "List", "items": items},
                     [_name(i["metadata"]["name"]) for i in items]):
        return
    if not items:
        printing.note(f"No FleetRollouts in namespace {target.namespace}.")
        return
    moment = now()
    rows = []
    for item in items:
        state = item.get("status") or {}
        rows.append([item["metadata"]["name"], state.get("phase", "Pending"),
                     f"{state.get('currentWave', 0)}/{state.get('waves', 0)}", _tally(state.get("symbols") or []),
                     _change(item), age(item["metadata"].get("creationTimestamp"), moment)])
    printing.table(LIST_COLUMNS, rows)


@verb(app)
def status(cluster: Cluster, out: Output, name: FleetArg) -> None:
    """One FleetRollout: its change, waves, conditions and every symbol's state and revisions."""
    target = cluster.connect()
    rollout = _get(target, name)
    state = rollout.get("status") or {}
    if printing.emit(out, rollout, [_name(name)]):
        return
    steps = (rollout.get("spec") or {}).get("steps") or []
    printing.say(f"{name}: {state.get('phase', 'Pending')}, wave {state.get('currentWave', 0)}/"
                 f"{state.get('waves', 0)} (steps {', '.join(steps)})")
    printing.say(f"change: {_change(rollout)}")
    if state.get("message"):
        printing.say(f"now: {state['message']}")
    printing.table(CONDITION_COLUMNS, [[c.get("type", ""), c.get("status", ""), c.get("reason", ""),
                                        c.get("message", "")] for c in state.get("conditions") or []],
                   title="Conditions")
    rows = [[str(s.get("wave", "")), s.get("name", ""), s.get("state", "Pending"), str(s.get("fromRevision") or "-"),
             str(s.get("toRevision") or "-"), s.get("message", "")] for s in state.get("symbols") or []]
    printing.table(SYMBOL_COLUMNS, rows, title="Symbols")


@verb(app)
def abort(cluster: Cluster, out: Output, name: FleetArg) -> None:
    """Stop a FleetRollout: no further wave starts and the change is taken back from every symbol it reached."""
    target = cluster.connect()
    rollout = _get(target, name)
    phase = (rollout.get("status") or {}).get("phase", "Pending")
    done = phase in {"Completed", "Failed", "Aborted", "Invalid"}
    if not done:
        moment = now().strftime("%Y-%m-%dT%H:%M:%SZ")
        annotations = {FLEET_ABORT_ANNOTATION: moment, **stamp(target.actor)}
        target.kube.merge_patch(_path(target.namespace, name), {"metadata": {"annotations": annotations}},
                                what=_what(target, name))
    if printing.emit(out, {"name": name, "namespace": target.namespace, "action": "abort", "requested": not done,
                           "phase": phase}, [_name(name)]):
        return
    if done:
        printing.say(f"{name} unchanged: it is already {phase}")
    else:
        printing.say(f"{name}: abort requested; the operator takes the change back from every symbol it reached "
                     f"(follow with: opsctl fleet status {name})")
