"""Readiness probes as the kubelet's prober runs them (pkg/kubelet/prober/worker.go): an httpGet probe to
the pod IP every periodSeconds after initialDelaySeconds, timeoutSeconds each, a 2xx or 3xx answer is a
success; the result flips after successThreshold successes or failureThreshold failures in a row; it
starts as failure, and a probe runs at once when the container starts (the manual trigger)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

Obj = dict[str, Any]


def probe_port(probe: Obj, container: Obj) -> int:
    """httpGet.port: a number, or the name of one of the container's ports."""
    port = probe["httpGet"]["port"]
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"port {port!r} is not a port of container {container.get('name')!r}")


async def http_probe(session: aiohttp.ClientSession, url: str, seconds: float) -> tuple[bool, str]:
    """(success, why not) for one httpGet probe that may take `seconds`."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=seconds), allow_redirects=False) as answer:
            if 200 <= answer.status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {answer.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return False, f'Get "{url}": {type(error).__name__}'


@dataclass
class ReadinessProber:
    probe: Obj
    url: str
    scale: float
    """Multiplies initialDelaySeconds and periodSeconds (1.0: the real timing)."""
    on_result: Callable[[bool], None]
    """Called when the result flips."""
    on_failure: Callable[[str], None]
    """Called with the reason of every failed probe (the kubelet's Unhealthy Event)."""

    async def run(self) -> None:
        period = float(self.probe.get("periodSeconds", 10)) * self.scale
        timeout = float(self.probe.get("timeoutSeconds", 1))
        successes_needed = int(self.probe.get("successThreshold", 1))
        failures_needed = int(self.probe.get("failureThreshold", 3))
        await asyncio.sleep(float(self.probe.get("initialDelaySeconds", 0)) * self.scale)
        ready, successes, failures = False, 0, 0
        async with aiohttp.ClientSession() as session:
            while True:
                ok, why = await http_probe(session, self.url, timeout)
                successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
                if not ok:
                    self.on_failure(why)
                if not ready and successes >= successes_needed:
                    ready = True
                    self.on_result(True)
                elif ready and failures >= failures_needed:
                    ready = False
                    self.on_result(False)
                await asyncio.sleep(period)
