"""The main job on the embedded default: the emulated Kubernetes API with a trading-runtime process for
every pod, the synthetic options feed, a real Prometheus, and the operator. `kubectl apply` of the example
TradingSymbols (SPY, QQQ, ES); once they are Ready, QQQ is switched to the local paper broker's HTTP API
(devstack/paper_broker.py: two endpoints, two rate-limited keys from a Secret) and its calls are shown per
endpoint from Prometheus; then a bad change (120 ms of injected latency) to SPY is applied and the operator's
analysis rolls it back on its own, with the measured values.

`python -m devstack.demo [--keep-running] [--no-bad-change]`"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

from devstack.processes import REPO_ROOT, StackError, find_kubectl, kube_for, wait_for
from devstack.stack import AnalysisStack, broker_config, start_analysis_stack
from trading_operator import api
from trading_operator.executor import TRADING_SYMBOLS

BAD_CHANGE = '{"spec": {"config": {"faultInjection": {"extraLatencyMs": 120}}}}'
OPSCTL = pathlib.Path(sys.executable).with_name("opsctl")
"""The venv's opsctl (`pip install -e .` puts it beside the interpreter)."""


def pasteable(cmd: list[str]) -> str:
    """The command as a person can paste it into a shell here: kubectl from PATH by name, the venv's opsctl
    by its path (relative to the current directory when under it), every word quoted for the shell."""
    program = pathlib.Path(cmd[0])
    if program.name == "kubectl" and shutil.which("kubectl") == str(program):
        first = "kubectl"
    else:
        first = os.path.relpath(program) if program.is_relative_to(pathlib.Path.cwd()) else str(program)
    return shlex.join([first, *cmd[1:]])


def _run(*cmd: str) -> None:
    print(f"$ {pasteable(list(cmd))}", flush=True)
    subprocess.run(cmd, check=True)


def _demo(stack: AnalysisStack, args: argparse.Namespace) -> None:
    kube = kube_for(stack.kubeconfig)
    kc = [find_kubectl(), "--kubeconfig", str(stack.kubeconfig)]
    opsctl = [str(OPSCTL), "--kubeconfig", str(stack.kubeconfig)]
    print(f"Emulated Kubernetes API (kubeconfig {stack.kubeconfig}), Prometheus at {stack.prometheus.url}",
          flush=True)
    _run(*kc, "apply", "--validate=false", "-f", str(REPO_ROOT / "examples"))

    def all_ready() -> bool:
        items = kube.list_objects(TRADING_SYMBOLS, "default")
        return len(items) >= 3 and all((i.get("status") or {}).get("phase") == api.Phase.READY.value for i in items)

    wait_for(all_ready, args.timeout, "SPY, QQQ and ES to become Ready", interval=0.2)
    _run(*kc, "get", "tradingsymbols", "-o", "wide")
    if stack.paper_broker is not None:
        _through_the_broker(stack, kc, args.timeout)
    if args.bad_change:
        print("\nA bad change to SPY: 120 ms of injected latency (the SLO is p95 < 50 ms).", flush=True)
        _run(*kc, "patch", "ts", "spy", "--type", "merge", "-p", BAD_CHANGE)

        def rolled_back() -> bool:
            status = kube.get(TRADING_SYMBOLS, "default", "spy").get("status") or {}
            return bool(status.get("abortedRevision") and status.get("currentRevision") == status.get("stableRevision"))

        wait_for(rolled_back, args.timeout, "the analysis to roll SPY back", interval=0.5)
        _run(*opsctl, "analysis", "spy")
        _run(*opsctl, "describe", "spy")
    _run(*opsctl, "get")


def _through_the_broker(stack: AnalysisStack, kc: list[str], timeout: float) -> None:
    """QQQ's orders and snapshots through the local paper broker; its client pool's calls per endpoint."""
    assert stack.paper_broker is not None
    config = broker_config(stack.paper_broker)
    print(f"\nQQQ through the local paper broker's API ({', '.join(config.endpoints)}; keys "
          f"{', '.join(k.name for k in config.keys)} from Secret {config.keys[0].secret_key_ref.name}):", flush=True)
    patch = {"spec": {"config": {"broker": config.model_dump(by_alias=True, mode="json", exclude_defaults=True)}}}
    _run(*kc, "patch", "ts", "qqq", "--type", "merge", "-p", json.dumps(patch))
    query = 'sum by (endpoint, outcome) (tradeops_api_requests_total{symbol="QQQ"})'

    def calls() -> list[dict[str, object]]:
        url = f"{stack.prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        with urllib.request.urlopen(url, timeout=2) as response:
            return list(json.load(response)["data"]["result"])

    results = wait_for(calls, timeout, "QQQ's first calls through the pool to show in Prometheus", interval=0.5)
    print(f"$ promql: {query}", flush=True)
    for result in results:
        labels, value = result["metric"], result["value"]
        assert isinstance(labels, dict)
        assert isinstance(value, list)
        print(f"  {labels.get('endpoint')} {labels.get('outcome')}: {value[1]}", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM and SIGINT end the demo through the cleanup below


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-running", action="store_true",
                        help="leave everything running (Ctrl-C or SIGTERM stops all of it)")
    parser.add_argument("--no-bad-change", dest="bad_change", action="store_false",
                        help="only apply the examples")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    # SIGINT too: a process started as a background job of a script inherits SIGINT ignored, and Python then
    # installs no Ctrl-C handler of its own.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    stack: AnalysisStack | None = None
    try:
        stack = start_analysis_stack(pathlib.Path(tempfile.mkdtemp(prefix="tradeops-demo-")), paper_broker=True)
        _demo(stack, args)
        if args.keep_running:
            config = str(stack.kubeconfig)
            tries = [pasteable([find_kubectl(), "--kubeconfig", config, "get", "ts,deploy,pods"]),
                     pasteable([str(OPSCTL), "--kubeconfig", config, "get", "-w"])]
            print("\nRunning. Try:\n" + "".join(f"  {line}\n" for line in tries)
                  + f"Prometheus: {stack.prometheus.url}. Operator log: {stack.workdir / 'operator.log'}. "
                  "Ctrl-C stops.", flush=True)
            assert stack.operator.process is not None
            code = stack.operator.process.wait()
            print(f"the operator exited ({code}); see {stack.workdir / 'operator.log'}", file=sys.stderr)
            return 1
        return 0
    except (StackError, subprocess.CalledProcessError) as exc:
        log = stack.operator.log()[-4000:] if stack is not None else ""
        print(f"demo failed: {exc}\n--- operator log ---\n{log}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
