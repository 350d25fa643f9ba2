"""`python -m devstack.emulator [--host H] [--port P] [--kubeconfig PATH] [--run-training WORKDIR]`: serve
the emulated Kubernetes API until SIGTERM/SIGINT; print its URL on the first line of stdout."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import pathlib
import signal

from devstack.emulator import Kubelet, SimulatedKubelet, serve_emulator, write_kubeconfig
from devstack.fleet.training import TrainingKubelet


async def serve(host: str, port: int, kubeconfig: pathlib.Path | None, pod_ready_delay: float,
                write_failure_rate: float, run_training: pathlib.Path | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    kubelet: Kubelet = SimulatedKubelet(ready_delay=pod_ready_delay)
    if run_training is not None:
        kubelet = TrainingKubelet(run_training, ready_delay=pod_ready_delay)
    async with serve_emulator(host, port, kubelet=kubelet, write_failure_rate=write_failure_rate) as emulator:
        if kubeconfig is not None:
            write_kubeconfig(kubeconfig, emulator.url)
        print(emulator.url, flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="tradeops-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", type=pathlib.Path, help="write a kubeconfig for this server here")
    parser.add_argument("--pod-ready-delay", type=float, default=0.05,
                        help="seconds from a pod being bound to its containers running and ready (the simulated "
                             "kubelet runs no processes)")
    parser.add_argument("--write-failure-rate", type=float, default=0.0,
                        help="answer this fraction of writes with 503 (to test retries)")
    parser.add_argument("--run-training", type=pathlib.Path, metavar="WORKDIR",
                        help="run the training image's pods (retraining Jobs) as real processes, their files under "
                             "WORKDIR; other pods stay simulated")
    args = parser.parse_args()
    if os.environ.get("TRADEOPS_EMULATOR_DEBUG") == "1":
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    # A profile of the run, written when it stops: `python -m pstats PATH`.
    profile_path = os.environ.get("TRADEOPS_EMULATOR_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    if profiler is not None:
        profiler.enable()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.host, args.port, args.kubeconfig, args.pod_ready_delay, args.write_failure_rate,
                              args.run_training))
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)


if __name__ == "__main__":
    main()
