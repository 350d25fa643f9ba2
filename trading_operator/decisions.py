"""The I/O edge of a paired comparison: read the scored calls of one Ready pod of each revision and pair them
(`pairing.py` decides what a pair is, `analysis.judge_paired` what the pairs say)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from trading_operator import naming
from trading_operator.analysis import PairedRequest, Query
from trading_operator.kube import PODS
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.pairing import Calls, PairedCounts, pair, parse_calls

log = logging.getLogger(__name__)


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pick_pod(pods: list[dict[str, Any]], revision: int, shadow: bool) -> dict[str, Any] | None:
    """A Ready pod with an IP of `revision` on the shadow (or the main) Deployment."""
    for pod in sorted(pods, key=lambda p: p.get("metadata", {}).get("name", "")):
        labels = pod.get("metadata", {}).get("labels") or {}
        if labels.get(naming.REVISION_LABEL) != str(revision):
            continue
        if (labels.get(naming.TRACK_LABEL) == "shadow") != shadow:
            continue
        if _ready(pod) and pod.get("status", {}).get("podIP"):
            return pod
    return None


class DecisionsProbe:
    """Reads `/decisions` from the pods of a TradingSymbol, as the drain reads `/positions`."""

    def __init__(self, kube: AsyncKubeApi, timeout_s: float = 3.0) -> None:
        self.kube = kube
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _calls(self, session: aiohttp.ClientSession, pod: dict[str, Any] | None, path: str,
                     what: str) -> Calls | str:
        if pod is None:
            return f"no Ready pod of the {what}"
        url = f"http://{pod['status']['podIP']}:{naming.METRICS_PORT}{path}"
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    return f"{what} answered {response.status} at {url}"
                return parse_calls(await response.json())
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"{what} unreachable at {url}: {type(error).__name__}"
        except ValueError as error:
            return f"{what} answered no calls at {url}: {error}"

    async def measure(self, namespace: str, name: str, request: PairedRequest) -> PairedCounts | str:
        """The paired table of the candidate (the shadow) against stable, or why there is none."""
        pods = await self.kube.list_objects(PODS, namespace, f"{naming.OWNER_NAME_LABEL}={name}")
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            candidate, stable = await asyncio.gather(
                self._calls(session, pick_pod(pods, request.candidate.revision, True), request.path,
                            f"candidate revision {request.candidate.revision}"),
                self._calls(session, pick_pod(pods, request.stable.revision, False), request.path,
                            f"stable revision {request.stable.revision}"))
        if isinstance(candidate, str):
            return candidate
        if isinstance(stable, str):
            return stable
        try:
            return pair(candidate, stable)
        except ValueError as error:
            return str(error)

    async def measure_all(self, namespace: str, name: str, queries: list[Query]) -> dict[str, PairedCounts | str]:
        """Every paired query's table, by metric."""
        paired = [q for q in queries if q.paired is not None]
        results = await asyncio.gather(*(self.measure(namespace, name, q.paired) for q in paired if q.paired))
        return {q.metric: r for q, r in zip(paired, results, strict=True)}
