"""The main job on the embedded default: the emulated Kubernetes API, the operator, `kubectl apply` of
the example TradingSymbols (SPY, QQQ, ES), and a status table once they are Ready.

`python -m trading_operator.demo [--keep-running]`"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile

from trading_operator import api
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.localstack import (
    REPO_ROOT,
    EmulatorProcess,
    OperatorProcess,
    StackError,
    find_kubectl,
    install_crd,
    kube_for,
    wait_for,
)


def _run(*cmd: str) -> None:
    print(f"$ {' '.join(pathlib.Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd))}", flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the API and the operator running (Ctrl-C stops them)")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-demo-"))
    kubectl = find_kubectl()
    emulator = EmulatorProcess(workdir).start()
    operator = OperatorProcess(emulator.kubeconfig, workdir / "operator.log")
    try:
        print(f"Emulated Kubernetes API at {emulator.url} (kubeconfig {emulator.kubeconfig})", flush=True)
        kube = kube_for(emulator.kubeconfig)
        install_crd(kube)
        operator.start()
        kc = [kubectl, "--kubeconfig", str(emulator.kubeconfig)]
        _run(*kc, "apply", "--validate=false", "-f", str(REPO_ROOT / "examples"))

        def all_ready() -> bool:
            items = kube.list_objects(TRADING_SYMBOLS, "default")
            return len(items) >= 3 and all(
                (i.get("status") or {}).get("phase") == api.Phase.READY.value for i in items
            )

        wait_for(all_ready, args.timeout, "SPY, QQQ and ES to become Ready", interval=0.2)
        _run(*kc, "get", "tradingsymbols", "-o", "wide")
        _run(sys.executable, "-m", "opsctl", "--kubeconfig", str(emulator.kubeconfig), "get")
        if args.keep_running:
            print(f"\nRunning. Try: kubectl --kubeconfig {emulator.kubeconfig} get ts,deploy,controllerrevisions\n"
                  f"Operator log: {operator.log_path}. Ctrl-C stops.", flush=True)
            operator.process.wait() if operator.process else None
        return 0
    except (StackError, subprocess.CalledProcessError) as exc:
        print(f"demo failed: {exc}\n--- operator log ---\n{operator.log()[-4000:]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        operator.stop()
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
