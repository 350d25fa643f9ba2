"""TradingSymbols, their ControllerRevisions and Events through the API server, and what a name on the
command line means: a TradingSymbol's name, or a ticker when exactly one TradingSymbol trades it."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterator

from audit.identity import stamp
from opsctl.errors import ExitCode, OpsctlError
from opsctl.kube import GoneError, Obj, WatchEvent
from opsctl.options import Target
from opsctl.printing import note
from opsctl.render import event_time
from trading_operator import naming
from trading_operator.identity import API_VERSION, KIND, PLURAL
from trading_operator.revisions import Revision, revision_from_object

WATCH_SECONDS = 60
"""A watch is renewed this often (the server ends it), so a dead connection is noticed."""
BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Pauses before watching again after consecutive failures."""


def symbols_path(namespace: str | None, name: str | None = None) -> str:
    """The REST path of TradingSymbols (every namespace when `namespace` is None), or of one."""
    path = f"/apis/{API_VERSION}" + (f"/namespaces/{namespace}" if namespace else "") + f"/{PLURAL}"
    return path + (f"/{name}" if name else "")


def _what(target: Target, name: str) -> str:
    return f'TradingSymbol "{name}" in namespace "{target.namespace}"'


def _list(target: Target, namespace: str | None, selector: str | None = None) -> Obj:
    query = {"labelSelector": selector} if selector else None
    return dict(target.kube.get(symbols_path(namespace), query,
                                what="the TradingSymbol API (is the CRD installed? kubectl apply -f deploy/crds/)"))


def list_symbols(target: Target, all_namespaces: bool, selector: str | None = None) -> tuple[list[Obj], str]:
    """TradingSymbols (sorted by namespace and name) and the list's resourceVersion (to watch from)."""
    listed = _list(target, None if all_namespaces else target.namespace, selector)
    items = [dict(i) for i in listed.get("items") or []]
    items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    return items, str((listed.get("metadata") or {}).get("resourceVersion") or "")


def get_symbol(target: Target, name: str) -> Obj:
    """The TradingSymbol of that name; else the one trading that ticker; else not found, with a hint."""
    try:
        return dict(target.kube.get(symbols_path(target.namespace, name), what=_what(target, name)))
    except OpsctlError as error:
        if error.code is not ExitCode.NOT_FOUND:
            raise
        found = _resolve(target, name)
        if found is None:
            raise OpsctlError(ExitCode.NOT_FOUND, f"{_what(target, name)} not found{_hint(target, name)}") from None
        note(f'opsctl: "{name}" is the ticker of TradingSymbol "{found["metadata"]["name"]}"; using it')
        return found


def _resolve(target: Target, name: str) -> Obj | None:
    """The one TradingSymbol of the namespace whose ticker (or name, in any case) is `name`."""
    items = [dict(i) for i in _list(target, target.namespace).get("items") or []]
    matches = [i for i in items if str((i.get("spec") or {}).get("symbol", "")).upper() == name.upper()
               or i["metadata"]["name"] == name.lower()]
    if len(matches) > 1:
        names = ", ".join(sorted(m["metadata"]["name"] for m in matches))
        raise OpsctlError(ExitCode.NOT_FOUND, f'{_what(target, name)} not found, and several TradingSymbols trade '
                                              f"{name.upper()} ({names}): name one of them")
    return matches[0] if matches else None


def _hint(target: Target, name: str) -> str:
    """`: did you mean spy?`, or where such a TradingSymbol lives, or how to list them."""
    names = [i["metadata"]["name"] for i in _list(target, target.namespace).get("items") or []]
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
    if close:
        return f": did you mean {' or '.join(close)}?"
    try:
        elsewhere = sorted({str(i["metadata"].get("namespace")) for i in _list(target, None).get("items") or []
                            if name.lower() in (i["metadata"]["name"], str(i.get("spec", {}).get("symbol")).lower())})
    except OpsctlError:  # may not list other namespaces: no hint from there
        elsewhere = []
    if elsewhere:
        return f": it exists in namespace {', '.join(elsewhere)} (pass -n {elsewhere[0]})"
    if names:
        return f" (TradingSymbols here: {', '.join(sorted(names)[:8])}{', ...' if len(names) > 8 else ''})"
    return f': there are no TradingSymbols in namespace "{target.namespace}" (pass -n NAMESPACE, or `get -A`)'


def patch_symbol(target: Target, name: str, patch: Obj) -> Obj:
    """Merge-patch a TradingSymbol, stamped with who asked (audit.identity)."""
    metadata = patch.get("metadata") or {}
    annotations = {**(metadata.get("annotations") or {}), **stamp(target.actor)}
    stamped = {**patch, "metadata": {**metadata, "annotations": annotations}}
    return dict(target.kube.merge_patch(symbols_path(target.namespace, name), stamped, what=_what(target, name)))


def revision_objects(target: Target, ts: Obj) -> list[Obj]:
    """The TradingSymbol's ControllerRevisions (owned by this very object), oldest first."""
    name, uid = ts["metadata"]["name"], ts["metadata"].get("uid")
    listed = target.kube.get(f"/apis/apps/v1/namespaces/{target.namespace}/controllerrevisions",
                             {"labelSelector": f"{naming.OWNER_NAME_LABEL}={name}"})
    owned = [dict(o) for o in listed.get("items") or []
             if not uid or any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences", []))]
    return sorted(owned, key=lambda o: int(o.get("revision", 0)))


def as_revisions(objects: list[Obj]) -> list[Revision]:
    return [revision_from_object(o) for o in objects]


def is_event_of(event: Obj, ts: Obj) -> bool:
    """An Event about this TradingSymbol: same kind and name, and the same uid when both are known (not one
    about an earlier object of the same name)."""
    involved, meta = event.get("involvedObject") or {}, ts["metadata"]
    if involved.get("kind") != KIND or involved.get("name") != meta["name"]:
        return False
    return not (involved.get("uid") and meta.get("uid") and involved["uid"] != meta["uid"])


def events_of(target: Target, ts: Obj) -> list[Obj]:
    """Events about a TradingSymbol, oldest first (filtered here: fieldSelectors are not served everywhere)."""
    listed = target.kube.get(f"/api/v1/namespaces/{target.namespace}/events")
    mine = [dict(e) for e in listed.get("items") or [] if is_event_of(e, ts)]
    return sorted(mine, key=_event_order)


def _event_order(event: Obj) -> tuple[str, int]:
    version = str((event.get("metadata") or {}).get("resourceVersion") or "")
    return event_time(event), int(version) if version.isdigit() else 0


def watch_symbols(target: Target, namespace: str | None, resource_version: str, deadline: float | None,
                  selector: str | None = None, name: str | None = None) -> Iterator[WatchEvent]:
    """Changes of TradingSymbols after `resource_version` until `deadline` (monotonic; None: forever). The
    watch is renewed as the server ends it, and after an outage (backing off); when the version is too old
    the list is read again and its objects come as MODIFIED events (a watcher redraws only what changed)."""
    query = {"allowWatchBookmarks": "true"}
    if selector:
        query["labelSelector"] = selector
    if name:
        query["fieldSelector"] = f"metadata.name={name}"
    version, failures = resource_version, 0
    while deadline is None or time.monotonic() < deadline:
        seconds = WATCH_SECONDS if deadline is None else max(1, min(WATCH_SECONDS, int(deadline - time.monotonic())))
        try:
            for event in target.kube.watch(symbols_path(namespace), {**query, "resourceVersion": version}, seconds):
                failures = 0
                version = str(event.object.get("metadata", {}).get("resourceVersion") or version)
                if event.type != "BOOKMARK":
                    yield event
        except GoneError:
            listed = _list(target, namespace, selector)
            version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
            for item in listed.get("items") or []:
                if name is None or item["metadata"]["name"] == name:
                    yield WatchEvent("MODIFIED", dict(item))
        except OpsctlError as error:
            # An outage: say so, back off, and watch again from the last version seen.
            if error.code not in (ExitCode.UNREACHABLE, ExitCode.NO_ANSWER):
                raise
            pause = BACKOFF[min(failures, len(BACKOFF) - 1)]
            failures += 1
            note(f"opsctl: watch interrupted ({error.message}); again in {pause:g}s")
            time.sleep(pause)


def wait_for(target: Target, name: str, done: Callable[[Obj], bool], timeout: float,
             progress: Callable[[Obj], None], what: str) -> Obj:
    """Follow one TradingSymbol (a watch, not polling) until `done` holds; `progress` sees every state.
    Exit code 5 when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    ts = get_symbol(target, name)
    progress(ts)
    if done(ts):
        return ts
    version = str(ts["metadata"].get("resourceVersion") or "")
    for event in watch_symbols(target, target.namespace, version, deadline, name=name):
        if event.type == "DELETED":
            raise OpsctlError(ExitCode.NOT_FOUND, f"{_what(target, name)} was deleted while waiting for {what}")
        ts = event.object
        progress(ts)
        if done(ts):
            return ts
    raise OpsctlError(ExitCode.TIMEOUT, f"timed out after {timeout:g}s waiting for {what} (it may still happen: "
                                        f"`opsctl describe {name}`; a longer --timeout waits longer)")
