"""The emulated Kubernetes API server shared by the tests, the demo and the benchmarks.

    async with serve_emulator() as emulator:
        emulator.url          # http://127.0.0.1:PORT
        emulator.handler      # the EmulatedKubernetes (store, registry, deployment hooks)

`python -m trading_operator.emulator --kubeconfig PATH` runs it as a process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kmock import Server

from trading_operator.emulator.server import ApiError, EmulatedKubernetes


@dataclass
class RunningEmulator:
    handler: EmulatedKubernetes
    url: str


@contextlib.asynccontextmanager
async def serve_emulator(host: str = "127.0.0.1", port: int = 0, **options: Any) -> AsyncIterator[RunningEmulator]:
    """Serve an EmulatedKubernetes over HTTP for the duration of the block."""
    handler = EmulatedKubernetes(**options)
    async with handler, Server(handler, host=host, port=port or None, user_agent="") as server:
        yield RunningEmulator(handler=handler, url=str(server.url).rstrip("/"))


def kubeconfig_for(url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig pointing at an emulator (any token is accepted)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tradeops-emulator", "cluster": {"server": url}}],
        "users": [{"name": "tradeops", "user": {"token": "emulator"}}],
        "contexts": [{"name": "tradeops-emulator",
                      "context": {"cluster": "tradeops-emulator", "user": "tradeops", "namespace": namespace}}],
        "current-context": "tradeops-emulator",
    }


__all__ = ["ApiError", "EmulatedKubernetes", "RunningEmulator", "kubeconfig_for", "serve_emulator"]
