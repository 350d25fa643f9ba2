"""The runtime's HTTP surface on the metrics port: `/metrics`, `/healthz` (liveness), `/readyz` (the feed
is connected and the database reachable), `/positions` (what the operator asks before deleting),
`/decisions` (the latest scored signal calls, which the operator pairs with another revision's on the same
points in a shadow run)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], Awaitable[bool]]


@dataclass
class HealthServer:
    registry: CollectorRegistry
    open_positions: Callable[[], int]
    checks: dict[str, Check] = field(default_factory=dict)
    alive: Callable[[], bool] = lambda: True
    decisions: Callable[[], dict[str, Any]] | None = None
    """The body of `/decisions` (404 without it: a process that makes no calls)."""
    host: str = "0.0.0.0"
    port: int = 9102
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/positions", self._positions)
        app.router.add_get("/decisions", self._decisions)
        return app

    async def start(self) -> int:
        """Serve; returns the bound port (useful with port 0)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True}) if self.alive() else web.json_response({"alive": False},
                                                                                         status=503)

    async def _readyz(self, request: web.Request) -> web.Response:
        results = {}
        for name, check in self.checks.items():
            try:
                results[name] = await check()
            except Exception:  # a failing check means not ready, never a 500
                results[name] = False
        ready = all(results.values())
        return web.json_response({"ready": ready, "checks": results}, status=200 if ready else 503)

    async def _positions(self, request: web.Request) -> web.Response:
        return web.json_response({"openPositions": self.open_positions()})

    async def _decisions(self, request: web.Request) -> web.Response:
        if self.decisions is None:
            return web.json_response({"error": "this process makes no signal calls"}, status=404)
        return web.json_response(self.decisions())
