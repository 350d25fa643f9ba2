"""opsctl end to end against a tiny, real HTTP API server (http.server in a thread on 127.0.0.1:0).

The server serves what opsctl reads and writes — TradingSymbols (GET, list, JSON merge PATCH), the
ControllerRevisions (list with a label selector) and core/v1 Events — and records every request, so the tests
assert exit codes, output, and the exact PATCH bodies opsctl sent. A kubeconfig in tmp_path points at it."""

from __future__ import annotations

import copy
import json
import pathlib
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from audit.identity import CHANGED_BY_ANNOTATION
from opsctl.errors import ExitCode
from opsctl.main import HALT_REASON_ANNOTATION, app
from tests.stamps import unstamped
from trading_operator import naming
from trading_operator.api import API_VERSION, GROUP, KIND, VERSION

runner = CliRunner()
Obj = dict[str, Any]

NS = "trading"
"""The kubeconfig context's namespace (opsctl's default)."""
MERGE_PATCH = "application/merge-patch+json"
RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}

_SYMBOLS = re.compile(rf"^/apis/{re.escape(GROUP)}/{VERSION}(?:/namespaces/(?P<ns>[^/]+))?/tradingsymbols"
                      r"(?:/(?P<name>[^/]+))?$")
_REVISIONS = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/controllerrevisions$")
_EVENTS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def status_body(code: int, reason: str, message: str) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}



@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any
    authorization: str


@dataclass
class FakeApi:
    """The state the server serves, the requests it received, and switches for failures."""

    symbols: dict[tuple[str, str], Obj] = field(default_factory=dict)
    revisions: dict[str, list[Obj]] = field(default_factory=dict)
    events: dict[str, list[Obj]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fail: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    """method -> (code, reason, message) answered instead of serving."""
    on_get_symbol: Callable[[Obj], None] | None = None
    """Called (under the lock) before a TradingSymbol is served: a stand-in operator."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def patches(self) -> list[tuple[str, str, Any]]:
        return [(r.path, r.content_type, unstamped(r.body)) for r in self.requests if r.method == "PATCH"]

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Obj]:
        with self.lock:
            if method in self.fail:
                code, reason, message = self.fail[method]
                return code, status_body(code, reason, message)
            if match := _SYMBOLS.match(path):
                return self._symbols(method, match["ns"], match["name"], body)
            if method == "GET" and (match := _REVISIONS.match(path)):
                items = self.revisions.get(match["ns"], [])
                for selector in query.get("labelSelector", []):
                    key, _, value = selector.partition("=")
                    items = [i for i in items if i["metadata"].get("labels", {}).get(key) == value]
                return 200, {"kind": "ControllerRevisionList", "apiVersion": "apps/v1", "metadata": {},
                             "items": copy.deepcopy(items)}
            if method == "GET" and (match := _EVENTS.match(path)):
                return 200, {"kind": "EventList", "apiVersion": "v1", "metadata": {},
                             "items": copy.deepcopy(self.events.get(match["ns"], []))}
            return 404, status_body(404, "NotFound", "the server could not find the requested resource")

    def _symbols(self, method: str, ns: str | None, name: str | None, body: Any) -> tuple[int, Obj]:
        if name is None and method == "GET":
            items = [o for (n, _), o in sorted(self.symbols.items()) if ns is None or n == ns]
            return 200, {"kind": "TradingSymbolList", "apiVersion": API_VERSION, "metadata": {},
                         "items": copy.deepcopy(items)}
        if ns is None or name is None:
            return 405, status_body(405, "MethodNotAllowed", "method not allowed")
        obj = self.symbols.get((ns, name))
        if obj is None:
            return 404, status_body(404, "NotFound", f'tradingsymbols.{GROUP} "{name}" not found')
        if method == "GET":
            if self.on_get_symbol is not None:
                self.on_get_symbol(obj)
            return 200, copy.deepcopy(obj)
        if method == "PATCH":
            patched = merge_patch(obj, body)
            if patched.get("spec") != obj.get("spec"):
                patched["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            self.symbols[(ns, name)] = patched
            return 200, copy.deepcopy(patched)
        return 405, status_body(405, "MethodNotAllowed", "method not allowed")


class Handler(BaseHTTPRequestHandler):
    server: Server

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        fake = self.server.fake
        fake.requests.append(Request(self.command, url.path, urllib.parse.parse_qs(url.query),
                                     (self.headers.get("Content-Type") or "").split(";")[0], body,
                                     self.headers.get("Authorization") or ""))
        code, answer = fake.handle(self.command, url.path, urllib.parse.parse_qs(url.query), body)
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class Server(ThreadingHTTPServer):
    def __init__(self, fake: FakeApi) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fake = fake


# Seed data ---------------------------------------------------------------------------------------------------


def symbol(name: str, ns: str, ticker: str, status: Obj | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"symbol": ticker, "market": "equity-options", "image": "ghcr.io/tradeops/rt:0.1.0",
                 "replicas": 2, **spec},
        "status": {"observedGeneration": 1, "phase": "Ready", "currentRevision": 3, "stableRevision": 2,
                   "updateRevision": 3, "replicas": 2, "readyReplicas": 2,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady",
                                   "message": "2/2 pods ready", "lastTransitionTime": "2026-01-01T00:01:00Z",
                                   "observedGeneration": 1}],
                   **(status or {})},
    }


def revision(ts: str, number: int, image: str, batch: int, uid: str | None = None) -> Obj:
    spec_hash = f"{number:04d}{batch:06d}abcdef"
    return {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": f"{ts}-{spec_hash[:10]}", "namespace": NS,
                     "labels": {naming.OWNER_NAME_LABEL: ts},
                     "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": ts,
                                          "uid": uid or f"uid-{ts}", "controller": True}],
                     "creationTimestamp": f"2026-01-0{number}T00:00:00Z"},
        "revision": number,
        "data": {"image": image, "resources": RESOURCES, "config": {"parameters": {"batchSize": batch}},
                 "specHash": spec_hash, "generation": number},
    }


def event(name: str, involved: str, uid: str, reason: str, message: str, minute: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": NS},
            "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": involved, "namespace": NS,
                               "uid": uid},
            "type": "Normal", "reason": reason, "message": message,
            "lastTimestamp": f"2026-01-03T00:{minute:02d}:00Z"}


def seeded() -> FakeApi:
    fake = FakeApi()
    fake.symbols[(NS, "spy")] = symbol("spy", NS, "SPY")
    fake.symbols[("other", "qqq")] = symbol("qqq", "other", "QQQ", status={"phase": "Degraded", "readyReplicas": 1},
                                            tradingEnabled=False)
    fake.revisions[NS] = [
        revision("spy", 1, "ghcr.io/tradeops/rt:0.1.0", 256),
        revision("spy", 2, "ghcr.io/tradeops/rt:0.1.0", 512),
        revision("spy", 3, "ghcr.io/tradeops/rt:0.2.0", 512),
        revision("qqq", 7, "ghcr.io/tradeops/rt:9.9.9", 1),  # another symbol's
        revision("spy", 8, "ghcr.io/tradeops/rt:0.0.1", 1, uid="uid-deleted-namesake"),
    ]
    fake.events[NS] = [
        event("spy.2", "spy", "uid-spy", "RevisionStable", "Revision 2 is stable", 2),
        event("spy.1", "spy", "uid-spy", "RevisionCreated", "Revision 3 created", 1),
        event("qqq.1", "qqq", "uid-qqq", "NotMine", "an event of another symbol", 3),
        event("spy.0", "spy", "uid-deleted-namesake", "Stale", "an event of the deleted namesake", 4),
    ]
    return fake


def kubeconfig(server: str) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "ops", "user": {"token": "s3cret"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ops", "namespace": NS}},
                     {"name": "no-namespace", "context": {"cluster": "fake", "user": "ops"}}],
    }


@dataclass
class Cluster:
    fake: FakeApi
    kubeconfig: pathlib.Path

    def opsctl(self, *args: str) -> Any:
        return runner.invoke(app, ["--kubeconfig", str(self.kubeconfig), *args])


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    fake = seeded()
    server = Server(fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{server.server_address[1]}")))
    try:
        yield Cluster(fake, path)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def error_line(result: Any, code: ExitCode) -> str:
    """The one stderr line of a failure with this exit code (and no traceback)."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("opsctl: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    return str(result.stderr)


SPY_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/tradingsymbols/spy"


# get ---------------------------------------------------------------------------------------------------------


def test_get_lists_the_context_namespace_with_the_token(cluster: Cluster) -> None:
    result = cluster.opsctl("get")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        ["NAME", "SYMBOL", "MARKET", "PHASE", "REVISION", "STABLE", "READY", "TRADING", "PAUSED", "AGE"],
        ["spy", "SPY", "equity-options", "Ready", "3", "2", "2/2", "on", "no", lines(result.stdout)[1][-1]],
    ]
    assert re.fullmatch(r"\d+d", lines(result.stdout)[1][-1])
    request = cluster.fake.requests[-1]
    assert (request.method, request.path) == ("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/tradingsymbols")
    assert request.authorization == "Bearer s3cret"
    assert cluster.fake.patches() == []


def test_get_all_namespaces(cluster: Cluster) -> None:
    result = cluster.opsctl("get", "-A")
    assert result.exit_code == 0, result.stderr
    rows = lines(result.stdout)
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [row[:10] for row in rows[1:]] == [
        ["other", "qqq", "QQQ", "equity-options", "Degraded", "3", "2", "1/2", "HALTED", "no"],
        [NS, "spy", "SPY", "equity-options", "Ready", "3", "2", "2/2", "on", "no"],
    ]
    assert cluster.fake.requests[-1].path == f"/apis/{GROUP}/{VERSION}/tradingsymbols"


@pytest.mark.parametrize(
    ("args", "names"),
    [(["-n", "other", "get"], ["qqq"]), (["get", "-n", "other"], ["qqq"]),
     (["--context", "no-namespace", "get"], []), (["get", "spy"], ["spy"])],
    ids=["namespace-before", "namespace-after", "context-without-namespace-is-default", "by-name"],
)
def test_get_namespace_selection_json(cluster: Cluster, args: list[str], names: list[str]) -> None:
    result = cluster.opsctl("-o", "json", *args)
    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)
    assert [i["metadata"]["name"] for i in items] == names
    assert all(i["kind"] == KIND and "status" in i for i in items)  # the raw objects


def test_get_yaml_is_the_list_of_raw_objects(cluster: Cluster) -> None:
    result = cluster.opsctl("get", "spy", "-o", "yaml")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout) == [cluster.fake.symbols[(NS, "spy")]]


def test_get_missing_symbol_exits_3(cluster: Cluster) -> None:
    line = error_line(cluster.opsctl("get", "nope"), ExitCode.NOT_FOUND)
    assert "nope" in line
    assert "not found" in line


# describe ----------------------------------------------------------------------------------------------------


def test_describe_shows_status_conditions_rollback_revisions_and_own_events(cluster: Cluster) -> None:
    cluster.fake.symbols[(NS, "spy")]["status"]["lastRollback"] = {
        "fromRevision": 4, "toRevision": 3, "reason": "AnalysisFailed: error rate 7%", "time": "2026-01-04T00:00:00Z"}
    result = cluster.opsctl("describe", "spy")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "SPY (equity-options)" in out
    assert "phase Ready  revision 3  stable 2" in out
    assert "last rollback 4 → 3 at 2026-01-04T00:00:00Z: AnalysisFailed: error rate 7%" in out
    assert ["Ready", "True", "AllReplicasReady", "2/2", "pods", "ready", "2026-01-01T00:01:00Z"] in lines(out)
    assert "config.parameters.batchSize 256→512" in out
    assert "image :0.1.0→:0.2.0" in out
    assert "Revision 3 created" in out
    assert out.index("Revision 3 created") < out.index("Revision 2 is stable")  # oldest first
    assert "another symbol" not in out
    assert "deleted namesake" not in out
    assert "9.9.9" not in out


def test_describe_json_has_object_revisions_and_events(cluster: Cluster) -> None:
    result = cluster.opsctl("-o", "json", "describe", "spy")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["object"] == cluster.fake.symbols[(NS, "spy")]
    assert [r["revision"] for r in data["revisions"]] == [1, 2, 3]
    assert [e["metadata"]["name"] for e in data["events"]] == ["spy.1", "spy.2"]


def test_describe_missing_symbol_exits_3(cluster: Cluster) -> None:
    error_line(cluster.opsctl("describe", "nope"), ExitCode.NOT_FOUND)


# history -----------------------------------------------------------------------------------------------------


def test_history_table(cluster: Cluster) -> None:
    cluster.fake.symbols[(NS, "spy")]["status"].update({"abortedRevision": 1})
    result = cluster.opsctl("history", "spy")
    assert result.exit_code == 0, result.stderr
    rows = lines(result.stdout)
    assert rows[0] == ["REVISION", "HASH", "IMAGE", "CHANGE", "CREATED", "MARK"]
    assert rows[1] == ["1", "0001000256", "ghcr.io/tradeops/rt:0.1.0", "initial", "2026-01-01T00:00:00Z",
                       "aborted"]
    assert rows[2] == ["2", "0002000512", "ghcr.io/tradeops/rt:0.1.0", "config.parameters.batchSize", "256→512",
                       "2026-01-02T00:00:00Z", "stable"]
    assert rows[3] == ["3", "0003000512", "ghcr.io/tradeops/rt:0.2.0", "image", ":0.1.0→:0.2.0",
                       "2026-01-03T00:00:00Z", "current,update"]
    assert len(rows) == 4  # neither qqq's revision nor the deleted namesake's
    revisions_request = next(r for r in cluster.fake.requests if r.path.endswith("/controllerrevisions"))
    assert revisions_request.query["labelSelector"] == [f"{naming.OWNER_NAME_LABEL}=spy"]


@pytest.mark.parametrize("output", ["json", "yaml"], ids=["json", "yaml"])
def test_history_machine_readable_is_a_list_of_revisions(cluster: Cluster, output: str) -> None:
    result = cluster.opsctl("history", "spy", "-o", output)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout) if output == "json" else yaml.safe_load(result.stdout)
    assert isinstance(data, list)
    assert [(r["revision"], r["data"]["image"]) for r in data] == [
        (1, "ghcr.io/tradeops/rt:0.1.0"), (2, "ghcr.io/tradeops/rt:0.1.0"), (3, "ghcr.io/tradeops/rt:0.2.0")]


def test_history_missing_symbol_exits_3(cluster: Cluster) -> None:
    error_line(cluster.opsctl("history", "nope"), ExitCode.NOT_FOUND)


# rollback ----------------------------------------------------------------------------------------------------


def rollback_patch(number: int) -> tuple[str, str, Obj]:
    return SPY_PATH, MERGE_PATCH, {"metadata": {"annotations": {naming.ROLLBACK_ANNOTATION: str(number)}}}


@pytest.mark.parametrize(
    ("status", "keep", "expected"),
    [({"currentRevision": 3, "stableRevision": 2}, [1, 2, 3], 2),
     ({"currentRevision": 3, "stableRevision": 1}, [1, 2, 3], 1),
     ({"currentRevision": 3, "stableRevision": 3}, [1, 2, 3], 2),
     ({"currentRevision": 3, "stableRevision": 3}, [1, 3], 1)],
    ids=["stable-differs", "stable-is-older-than-newest", "stable-is-current-newest-older", "gap-in-history"],
)
def test_rollback_previous_writes_the_resolved_number(cluster: Cluster, status: Obj, keep: list[int],
                                                      expected: int) -> None:
    cluster.fake.symbols[(NS, "spy")]["status"].update(status)
    cluster.fake.revisions[NS] = [r for r in cluster.fake.revisions[NS] if r["revision"] in keep]
    result = cluster.opsctl("rollback", "spy")
    assert result.exit_code == 0, result.stderr
    assert f"rollback from revision 3 to {expected} requested" in result.stdout
    assert cluster.fake.patches() == [rollback_patch(expected)]


def test_rollback_to_revision_json_result(cluster: Cluster) -> None:
    result = cluster.opsctl("-o", "json", "rollback", "spy", "--to-revision", "1")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "spy", "namespace": NS, "action": "rollback", "fromRevision": 3,
                                         "toRevision": 1, "waited": False}
    assert cluster.fake.patches() == [rollback_patch(1)]


def test_rollback_to_missing_revision_exits_3_without_patching(cluster: Cluster) -> None:
    # 8 exists only for a deleted namesake, 7 only for another symbol.
    for number in ("9", "8", "7"):
        line = error_line(cluster.opsctl("rollback", "spy", "--to-revision", number), ExitCode.NOT_FOUND)
        assert f"no revision {number}" in line
        assert "1, 2, 3" in line
    assert cluster.fake.patches() == []


def test_rollback_without_an_older_revision_exits_3(cluster: Cluster) -> None:
    cluster.fake.symbols[(NS, "spy")]["status"].update({"currentRevision": 1, "stableRevision": 1})
    error_line(cluster.opsctl("rollback", "spy"), ExitCode.NOT_FOUND)
    assert cluster.fake.patches() == []


def test_rollback_to_the_running_revision_is_refused(cluster: Cluster) -> None:
    line = error_line(cluster.opsctl("rollback", "spy", "--to-revision", "3"), ExitCode.REJECTED)
    assert "already running" in line
    assert cluster.fake.patches() == []


def test_rollback_missing_symbol_exits_3(cluster: Cluster) -> None:
    error_line(cluster.opsctl("rollback", "nope", "--to-revision", "1"), ExitCode.NOT_FOUND)
    assert cluster.fake.patches() == []


def test_rollback_wait_until_the_operator_ran_it(cluster: Cluster) -> None:
    seen = {"gets": 0}

    def operator(ts: Obj) -> None:
        """Acts on the annotation on the second read after it was set."""
        annotations = ts["metadata"].get("annotations") or {}
        if naming.ROLLBACK_ANNOTATION not in annotations:
            return
        seen["gets"] += 1
        if seen["gets"] < 2:
            return
        target = int(annotations.pop(naming.ROLLBACK_ANNOTATION))
        status = ts["status"]
        status["lastRollback"] = {"fromRevision": status["currentRevision"], "toRevision": target,
                                  "reason": "Manual", "time": "2026-01-05T00:00:00Z"}
        status["currentRevision"] = target

    cluster.fake.on_get_symbol = operator
    result = cluster.opsctl("-o", "json", "rollback", "spy", "--to-revision", "1", "--wait", "--timeout", "20")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["waited"] is True
    assert seen["gets"] == 2
    assert cluster.fake.symbols[(NS, "spy")]["status"]["currentRevision"] == 1


def test_rollback_wait_times_out_with_5(cluster: Cluster) -> None:
    line = error_line(cluster.opsctl("rollback", "spy", "--wait", "--timeout", "0.6"), ExitCode.TIMEOUT)
    assert "timed out" in line
    assert cluster.fake.patches() == [rollback_patch(2)]


def test_rollback_wait_needs_the_last_rollback_record_too(cluster: Cluster) -> None:
    # Once asked, currentRevision comes to match (e.g. an unrelated rollout), but lastRollback says otherwise.
    def operator(ts: Obj) -> None:
        if naming.ROLLBACK_ANNOTATION in (ts["metadata"].get("annotations") or {}):
            ts["status"]["currentRevision"] = 2
            ts["status"]["lastRollback"] = {"fromRevision": 3, "toRevision": 1, "reason": "Earlier", "time": "t"}

    cluster.fake.on_get_symbol = operator
    error_line(cluster.opsctl("rollback", "spy", "--to-revision", "2", "--wait", "--timeout", "0.6"),
               ExitCode.TIMEOUT)


# switches ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "patch", "result"),
    [(["pause", "spy"], {"spec": {"paused": True}}, {"paused": True}),
     (["resume", "spy"], {"spec": {"paused": False}}, {"paused": False}),
     (["halt", "spy", "--reason", "broker outage"],
      {"spec": {"tradingEnabled": False}, "metadata": {"annotations": {HALT_REASON_ANNOTATION: "broker outage"}}},
      {"tradingEnabled": False, "reason": "broker outage"}),
     (["unhalt", "spy"],
      {"spec": {"tradingEnabled": True}, "metadata": {"annotations": {HALT_REASON_ANNOTATION: None}}},
      {"tradingEnabled": True})],
    ids=["pause", "resume", "halt", "unhalt"],
)
def test_switches_send_merge_patches(cluster: Cluster, args: list[str], patch: Obj, result: Obj) -> None:
    outcome = cluster.opsctl("-o", "json", *args)
    assert outcome.exit_code == 0, outcome.stderr
    assert json.loads(outcome.stdout) == {"name": "spy", "namespace": NS, "action": args[0], **result}
    assert cluster.fake.patches() == [(SPY_PATH, MERGE_PATCH, patch)]


def test_halt_then_unhalt_round_trip(cluster: Cluster) -> None:
    assert cluster.opsctl("halt", "spy", "--reason", "risk review").exit_code == 0
    ts = cluster.fake.symbols[(NS, "spy")]
    assert ts["spec"]["tradingEnabled"] is False
    assert ts["metadata"]["annotations"][HALT_REASON_ANNOTATION] == "risk review"
    assert set(ts["metadata"]["annotations"]) == {HALT_REASON_ANNOTATION, CHANGED_BY_ANNOTATION}
    described = cluster.opsctl("describe", "spy")
    assert "trading HALTED" in described.stdout
    assert "halt reason: risk review" in described.stdout
    assert lines(cluster.opsctl("get").stdout)[1][:9] == \
        ["spy", "SPY", "equity-options", "Ready", "3", "2", "2/2", "HALTED", "no"]
    result = cluster.opsctl("unhalt", "spy")
    assert result.exit_code == 0, result.stderr
    assert "spy: unhalt (tradingEnabled=true)" in result.stdout
    ts = cluster.fake.symbols[(NS, "spy")]
    assert ts["spec"]["tradingEnabled"] is True
    assert HALT_REASON_ANNOTATION not in ts["metadata"].get("annotations", {})


@pytest.mark.parametrize("command", ["pause", "resume", "halt", "unhalt"])
def test_switch_on_missing_symbol_exits_3(cluster: Cluster, command: str) -> None:
    error_line(cluster.opsctl(command, "nope"), ExitCode.NOT_FOUND)


# API failures ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [(422, "Invalid", 'TradingSymbol.trading.tradeops.io "spy" is invalid: spec.paused: Invalid value'),
     (409, "Conflict", "Operation cannot be fulfilled: the object has been modified"),
     (400, "BadRequest", "the body of the request was in an unknown format")],
    ids=["422", "409", "400"],
)
def test_rejected_patch_exits_6_with_the_servers_message(cluster: Cluster, code: int, reason: str,
                                                         message: str) -> None:
    cluster.fake.fail["PATCH"] = (code, reason, message)
    line = error_line(cluster.opsctl("pause", "spy"), ExitCode.REJECTED)
    assert message in line
    assert f"({code})" in line


@pytest.mark.parametrize("code", [401, 403], ids=["401", "403"])
def test_unauthorised_exits_4(cluster: Cluster, code: int) -> None:
    cluster.fake.fail["GET"] = (code, "Forbidden", "tradingsymbols is forbidden: User cannot list")
    line = error_line(cluster.opsctl("get"), ExitCode.UNREACHABLE)
    assert str(code) in line


def test_server_error_exits_1(cluster: Cluster) -> None:
    cluster.fake.fail["GET"] = (500, "InternalError", "etcdserver: request timed out")
    line = error_line(cluster.opsctl("get"), ExitCode.ERROR)
    assert "etcdserver: request timed out" in line


def test_unreachable_server_exits_4(tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{port}")))
    result = runner.invoke(app, ["--kubeconfig", str(path), "get"])
    line = error_line(result, ExitCode.UNREACHABLE)
    assert "cannot reach the API server" in line


def test_unusable_kubeconfig_exits_4(tmp_path: pathlib.Path) -> None:
    result = runner.invoke(app, ["--kubeconfig", str(tmp_path / "missing"), "get"])
    error_line(result, ExitCode.UNREACHABLE)


def test_kubeconfig_from_the_environment(cluster: Cluster) -> None:
    result = runner.invoke(app, ["get", "spy"], env={"KUBECONFIG": str(cluster.kubeconfig)})
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout)[1][0] == "spy"


# usage -------------------------------------------------------------------------------------------------------


def test_help_documents_commands_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for command in ("get", "describe", "history", "rollback", "pause", "resume", "halt", "unhalt"):
        assert command in text
    for promise in ("3 not found", "4 API unreachable", "5 timed out", "6 rejected"):
        assert promise in text


@pytest.mark.parametrize(
    "args",
    [["rollback"], ["get", "--output", "xml"], ["rollback", "spy", "--to-revision", "two"], ["frobnicate"]],
    ids=["missing-name", "bad-output", "bad-revision", "unknown-command"],
)
def test_usage_errors_exit_2(cluster: Cluster, args: list[str]) -> None:
    assert cluster.opsctl(*args).exit_code == ExitCode.USAGE
    assert cluster.fake.requests == []


def test_python_dash_m(cluster: Cluster) -> None:
    completed = subprocess.run([sys.executable, "-m", "opsctl", "--kubeconfig", str(cluster.kubeconfig),
                                "-o", "json", "rollback", "spy", "--to-revision", "9"],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == ExitCode.NOT_FOUND
    assert completed.stderr.startswith("opsctl: error: ")
    assert completed.stdout == ""
