"""opsctl against the emulated Kubernetes API (devstack.emulator, in a thread; no operator).

Each test seeds a TradingSymbol, its ControllerRevisions (built by the operator's own builders) and Events
the way the operator stores them, runs the CLI (typer's CliRunner, or a real `opsctl` process) and asserts
exit codes, output and the exact PATCH requests the API server received. A stand-in operator thread acts on
the rollback annotation where a test needs `rollback --wait` to succeed. What a person sees in a terminal
and through pipes is in test_opsctl_terminal.py."""

from __future__ import annotations

import contextlib
import copy
import json
import pathlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from devstack.emulator import EmulatorThread, kubeconfig_for
from devstack.processes import install_crd, wait_for
from opsctl.errors import ExitCode
from opsctl.kube import status_error
from opsctl.main import app
from opsctl.symbols_cli import HALT_REASON_ANNOTATION
from tests.integration import emulator_fixtures
from tests.stamps import unstamped
from trading_operator import api, builders, naming
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import CONTROLLER_REVISIONS, CRDS, EVENTS, NAMESPACES, KubeApi
from trading_operator.revisions import Revision, template_hash, template_of
from trading_operator.user_requests import RequestPayload, decode

emulator_thread = emulator_fixtures.emulator_thread
runner = CliRunner()

SPY: dict[str, Any] = {
    "symbol": "SPY",
    "market": "equity-options",
    "image": "ghcr.io/tradeops/trading-runtime:0.1.0",
    "replicas": 2,
    "config": {"parameters": {"batchSize": 256, "flushIntervalMs": 500}},
}
# What revisions 1..3 changed: 2 raised batchSize, 3 bumped the image.
REVISION_SPECS = [
    SPY,
    {**SPY, "config": {"parameters": {**SPY["config"]["parameters"], "batchSize": 512}}},
    {**SPY, "image": "ghcr.io/tradeops/trading-runtime:0.2.0",
     "config": {"parameters": {**SPY["config"]["parameters"], "batchSize": 512}}},
]
NOISY = "check [/bold] and [red]x[/red] :smile: literally"



@dataclass
class Cluster:
    emulator: EmulatorThread
    kube: KubeApi
    kubeconfig: pathlib.Path
    namespace: str
    """The kubeconfig context's namespace: where `spy` lives, and opsctl's default."""

    def opsctl(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(app, ["--kubeconfig", str(self.kubeconfig), *args], env=env)

    def ts(self, name: str = "spy", namespace: str | None = None) -> dict[str, Any]:
        return self.kube.get(TRADING_SYMBOLS, namespace or self.namespace, name)

    def writes(self) -> list[tuple[str, str, str, Any]]:
        """(method, path, content type, JSON body) of every request other than GET the server received."""
        async def snapshot() -> list[Any]:
            return list(self.emulator.handler._requests)
        return [(str(r.method.value).upper(), r.url.path, r.headers.get("Content-Type", "").split(";")[0],
                 json.loads(r.text) if r.text else None)
                for r in self.emulator.call(snapshot()) if str(r.method.value).upper() != "GET"]

    def patches(self) -> list[tuple[str, str, Any]]:
        """(path, content type, body) of the PATCH requests sent since the cluster was seeded."""
        return [(path, ctype, unstamped(body)) for method, path, ctype, body in self.writes()[self.seeded:]
                if method == "PATCH"]

    seeded: int = 0

    def set_status(self, status: dict[str, Any], name: str = "spy") -> None:
        """Merge into the status as the operator would (part of the setup: not counted in `patches()`)."""
        self.kube.patch_status(TRADING_SYMBOLS, self.namespace, name, status)
        self.seeded = len(self.writes())


def create_namespace(kube: KubeApi, name: str) -> None:
    kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def seed_symbol(kube: KubeApi, namespace: str, name: str = "spy", status: dict[str, Any] | None = None,
                revisions: int = 3) -> dict[str, Any]:
    """A TradingSymbol with `revisions` ControllerRevisions, a status and Events, as the operator leaves them."""
    ts = kube.create(TRADING_SYMBOLS, namespace, {"apiVersion": api.API_VERSION, "kind": api.KIND,
                                                  "metadata": {"name": name, "labels": {"tier": "core"}},
                                                  "spec": copy.deepcopy(SPY)})
    owner = builders.Owner(name, namespace, ts["metadata"]["uid"])
    for number, raw in enumerate(REVISION_SPECS[:revisions], start=1):
        spec = api.TradingSymbolSpec.model_validate(raw)
        template = template_of(spec)
        spec_hash = template_hash(template)
        revision = Revision(number, naming.revision_name(name, spec_hash), spec_hash, template)
        kube.create(CONTROLLER_REVISIONS, namespace, builders.build_revision(owner, spec, revision, number))
    # A revision left by an earlier, deleted TradingSymbol of the same name: neither opsctl nor the operator
    # may take it for one of this object's.
    stray = copy.deepcopy(builders.build_revision(
        builders.Owner(name, namespace, "0000-old-uid"), api.TradingSymbolSpec.model_validate(SPY),
        Revision(9, f"{name}-stray", "f" * 16, template_of(api.TradingSymbolSpec.model_validate(SPY))), 1))
    kube.create(CONTROLLER_REVISIONS, namespace, stray)
    full_status = {"observedGeneration": 1, "phase": "Ready", "currentRevision": revisions,
                   "stableRevision": revisions, "updateRevision": revisions, "replicas": 2, "readyReplicas": 2,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady",
                                   "message": NOISY, "lastTransitionTime": "2026-11-25T10:00:00Z",
                                   "observedGeneration": 1}],
                   **(status or {})}
    kube.patch_status(TRADING_SYMBOLS, namespace, name, full_status)
    for index, (involved_name, uid, message) in enumerate([
        (name, ts["metadata"]["uid"], f"Revision {revisions} is stable; {NOISY}"),
        (name, "0000-old-uid", "an event of the deleted namesake"),
        ("qqq", "some-other-uid", "an event of another symbol"),
    ]):
        kube.create(EVENTS, namespace, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{name}.{index}"},
            "involvedObject": {"apiVersion": api.API_VERSION, "kind": api.KIND, "name": involved_name,
                               "namespace": namespace, "uid": uid},
            "reason": "RevisionStable", "message": message, "type": "Normal",
            "lastTimestamp": f"2026-11-25T10:0{index}:00Z",
        })
    return kube.get(TRADING_SYMBOLS, namespace, name)


@contextlib.contextmanager
def seeded(url: str, directory: pathlib.Path, prefix: str) -> Iterator[tuple[KubeApi, pathlib.Path, str]]:
    """A namespace of its own with `spy` seeded, an API client, and a kubeconfig whose context is that namespace."""
    namespace = emulator_fixtures.unique_namespace(prefix)
    with contextlib.closing(emulator_fixtures.api_client_for(url)) as api_client:
        kube = KubeApi(api_client)
        install_crd(kube)
        create_namespace(kube, namespace)
        seed_symbol(kube, namespace)
        kubeconfig = directory / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(kubeconfig_for(url, namespace)))
        yield kube, kubeconfig, namespace


@pytest.fixture
def cluster(emulator_thread: EmulatorThread, tmp_path: pathlib.Path) -> Iterator[Cluster]:
    with seeded(emulator_thread.url, tmp_path, "opsctl") as (kube, kubeconfig, namespace):
        result = Cluster(emulator_thread, kube, kubeconfig, namespace)
        result.seeded = len(result.writes())
        yield result


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


def error_line(result: Any) -> str:
    """The one stderr line of a failure (and there is no traceback)."""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("opsctl: error: ")
    return str(result.stderr)


def section(out: str, title: str) -> list[str]:
    """The lines of a describe section (`Conditions:` ...), without its indent."""
    body = out.split(f"\n{title}:\n", 1)[1].splitlines()
    end = next((i for i, line in enumerate(body) if not line.startswith("  ")), len(body))
    return [line[2:] for line in body[:end]]


# get ---------------------------------------------------------------------------------------------------------


def test_get_lists_symbols_of_the_context_namespace(cluster: Cluster) -> None:
    result = cluster.opsctl("get")
    assert result.exit_code == 0, result.stderr
    header, row = lines(result.stdout)
    assert header == ["NAME", "SYMBOL", "PHASE", "REVISION", "STABLE", "READY", "TRADING", "AGE"]
    assert row[:7] == ["spy", "SPY", "Ready", "3", "3", "2", "on"]
    assert cluster.patches() == []


def test_get_wide_adds_columns(cluster: Cluster) -> None:
    header, row = lines(cluster.opsctl("get", "-o", "wide").stdout)
    assert header[8:] == ["MARKET", "UPDATE", "DESIRED", "PAUSED", "CONDITIONS", "IMAGE"]
    assert row[8:] == ["equity-options", "3", "2", "no", "Ready", "ghcr.io/tradeops/trading-runtime:0.1.0"]


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_get_machine_readable_is_the_object_or_a_list(cluster: Cluster, output: str) -> None:
    def parse(text: str) -> Any:
        return json.loads(text) if output == "json" else yaml.safe_load(text)

    listed = cluster.opsctl("-o", output, "get")
    assert listed.exit_code == 0, listed.stderr
    data = parse(listed.stdout)
    assert (data["kind"], [(i["kind"], i["metadata"]["name"], i["status"]["currentRevision"]) for i in data["items"]]) \
        == ("List", [("TradingSymbol", "spy", 3)])
    one = cluster.opsctl("get", "spy", "-o", output)  # -o also works after the command
    assert parse(one.stdout) == data["items"][0]


def test_get_name_and_jsonpath(cluster: Cluster) -> None:
    assert cluster.opsctl("get", "-o", "name").stdout == "tradingsymbol.trading.tradeops.io/spy\n"
    template = '{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}'
    assert cluster.opsctl("get", "-o", f"jsonpath={template}").stdout == "spy=True\n"
    assert cluster.opsctl("get", "spy", "-o", "jsonpath={.spec.replicas}").stdout == "2"


def test_get_all_namespaces_selector_and_explicit_namespace(cluster: Cluster) -> None:
    create_namespace(cluster.kube, "zz-other")
    seed_symbol(cluster.kube, "zz-other", name="qqq", revisions=1, status={"phase": "Progressing"})
    cluster.kube.merge_patch(TRADING_SYMBOLS, "zz-other", "qqq", {"metadata": {"labels": {"tier": "edge"}}})
    rows = lines(cluster.opsctl("get", "-A").stdout)
    assert rows[0][:2] == ["NAMESPACE", "NAME"]
    assert [r[:4] for r in rows[1:]] == [[cluster.namespace, "spy", "SPY", "Ready"],
                                         ["zz-other", "qqq", "SPY", "Progressing"]]
    assert [r[1] for r in lines(cluster.opsctl("get", "-A", "-l", "tier=edge").stdout)[1:]] == ["qqq"]
    assert [r[1] for r in lines(cluster.opsctl("get", "-A", "-l", "tier!=edge").stdout)[1:]] == ["spy"]
    assert [r[0] for r in lines(cluster.opsctl("-n", "zz-other", "get").stdout)[1:]] == ["qqq"]
    assert [r[0] for r in lines(cluster.opsctl("get", "--namespace", "zz-other").stdout)[1:]] == ["qqq"]
    empty = cluster.opsctl("-n", "default", "get")
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert 'No TradingSymbols found in namespace "default"' in empty.stderr


def test_context_option_and_kubeconfig_env(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    create_namespace(cluster.kube, "second")
    seed_symbol(cluster.kube, "second", name="es", revisions=1)
    config = kubeconfig_for(cluster.emulator.url, cluster.namespace)
    config["contexts"].append({"name": "second", "context": {**config["contexts"][0]["context"],
                                                              "namespace": "second"}})
    path = tmp_path / "two-contexts"
    path.write_text(yaml.safe_dump(config))
    via_context = runner.invoke(app, ["--context", "second", "get"], env={"KUBECONFIG": str(path)})
    assert via_context.exit_code == 0, via_context.stderr
    assert [r[0] for r in lines(via_context.stdout)[1:]] == ["es"]
    current = runner.invoke(app, ["get"], env={"KUBECONFIG": str(path)})
    assert [r[0] for r in lines(current.stdout)[1:]] == ["spy"]
    after = runner.invoke(app, ["get", "--context", "second"], env={"KUBECONFIG": str(path)})
    assert [r[0] for r in lines(after.stdout)[1:]] == ["es"]


# names and tickers -------------------------------------------------------------------------------------------


def test_unknown_symbol_exits_3_and_writes_nothing(cluster: Cluster) -> None:
    for command in (["get", "nope"], ["describe", "nope"], ["history", "nope"], ["pause", "nope"],
                    ["rollback", "nope"], ["halt", "nope"], ["promote", "nope"]):
        result = cluster.opsctl(*command)
        assert result.exit_code == ExitCode.NOT_FOUND, command
        assert error_line(result) == (f'opsctl: error: TradingSymbol "nope" in namespace "{cluster.namespace}" not '
                                      "found (TradingSymbols here: spy)\n")
    assert cluster.patches() == []


def test_a_ticker_is_accepted_where_one_symbol_trades_it(cluster: Cluster) -> None:
    described = cluster.opsctl("describe", "SPY")
    assert described.exit_code == 0, described.stderr
    assert described.stdout.startswith("Name:         spy\n")
    assert described.stderr == 'opsctl: "SPY" is the ticker of TradingSymbol "spy"; using it\n'
    paused = cluster.opsctl("-o", "json", "pause", "SPY")
    assert json.loads(paused.stdout)["name"] == "spy"
    assert [path.rsplit("/", 1)[-1] for path, _, _ in cluster.patches()] == ["spy"]


def test_a_ticker_several_symbols_trade_is_refused(cluster: Cluster) -> None:
    seed_symbol(cluster.kube, cluster.namespace, name="spy-canary", revisions=1)
    cluster.seeded = len(cluster.writes())
    result = cluster.opsctl("halt", "SPY")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "several TradingSymbols trade SPY (spy, spy-canary): name one of them" in error_line(result)
    assert cluster.patches() == []


@pytest.mark.parametrize(("args", "hint"), [
    (["describe", "spyy"], ": did you mean spy?"),
    (["-n", "default", "describe", "spy"], ": it exists in namespace {ns} (pass -n {ns})"),
    (["-n", "default", "describe", "zzz"], ': there are no TradingSymbols in namespace "default" (pass -n '
                                           "NAMESPACE, or `get -A`)")],
    ids=["typo", "other-namespace", "empty-namespace"])
def test_not_found_says_what_to_do(cluster: Cluster, args: list[str], hint: str) -> None:
    result = cluster.opsctl(*args)
    assert result.exit_code == ExitCode.NOT_FOUND
    assert error_line(result).rstrip("\n").endswith(hint.format(ns=cluster.namespace))


# describe and history ----------------------------------------------------------------------------------------


def test_describe_shows_status_conditions_revisions_and_own_events(cluster: Cluster) -> None:
    cluster.set_status({
        "currentRevision": 2, "abortedRevision": 3,
        "lastRollback": {"fromRevision": 3, "toRevision": 2, "reason": "AnalysisFailed: errors [/x] high",
                         "time": "2026-11-25T10:05:00Z"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": NOISY,
                        "lastTransitionTime": "2026-11-25T10:00:00Z"},
                       {"type": "Draining", "status": "True", "reason": "DrainInProgress",
                        "message": "3 open positions, 90s left", "lastTransitionTime": "2026-11-25T10:00:00Z"}]})
    result = cluster.opsctl("describe", "spy")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"Namespace:    {cluster.namespace}\n" in out
    assert "Symbol:       SPY (equity-options)\n" in out
    assert "Replicas:     2 desired, 2 ready\n" in out
    assert "Revisions:    current 2, stable 3, update 3, aborted 3 (not retried until the spec changes" in out
    assert "Last rollback: 3 → 2 at 2026-11-25T10:05:00Z: AnalysisFailed: errors [/x] high\n" in out
    conditions = [line.split(None, 4) for line in section(out, "Conditions")]
    assert [[*c[:3], c[4]] for c in conditions[1:]] == [
        ["Ready", "True", "AllReplicasReady", NOISY],  # printed literally (no markup interpreted)
        ["Draining", "True", "DrainInProgress", "3 open positions, 90s left"]]
    events = section(out, "Events")
    assert events[0].split() == ["TYPE", "REASON", "AGE", "MESSAGE"]
    assert [e.split(None, 3)[-1] for e in events[1:]] == [f"Revision 3 is stable; {NOISY}"]  # its own only
    revisions = section(out, "Revisions")
    assert [(row.split()[0], row.split()[2]) for row in revisions[1:]] == \
        [("1", "-"), ("2", "current"), ("3", "stable,update,aborted")]
    as_json = json.loads(cluster.opsctl("-o", "json", "describe", "spy").stdout)
    assert as_json["object"]["metadata"]["name"] == "spy"
    assert [r["revision"] for r in as_json["revisions"]] == [1, 2, 3]
    assert [e["message"] for e in as_json["events"]] == [f"Revision 3 is stable; {NOISY}"]


def test_describe_shows_the_analysis_progress(cluster: Cluster) -> None:
    cluster.set_status({"phase": "Progressing", "analysis": {
        "revision": 3, "kind": "Rollout", "phase": "Running", "startedAt": "2026-11-25T10:00:00Z",
        "tallies": [{"metric": "tick-to-signal-latency", "successful": 2}],
        "measurements": [{"time": "2026-11-25T10:00:06Z", "metric": "tick-to-signal-latency", "phase": "Successful",
                          "value": 0.0013, "message": "0.0013 s below 0.05 s"}]}})
    out = cluster.opsctl("describe", "spy").stdout
    # The shipped analysis policy: 10 measurements, 1 s apart.
    assert ("Analysis:     Rollout analysis of revision 3: Running, measurement 2 of 10, latest tick-to-signal-latency "
            "0.0013 s below 0.05 s (Successful), about 8s left\n") in out


def test_history_shows_changes_ages_and_marks(cluster: Cluster) -> None:
    cluster.set_status({"currentRevision": 2, "stableRevision": 2, "abortedRevision": 3})
    result = cluster.opsctl("history", "spy")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["REVISION", "AGE", "MARK", "CHANGE"]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]  # the stray revision 9 is not this object's
    assert rows[0].split()[2:] == ["-", "initial", "(image", ":0.1.0)"]
    assert rows[1].split()[2:] == ["current,stable", "config.parameters.batchSize", "256→512"]
    assert rows[2].split()[2:] == ["update,aborted", "image", ":0.1.0→:0.2.0"]
    wide = lines(cluster.opsctl("history", "spy", "-o", "wide").stdout)
    assert wide[0] == ["REVISION", "HASH", "IMAGE", "AGE", "MARK", "CHANGE"]
    assert wide[3][2] == "ghcr.io/tradeops/trading-runtime:0.2.0"
    objects = yaml.safe_load(cluster.opsctl("history", "spy", "-o", "yaml").stdout)
    assert [(o["kind"], o["revision"]) for o in objects["items"]] == [("ControllerRevision", n) for n in (1, 2, 3)]


# rollback ----------------------------------------------------------------------------------------------------


def test_rollback_no_wait_sends_a_request_bound_to_the_running_revision(cluster: Cluster) -> None:
    result = cluster.opsctl("-o", "json", "rollback", "spy", "--to-revision", "1", "--no-wait")
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    request_id = printed.pop("request")
    assert printed == {"name": "spy", "namespace": cluster.namespace, "action": "rollback", "revision": 3,
                       "fromRevision": 3, "toRevision": 1, "waited": False, "outcome": "Pending"}
    path = f"/apis/{api.API_VERSION}/namespaces/{cluster.namespace}/tradingsymbols/spy"
    [(written_path, content_type, body)] = cluster.patches()
    assert (written_path, content_type) == (path, "application/merge-patch+json")
    sent = decode(body["metadata"]["annotations"][naming.ROLLBACK_ANNOTATION])
    assert sent == RequestPayload(id=request_id, revision=3, generation=cluster.ts()["metadata"]["generation"],
                                  to_revision=1)


def test_a_request_with_no_answer_times_out_with_exit_5_and_stays(cluster: Cluster) -> None:
    result = cluster.opsctl("rollback", "spy", "--to-revision", "1", "--timeout", "1")
    assert result.exit_code == ExitCode.TIMEOUT
    assert "no answer to the rollback from revision 3 to 1 within 1s" in error_line(result)
    assert naming.ROLLBACK_ANNOTATION in cluster.ts()["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("args", "status", "code", "message"),
    [(["--to-revision", "7"], {}, ExitCode.NOT_FOUND, "spy has no revision 7 (revisions: 1, 2, 3"),
     (["--to-revision", "9"], {}, ExitCode.NOT_FOUND, "spy has no revision 9"),
     ([], {"currentRevision": 1, "stableRevision": 1}, ExitCode.NOT_FOUND, "no revision before 1"),
     (["--to-revision", "3"], {}, ExitCode.REJECTED, "revision 3 of spy is already running")],
    ids=["missing", "stray-of-another-owner", "nothing-older", "already-current"],
)
def test_rollback_is_validated_before_anything_is_written(
        cluster: Cluster, args: list[str], status: dict[str, Any], code: ExitCode, message: str) -> None:
    cluster.set_status(status)
    result = cluster.opsctl("rollback", "spy", *args)
    assert result.exit_code == code
    assert message in error_line(result)
    assert cluster.patches() == []


def fake_operator(cluster: Cluster, stop: threading.Event) -> None:
    """Acts on the rollback annotation as the operator does: answers it, shows a rollout in progress
    (Progressing, half ready), then the revision runs, lastRollback is recorded and the annotation removed."""
    with contextlib.closing(emulator_fixtures.api_client_for(cluster.emulator.url)) as api_client:
        kube = KubeApi(api_client)
        while not stop.wait(0.05):
            ts = kube.get(TRADING_SYMBOLS, cluster.namespace, "spy")
            value = (ts["metadata"].get("annotations") or {}).get(naming.ROLLBACK_ANNOTATION)
            if value is None:
                continue
            request = decode(value)
            assert isinstance(request, RequestPayload)
            wanted, current = request.to_revision, ts["status"]["currentRevision"]
            kube.patch_status(TRADING_SYMBOLS, cluster.namespace, "spy", {
                "requests": [{"id": request.id, "action": "rollback", "revision": current, "toRevision": wanted,
                              "generation": request.generation, "outcome": "Accepted", "reason": "Accepted",
                              "message": f"rollback from revision {current} to {wanted}",
                              "time": "2026-11-25T11:00:00Z"}],
                "phase": "Progressing", "readyReplicas": 1, "conditions": [
                    {"type": "Progressing", "status": "True", "reason": "RollingBack",
                     "message": f"rolling back to revision {wanted}", "lastTransitionTime": "2026-11-25T11:00:00Z"}]})
            stop.wait(1.0)  # long enough for opsctl to see the rollout in progress, even on a loaded machine
            kube.patch_status(TRADING_SYMBOLS, cluster.namespace, "spy", {
                "phase": "Ready", "readyReplicas": 2, "currentRevision": int(wanted), "abortedRevision": current,
                "conditions": [],
                "lastRollback": {"fromRevision": current, "toRevision": int(wanted), "reason": "Manual",
                                 "time": "2026-11-25T11:00:00Z"}})
            kube.merge_patch(TRADING_SYMBOLS, cluster.namespace, "spy",
                             {"metadata": {"annotations": {naming.ROLLBACK_ANNOTATION: None}}})
            return


def test_rollback_wait_shows_progress_and_returns_when_the_revision_runs(cluster: Cluster) -> None:
    stop = threading.Event()
    operator = threading.Thread(target=fake_operator, args=(cluster, stop), daemon=True)
    operator.start()
    try:
        result = cluster.opsctl("rollback", "spy", "--to-revision", "2", "--wait", "--timeout", "20")
    finally:
        stop.set()
        operator.join(10)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "spy: rollback from revision 3 to 2 done\n"
    progress = result.stderr.splitlines()
    rolling = "spy: Progressing, revision 3 (stable 3), 1/2 ready; Progressing: rolling back to revision 2"
    assert progress[0] in ("spy: Ready, revision 3 (stable 3), 2/2 ready", rolling)  # before or as it began
    assert rolling in progress
    assert progress[-1] == "spy: Ready, revision 2 (stable 3), 2/2 ready"
    assert len(progress) == len(set(progress))  # a line only when it reads differently


def test_rollback_wait_times_out_with_exit_5(cluster: Cluster) -> None:
    result = cluster.opsctl("rollback", "spy", "--wait", "--timeout", "1")
    assert result.exit_code == ExitCode.TIMEOUT
    assert result.stderr.splitlines()[-1].startswith("opsctl: error: spy: no answer to the rollback from revision 3 "
                                                     "to 2 within 1s")
    sent = decode(cluster.ts()["metadata"]["annotations"][naming.ROLLBACK_ANNOTATION])  # requested all the same
    assert isinstance(sent, RequestPayload)
    assert sent.to_revision == 2


# switches ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "body", "result"),
    [(["pause", "spy"], {"spec": {"paused": True}}, {"action": "pause", "paused": True}),
     (["halt", "spy", "--reason", "fat finger on QQQ"],
      {"spec": {"tradingEnabled": False}, "metadata": {"annotations": {HALT_REASON_ANNOTATION: "fat finger on QQQ"}}},
      {"action": "halt", "tradingEnabled": False, "reason": "fat finger on QQQ"}),
     (["halt", "spy"],
      {"spec": {"tradingEnabled": False}, "metadata": {"annotations": {HALT_REASON_ANNOTATION: "opsctl halt"}}},
      {"action": "halt", "tradingEnabled": False, "reason": "opsctl halt"})],
    ids=["pause", "halt-with-reason", "halt"],
)
def test_switches_send_one_merge_patch(cluster: Cluster, args: list[str], body: dict[str, Any],
                                       result: dict[str, Any]) -> None:
    run = cluster.opsctl("-o", "json", *args)
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout) == {"name": "spy", "namespace": cluster.namespace, **result, "changed": True}
    assert [(ctype, sent) for _, ctype, sent in cluster.patches()] == [("application/merge-patch+json", body)]


@pytest.mark.parametrize(("args", "said"), [
    (["resume", "spy"], "spy unchanged: not paused"), (["unhalt", "spy"], "spy unchanged: trading is on"),
    (["tune", "unfreeze", "spy"], "spy unchanged: tuning not frozen")], ids=["resume", "unhalt", "unfreeze"])
def test_no_ops_say_unchanged_and_write_nothing(cluster: Cluster, args: list[str], said: str) -> None:
    result = cluster.opsctl(*args)
    assert (result.exit_code, result.stdout) == (0, said + "\n")
    assert cluster.patches() == []
    assert json.loads(cluster.opsctl(*args, "-o", "json").stdout)["changed"] is False


def test_pausing_twice_says_unchanged_the_second_time(cluster: Cluster) -> None:
    assert cluster.opsctl("pause", "spy").stdout == "spy: pause (paused=true)\n"
    assert cluster.opsctl("pause", "spy").stdout == "spy unchanged: already paused\n"
    assert len(cluster.patches()) == 1


def test_halt_then_unhalt_shows_in_get_and_describe(cluster: Cluster) -> None:
    assert cluster.opsctl("halt", "spy", "--reason", "venue outage").stdout.strip() == \
        "spy: halt (tradingEnabled=false)"
    assert lines(cluster.opsctl("get", "spy").stdout)[1][6] == "HALTED"
    assert "Trading:      HALTED (venue outage)\n" in cluster.opsctl("describe", "spy").stdout
    assert cluster.opsctl("halt", "spy").stdout == "spy unchanged: already halted\n"  # the reason stays
    assert cluster.opsctl("unhalt", "spy").exit_code == 0
    ts = cluster.ts()
    assert ts["spec"]["tradingEnabled"] is True
    assert HALT_REASON_ANNOTATION not in (ts["metadata"].get("annotations") or {})
    assert lines(cluster.opsctl("get", "spy").stdout)[1][6] == "on"


# errors ------------------------------------------------------------------------------------------------------


def test_a_patch_the_api_server_refuses_exits_6_with_its_message(cluster: Cluster) -> None:
    """A stricter schema (as a policy might impose) makes the server answer 422 Invalid."""
    crd = cluster.kube.get(CRDS, None, f"{api.PLURAL}.{api.GROUP}")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["paused"]["enum"] = [False]
    cluster.kube.replace(CRDS, None, crd["metadata"]["name"], crd)
    result = cluster.opsctl("pause", "spy")
    assert result.exit_code == ExitCode.REJECTED
    message = error_line(result)
    assert message.startswith("opsctl: error: the API server rejected the request (422): ")
    assert 'TradingSymbol.trading.tradeops.io "spy" is invalid: spec.paused' in message
    assert cluster.ts()["spec"].get("paused", False) is False


def test_server_errors_exit_1(cluster: Cluster) -> None:
    cluster.emulator.handler.write_failure_rate = 1.0
    result = cluster.opsctl("pause", "spy")
    assert result.exit_code == ExitCode.ERROR
    assert error_line(result).startswith("opsctl: error: API error 503: injected failure")


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [(401, ExitCode.UNREACHABLE, "refused access (401): the object has been modified: check the user of ctx"),
     (403, ExitCode.UNREACHABLE, "refused access (403)"),
     (409, ExitCode.REJECTED, "rejected the request (409): the object has been modified"),
     (404, ExitCode.NOT_FOUND, "thing not found (the object has been modified)"),
     (500, ExitCode.ERROR, "API error 500")],
    ids=["unauthorised", "forbidden", "conflict", "not-found", "internal"],
)
def test_api_statuses_map_to_exit_codes(status: int, code: ExitCode, text: str) -> None:
    error = status_error(status, json.dumps({"message": "the object has been modified"}).encode(), "thing", "ctx")
    assert error.code == code
    assert text in error.message


def test_unexpected_errors_are_one_line_exit_1(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise KeyError("data")
    monkeypatch.setattr("opsctl.symbols_cli.revision_objects", broken)
    result = cluster.opsctl("history", "spy")
    assert result.exit_code == ExitCode.ERROR
    assert error_line(result) == "opsctl: error: unexpected KeyError: 'data' (OPSCTL_DEBUG=1 shows where)\n"


def test_missing_kubeconfig_exits_4_naming_the_file(tmp_path: pathlib.Path) -> None:
    result = runner.invoke(app, ["--kubeconfig", str(tmp_path / "absent"), "get"])
    assert result.exit_code == ExitCode.UNREACHABLE
    assert f"no kubeconfig: {tmp_path}/absent does not exist" in error_line(result)


# real processes ----------------------------------------------------------------------------------------------


def test_console_script_in_a_real_process(cluster: Cluster) -> None:
    script = pathlib.Path(sys.executable).with_name("opsctl")
    env = {"KUBECONFIG": str(cluster.kubeconfig), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(script), "-o", "json", "pause", "spy"], capture_output=True, text=True,
                          timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"name": "spy", "namespace": cluster.namespace, "action": "pause",
                                       "paused": True, "changed": True}
    wait_for(lambda: cluster.ts()["spec"]["paused"] is True, 5, "spec.paused")
    table = subprocess.run([str(script), "get", "-o", "wide"], capture_output=True, text=True, timeout=60, env=env,
                           check=False)
    assert table.returncode == 0
    assert table.stdout.splitlines()[1].split()[11] == "yes"


def test_python_m_opsctl_not_found_exits_3_without_traceback(cluster: Cluster) -> None:
    done = subprocess.run([sys.executable, "-m", "opsctl", "--kubeconfig", str(cluster.kubeconfig),
                           "rollback", "spy", "--to-revision", "42"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == ExitCode.NOT_FOUND
    assert done.stderr == ("opsctl: error: spy has no revision 42 (revisions: 1, 2, 3; `opsctl history spy` shows "
                           "them)\n")
    assert done.stdout == ""
