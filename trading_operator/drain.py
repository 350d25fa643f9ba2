"""Deletion drain: switch trading off, wait (bounded) until the pods report no open positions.

The decision is pure (`drain_decision`); `PositionsProbe` is the I/O edge that asks the runtime's
metrics Service for `GET /positions` → `{"openPositions": N}`."""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass

import aiohttp

from trading_operator import naming

log = logging.getLogger(__name__)

DEFAULT_POSITIONS_URL = "http://{service}.{namespace}.svc:{port}/positions"


class DrainStep(enum.Enum):
    WAIT = "wait"
    DONE = "done"
    TIMED_OUT = "timed-out"


@dataclass(frozen=True)
class DrainDecision:
    step: DrainStep
    message: str


def drain_decision(open_positions: int | None, elapsed_s: float, timeout_s: float) -> DrainDecision:
    """Done when flat; after the timeout, give up waiting; else wait. `None` means the pods could not
    be asked, which is waited on like open positions (never assumed flat)."""
    if open_positions == 0:
        return DrainDecision(DrainStep.DONE, f"No open positions after {elapsed_s:.0f}s; releasing children")
    what = "position report unavailable" if open_positions is None else f"{open_positions} open positions"
    if elapsed_s >= timeout_s:
        return DrainDecision(
            DrainStep.TIMED_OUT, f"Drain timed out after {timeout_s:.0f}s with {what}; deleting anyway"
        )
    return DrainDecision(DrainStep.WAIT, f"Trading off, waiting: {what} ({elapsed_s:.0f}/{timeout_s:.0f}s)")


class PositionsProbe:
    """Asks a TradingSymbol's pods, through its Service, how many positions are still open."""

    def __init__(self, url_template: str = DEFAULT_POSITIONS_URL, timeout_s: float = 2.0) -> None:
        self.url_template = url_template
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    def url(self, namespace: str, name: str) -> str:
        return self.url_template.format(
            service=naming.child_name(name), namespace=namespace, name=name, port=naming.METRICS_PORT
        )

    async def open_positions(self, namespace: str, name: str) -> int | None:
        """The count, or None when the pods cannot be asked (unreachable, bad answer)."""
        url = self.url(namespace, name)
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session, session.get(url) as response:
                if response.status != 200:
                    log.info("positions probe %s answered %s", url, response.status)
                    return None
                body = json.loads(await response.text())
                return int(body["openPositions"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.info("positions probe %s failed: %s", url, exc)
            return None
