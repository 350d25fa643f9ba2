"""One writer of status, optimistically locked: the reconcile against the emulator (which answers a stale
resourceVersion with 409 like a real API server) re-reads and re-plans instead of writing over a change."""

from __future__ import annotations

from typing import Any

from devstack.emulator import RunningEmulator
from tests.integration.emulator_fixtures import api_client_for, emulator, unique_namespace  # noqa: F401
from trading_operator.api import AnalysisPhase, Measurement
from trading_operator.context import OperatorContext, reconcile
from trading_operator.crd import build_crd
from trading_operator.drain import PositionsProbe
from trading_operator.executor import TRADING_SYMBOLS, Executor
from trading_operator.findings import RunMeasured
from trading_operator.kube import CRDS, NAMESPACES
from trading_operator.kube_async import AsyncKubeApi
from trading_operator.planner import Observed
from trading_operator.prometheus import MetricsSource

SPEC = {"symbol": "SPY", "market": "equity-options", "image": "ghcr.io/tradeops/runtime:1.0.0"}


class InterferingExecutor(Executor):
    """Changes the TradingSymbol behind the planner's back after its first `times` observations, as kopf's
    own annotation writes or a user's `opsctl` request do."""

    def __init__(self, kube: AsyncKubeApi, times: int) -> None:
        super().__init__(kube)
        self.observations = 0
        self.times = times

    async def observe(self, ts: dict[str, Any], fresh: bool = False) -> Observed:
        observed = await super().observe(ts, fresh)
        self.observations += 1
        if self.observations <= self.times:
            meta = ts["metadata"]
            await self.kube.merge_patch(TRADING_SYMBOLS, meta["namespace"], meta["name"], {
                "metadata": {"annotations": {"example.com/touched": str(self.observations)}}})
        return observed


async def _setup(emulator: RunningEmulator, times: int) -> tuple[OperatorContext, AsyncKubeApi, str]:  # noqa: F811
    kube = AsyncKubeApi(api_client_for(emulator.url))
    await kube.create(CRDS, None, build_crd())
    namespace = unique_namespace("status")
    await kube.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await kube.create(TRADING_SYMBOLS, namespace, {"apiVersion": "tradeops.io/v1alpha1", "kind": "TradingSymbol",
                                                   "metadata": {"name": "spy"}, "spec": SPEC})
    context = OperatorContext(executor=InterferingExecutor(kube, times), probe=PositionsProbe(),
                              metrics=MetricsSource(None))
    return context, kube, namespace


async def test_a_status_write_that_loses_a_race_re_reads_and_re_plans(emulator: RunningEmulator) -> None:  # noqa: F811
    context, kube, namespace = await _setup(emulator, times=2)
    try:
        await reconcile(context, namespace, "spy")
        ts = await kube.get(TRADING_SYMBOLS, namespace, "spy")
        assert isinstance(context.executor, InterferingExecutor)
        assert context.executor.observations == 3  # two lost races, then a plan from the fresh object
        assert ts["status"]["currentRevision"] == 1
        assert ts["metadata"]["annotations"]["example.com/touched"] == "2"
    finally:
        await kube.close()
        context.metrics.close()


async def test_findings_survive_a_lost_race_and_are_counted_once(emulator: RunningEmulator) -> None:  # noqa: F811
    context, kube, namespace = await _setup(emulator, times=0)
    try:
        await reconcile(context, namespace, "spy")
        await kube.patch_status(TRADING_SYMBOLS, namespace, "spy", {"analysis": {
            "revision": 1, "kind": "Rollout", "startedAt": "2026-11-25T00:00:00Z"}})
        measurement = Measurement(time="2026-11-25T00:00:10Z", metric="error-ratio",
                                  phase=AnalysisPhase.SUCCESSFUL, value=0.0)
        context.findings.add((namespace, "spy"), RunMeasured(1, "2026-11-25T00:00:00Z", (measurement,),
                                                             "2026-11-25T00:00:10Z"))
        assert isinstance(context.executor, InterferingExecutor)
        context.executor.times = context.executor.observations + 1  # the next plan loses its race
        await reconcile(context, namespace, "spy")
        ts = await kube.get(TRADING_SYMBOLS, namespace, "spy")
        assert len(ts["status"]["analysis"]["measurements"]) == 1
        assert context.findings.pending((namespace, "spy")) == ()
        await reconcile(context, namespace, "spy")
        ts = await kube.get(TRADING_SYMBOLS, namespace, "spy")
        assert len(ts["status"]["analysis"]["measurements"]) == 1
    finally:
        await kube.close()
        context.metrics.close()
