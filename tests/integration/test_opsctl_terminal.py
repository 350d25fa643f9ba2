"""What a person sees: the real `opsctl` console script in a terminal (tmux, 80 columns) and through pipes,
against the emulated API; servers that refuse, hang or are misconfigured; shell completion through the
shells' own protocol (typer's environment variables); `opsctl version`; the demo's printed commands."""

from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from devstack.demo import OPSCTL, pasteable
from devstack.emulator import EmulatorThread, SimulatedKubelet, kubeconfig_for
from devstack.processes import REPO_ROOT, find_kubectl, wait_for
from opsctl.errors import ExitCode
from tests.integration import emulator_fixtures
from tests.integration.test_opsctl_cli import create_namespace, seed_symbol, seeded
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.kube import DEPLOYMENTS, KubeApi

WIDTH = 80
LONG_MESSAGE = ("rolling out revision 3: 1 of 2 pods ready; the analysis run of revision 3 is at measurement 2 of 5 "
                "and the stable revision 2 keeps serving until it passes")


@dataclass
class Cluster:
    emulator: EmulatorThread
    kube: KubeApi
    kubeconfig: pathlib.Path
    namespace: str

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), **extra}

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(OPSCTL), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env(**env), check=False)

    def status(self, status: dict[str, Any], name: str = "spy") -> None:
        self.kube.patch_status(TRADING_SYMBOLS, self.namespace, name, status)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(kubelet=SimulatedKubelet(ready_delay=emulator_fixtures.TEST_POD_READY_DELAY)) as running:
        yield running


@pytest.fixture
def cluster(emulator: EmulatorThread, tmp_path: pathlib.Path) -> Iterator[Cluster]:
    with seeded(emulator.url, tmp_path, "term") as (kube, kubeconfig, namespace):
        yield Cluster(emulator, kube, kubeconfig, namespace)


class Terminal:
    """A shell in a tmux window of its own server (never another helper's), 80 columns by 40 lines."""

    def __init__(self, env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed: run scripts/install-system-deps.sh")
        self.socket = f"opsctl-test-{uuid.uuid4().hex[:8]}"
        shell_env = {**env, "PS1": "$ ", "TERM": "xterm-256color"}
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-x", str(WIDTH),
                        "-y", "40", "bash --norc --noprofile"], env=shell_env, check=True, timeout=10)
        self.socket_path = pathlib.Path(self.tmux("display-message", "-p", "#{socket_path}").strip())

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-l", line)
        self.tmux("send-keys", "Enter")

    def screen(self, joined: bool = False) -> list[str]:
        """The screen's lines as shown (or with the lines the terminal wrapped joined back)."""
        return self.tmux("capture-pane", "-p", *(["-J"] if joined else [])).rstrip("\n").splitlines()

    def wait(self, predicate: Callable[[list[str]], bool], what: str, timeout: float = 20) -> list[str]:
        return wait_for(lambda: (lambda s: s if predicate(s) else None)(self.screen()), timeout, what)

    def run(self, command: str, timeout: float = 30) -> tuple[int, list[str]]:
        """Run a command on a cleared screen: its exit status and the screen lines it printed."""
        marker = f"__EXIT_{uuid.uuid4().hex[:6]}="
        self.type(f"clear; {command}; echo {marker}$?")
        screen = self.wait(lambda s: any(line.startswith(marker) for line in s), command, timeout)
        end = next(i for i, line in enumerate(screen) if line.startswith(marker))
        return int(screen[end].removeprefix(marker)), screen[:end]  # `clear` wiped the typed line

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False)
        self.socket_path.unlink(missing_ok=True)  # tmux leaves its socket file behind


@pytest.fixture
def terminal(cluster: Cluster) -> Iterator[Terminal]:
    term = Terminal(cluster.env())
    try:
        yield term
    finally:
        term.close()


def opsctl(*args: str) -> str:
    return shlex.join([str(OPSCTL), *args])


def assert_fits(lines: list[str]) -> None:
    assert all(len(line) <= WIDTH for line in lines), "\n".join(lines)


# 80 columns --------------------------------------------------------------------------------------------------


def test_get_all_namespaces_fits_80_columns_uncut(cluster: Cluster, terminal: Terminal) -> None:
    cluster.status({"phase": "Degraded", "readyReplicas": 1})
    status, lines = terminal.run(opsctl("get", "-A"))
    assert status == 0
    assert len(lines) == 2  # header and row, neither wrapped by the terminal
    assert lines[0].split() == ["NAMESPACE", "NAME", "SYMBOL", "PHASE", "REVISION", "STABLE", "READY", "TRADING",
                                "AGE"]
    assert lines[1].split()[:8] == [cluster.namespace, "spy", "SPY", "Degraded", "3", "3", "1", "on"]
    assert not any("…" in line for line in lines)


def test_describe_wraps_long_messages_at_word_boundaries(cluster: Cluster, terminal: Terminal) -> None:
    cluster.status({"conditions": [
        {"type": "Ready", "status": "False", "reason": "RolloutInProgress", "message": LONG_MESSAGE,
         "lastTransitionTime": "2026-11-25T10:00:00Z"},
        {"type": "Draining", "status": "True", "reason": "DrainInProgress", "message": "3 open positions, 90s left",
         "lastTransitionTime": "2026-11-25T10:00:00Z"}]})
    status, lines = terminal.run(opsctl("describe", "spy"))
    assert status == 0
    conditions = lines[lines.index("Conditions:") + 1:lines.index("Revisions:")]
    assert_fits(conditions)
    start = conditions[0].index("MESSAGE")
    message = " ".join(line[start:].strip() for line in conditions[1:-1])
    assert message == LONG_MESSAGE  # every word whole, in order, over several lines
    assert len(conditions) > 3
    assert conditions[-1].split() == ["Draining", "True", "DrainInProgress", conditions[-1].split()[3], "3", "open",
                                      "positions,", "90s", "left"]


def test_history_keeps_changes_and_ages_whole(cluster: Cluster, terminal: Terminal) -> None:
    status, lines = terminal.run(opsctl("history", "spy"))
    assert status == 0
    assert_fits(lines)
    rows: list[list[str]] = []
    for line in lines:  # a wrapped CHANGE continues on lines whose other cells are blank
        if line[:1].strip():
            rows.append(line.split())
        else:
            rows[-1].extend(line.split())
    assert [row[0] for row in rows] == ["REVISION", "1", "2", "3"]
    assert rows[1][3:] == ["initial", "(image", ":0.1.0)"]
    assert rows[3][2:] == ["current,stable,update", "image", ":0.1.0→:0.2.0"]
    status, _ = terminal.run(opsctl("history", "spy", "-o", "wide"))
    joined = terminal.screen(joined=True)  # -o wide may run past 80 columns, like kubectl's; never cut
    assert [line.split()[2] for line in joined if line[:1].isdigit()] == \
        ["ghcr.io/tradeops/trading-runtime:0.1.0"] * 2 + ["ghcr.io/tradeops/trading-runtime:0.2.0"]


# watching ----------------------------------------------------------------------------------------------------


def test_get_watch_prints_a_row_per_change_and_stops_on_ctrl_c(cluster: Cluster, terminal: Terminal) -> None:
    terminal.type(f"clear; {opsctl('get', '-w')}")
    terminal.wait(lambda s: any(line.startswith("spy ") for line in s), "the first table")
    cluster.status({"phase": "Progressing", "currentRevision": 4})
    cluster.kube.merge_patch(TRADING_SYMBOLS, cluster.namespace, "spy", {"metadata": {"labels": {"x": "y"}}})
    cluster.status({"phase": "Ready"})
    rows = terminal.wait(lambda s: sum(line.startswith("spy ") for line in s) >= 3, "two more rows")
    spy_rows = [line.split()[:4] for line in rows if line.startswith("spy ")]
    # The label change shows nothing new: no row for it.
    assert spy_rows == [["spy", "SPY", "Ready", "3"], ["spy", "SPY", "Progressing", "4"], ["spy", "SPY", "Ready", "4"]]
    header = next(line for line in rows if line.startswith("NAME"))
    assert all(line.index("SPY") == header.index("SYMBOL") for line in rows if line.startswith("spy "))
    terminal.tmux("send-keys", "C-c")
    terminal.type("echo __EXIT=$?")
    screen = terminal.wait(lambda s: any(line.startswith("__EXIT=") for line in s), "the shell")
    assert "__EXIT=130" in screen
    assert not any("Traceback" in line or "Aborted" in line for line in screen)


def test_describe_watch_redraws_in_place(cluster: Cluster, terminal: Terminal) -> None:
    terminal.type(f"clear; {opsctl('describe', 'spy', '-w')}")
    terminal.wait(lambda s: "Phase:        Ready" in s, "the first view")
    cluster.status({"phase": "Terminating", "conditions": [
        {"type": "Draining", "status": "True", "reason": "DrainInProgress", "message": "2 open positions, 40s left",
         "lastTransitionTime": "2026-11-25T10:00:00Z"}]})
    screen = terminal.wait(lambda s: "Phase:        Terminating" in s, "the redrawn view")
    assert sum(line.startswith("Name:") for line in screen) == 1  # redrawn, not appended
    assert any(line.split()[:3] == ["Draining", "True", "DrainInProgress"] for line in screen)
    cluster.kube.delete(TRADING_SYMBOLS, cluster.namespace, "spy")  # the drain is over: the watch ends
    terminal.wait(lambda s: "spy: deleted" in s, "the end of the watch")
    terminal.type("echo __EXIT=$?")
    assert "__EXIT=0" in terminal.wait(lambda s: any(line.startswith("__EXIT=") for line in s), "the shell")


# pipes -------------------------------------------------------------------------------------------------------


def piped(cluster: Cluster, pipeline: str) -> tuple[list[str], str, str]:
    """PIPESTATUS, stdout and stderr of a shell pipeline."""
    done = subprocess.run(["bash", "-c", f"{pipeline}; echo \"STATUS ${{PIPESTATUS[*]}}\" >&2"],
                          capture_output=True, text=True, timeout=60, env=cluster.env(), check=False)
    statuses = done.stderr.strip().splitlines()[-1].split()[1:]
    return statuses, done.stdout, "\n".join(done.stderr.strip().splitlines()[:-1])


def test_a_closed_pipe_ends_quietly_with_0(cluster: Cluster) -> None:
    for index in range(40):  # a YAML list well over a pipe's 64 KiB buffer: opsctl writes after head is gone
        seed_symbol(cluster.kube, cluster.namespace, name=f"s{index:02d}", revisions=1)
    statuses, out, err = piped(cluster, f"{opsctl('get', '-o', 'yaml')} | head -1")
    assert (statuses, out, err) == (["0", "0"], "apiVersion: v1\n", "")
    statuses, out, err = piped(cluster, f"{opsctl('describe', 'spy')} | grep -m1 Phase:")
    assert (statuses, out.split(), err) == (["0", "0"], ["Phase:", "Ready"], "")


def test_a_watch_whose_reader_went_away_ends_quietly_with_0(cluster: Cluster) -> None:
    # Buffered as on a user's machine (PYTHONUNBUFFERED is set on some): the first table must reach `head` at once.
    env = {k: v for k, v in cluster.env().items() if k != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(["bash", "-c", f"{opsctl('get', '-w')} | head -2; echo \"STATUS ${{PIPESTATUS[*]}}\""],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = [process.stdout.readline() for _ in range(2)]  # the header and spy's row: head is done
        assert first[1].split()[0] == "spy"
        deadline, phases = time.monotonic() + 30, itertools.cycle(["Progressing", "Ready"])
        while process.poll() is None and time.monotonic() < deadline:
            cluster.status({"phase": next(phases)})  # a row to write after head is gone: the write that fails
            time.sleep(0.3)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert out.splitlines()[-1] == "STATUS 0 0"
    assert err == ""


# servers that refuse, hang, or are not configured ------------------------------------------------------------


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


def kubeconfig_at(tmp_path: pathlib.Path, server: str) -> dict[str, str]:
    path = tmp_path / "hung-kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_for(server, "trading")))
    return {**os.environ, "KUBECONFIG": str(path)}


@pytest.mark.parametrize(("flag", "limit"), [([], 5.0), (["--request-timeout", "1s"], 1.0)],
                         ids=["default-5s", "flag-1s"])
def test_a_hung_api_server_gives_up_within_the_request_timeout(hung_server: str, tmp_path: pathlib.Path,
                                                               flag: list[str], limit: float) -> None:
    started = time.monotonic()
    done = subprocess.run([str(OPSCTL), *flag, "get"], capture_output=True, text=True, timeout=60,
                          env=kubeconfig_at(tmp_path, hung_server), check=False)
    took = time.monotonic() - started
    assert done.returncode == ExitCode.NO_ANSWER
    assert limit <= took < limit + 10, took  # the process's own start counts too (slow on a loaded machine)
    assert done.stderr == (f"opsctl: error: the API server at {hung_server} (context \"tradeops-emulator\" of "
                           f"{tmp_path}/hung-kubeconfig) did not answer within {limit:g}s: is it overloaded or hung? "
                           "Raise --request-timeout to wait longer\n")


def test_a_hung_prometheus_gives_up_naming_its_variable(hung_server: str) -> None:
    done = subprocess.run([str(OPSCTL), "slo", "report", "--request-timeout", "1"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "TRADEOPS_PROMETHEUS_URL": hung_server}, check=False)
    assert done.returncode == ExitCode.NO_ANSWER
    assert done.stderr == (f"opsctl: error: Prometheus at {hung_server} did not answer within 1s: raise "
                           "--request-timeout, or set TRADEOPS_PROMETHEUS_URL or pass --prometheus-url\n")


def test_an_unreachable_api_server_names_the_server_and_the_context(tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{sock.getsockname()[1]}"
    done = subprocess.run([str(OPSCTL), "get"], capture_output=True, text=True, timeout=60,
                          env=kubeconfig_at(tmp_path, server), check=False)
    assert done.returncode == ExitCode.UNREACHABLE
    assert done.stderr == (f"opsctl: error: cannot reach the API server at {server} (context \"tradeops-emulator\" of "
                           f"{tmp_path}/hung-kubeconfig): connection refused: is the cluster up? Check --context and "
                           "--kubeconfig (KUBECONFIG)\n")


def test_a_broken_kubeconfig_names_the_file_and_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text("apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://x\n   bad: indent\n")
    done = subprocess.run([str(OPSCTL), "--kubeconfig", str(path), "get"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == ExitCode.UNREACHABLE
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"opsctl: error: kubeconfig {path} line 6: ")
    assert done.stderr.endswith("fix the file, or pass --kubeconfig or set KUBECONFIG\n")


# completion, version, kubectl, the demo ----------------------------------------------------------------------


@pytest.mark.parametrize(("shell", "env", "expected"), [
    ("bash", {"COMP_WORDS": "opsctl describe s", "COMP_CWORD": "2"}, "spy\nspy-2"),
    ("zsh", {"_TYPER_COMPLETE_ARGS": "opsctl describe s"}, "_arguments '*: :((\"spy\"\n\"spy-2\"))'"),
    ("fish", {"_TYPER_COMPLETE_ARGS": "opsctl describe s", "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
     "spy\nspy-2")], ids=["bash", "zsh", "fish"])
def test_shell_completion_completes_tradingsymbol_names(cluster: Cluster, shell: str, env: dict[str, str],
                                                        expected: str) -> None:
    seed_symbol(cluster.kube, cluster.namespace, name="spy-2", revisions=1)
    seed_symbol(cluster.kube, cluster.namespace, name="qqq", revisions=1)
    done = cluster.run(_OPSCTL_COMPLETE=f"complete_{shell}", **env)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, expected, "")


def test_completion_follows_the_namespace_given_and_stays_silent_without_a_cluster(cluster: Cluster) -> None:
    create_namespace(cluster.kube, f"{cluster.namespace}-b")
    seed_symbol(cluster.kube, f"{cluster.namespace}-b", name="es", revisions=1)
    other = cluster.run(_OPSCTL_COMPLETE="complete_bash", COMP_WORDS=f"opsctl -n {cluster.namespace}-b halt ",
                        COMP_CWORD="4")
    assert other.stdout.split() == ["es"]
    nowhere = cluster.run(_OPSCTL_COMPLETE="complete_bash", COMP_WORDS="opsctl describe ", COMP_CWORD="2",
                          KUBECONFIG="/nonexistent")
    assert (nowhere.returncode, nowhere.stdout.strip(), nowhere.stderr) == (0, "", "")
    # `--show-completion` prints the script for the shell it runs under (typer asks shellingham): bash, which
    # forks for it (a lone command would be exec'd in place of bash).
    script = subprocess.run(["bash", "-c", f"'{OPSCTL}' --show-completion; exit $?"], capture_output=True, text=True,
                            timeout=60, env=cluster.env(), check=False)
    assert "_OPSCTL_COMPLETE=complete_bash" in script.stdout, script.stderr


def test_version_names_client_operator_and_crd(cluster: Cluster) -> None:
    from importlib import metadata

    create_namespace(cluster.kube, "tradeops-system")
    labels = {"app.kubernetes.io/name": "tradeops-operator"}
    cluster.kube.create(DEPLOYMENTS, "tradeops-system", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tradeops-operator", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "operator", "image": "ghcr.io/tradeops/operator:0.1.0"}]}}}})
    wait_for(lambda: (cluster.kube.get(DEPLOYMENTS, "tradeops-system", "tradeops-operator").get("status") or {})
             .get("readyReplicas") == 1, 10, "the operator Deployment to be ready")
    done = cluster.run("version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"Client Version: {metadata.version('tradeops')} (speaks trading.tradeops.io/v1alpha1)",
        "Operator Version: 0.1.0 (ghcr.io/tradeops/operator:0.1.0, Deployment tradeops-system/tradeops-operator, "
        "1/1 ready)",
        "CRD Versions: v1alpha1 served, v1alpha1 stored (tradingsymbols.trading.tradeops.io)"]
    elsewhere = cluster.run("version", "--operator-namespace", "nowhere")
    assert "Operator Version: unknown: no Deployment labelled app.kubernetes.io/name=tradeops-operator in " \
           "namespace nowhere" in elsewhere.stdout


def test_get_agrees_with_kubectl(cluster: Cluster) -> None:
    cluster.status({"phase": "Progressing", "currentRevision": 3, "stableRevision": 2, "readyReplicas": 1})
    kubectl = subprocess.run([find_kubectl(), "get", "ts"], capture_output=True, text=True, timeout=60,
                             env=cluster.env(), check=True).stdout.splitlines()
    ours = cluster.run("get").stdout.splitlines()
    shared = ["NAME", "SYMBOL", "PHASE", "REVISION", "STABLE", "READY"]
    assert kubectl[0].split()[:6] == ours[0].split()[:6] == shared
    assert kubectl[1].split()[:6] == ours[1].split()[:6] == ["spy", "SPY", "Progressing", "3", "2", "1"]


def test_the_demos_printed_commands_work_as_pasted(cluster: Cluster) -> None:
    line = pasteable([str(OPSCTL), "--kubeconfig", str(cluster.kubeconfig), "get", "spy"])
    assert line.startswith(".venv/bin/opsctl ") or line.startswith(str(OPSCTL))
    outside = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "KUBECONFIG")}
    outside["PATH"] = "/usr/bin:/bin"  # a fresh shell: the venv is not active
    done = subprocess.run(["bash", "-c", line], cwd=REPO_ROOT if line.startswith(".venv") else None,
                          capture_output=True, text=True, timeout=60, env=outside, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[0] == "spy"
    assert sys.executable  # the interpreter running the tests is not what the line names
