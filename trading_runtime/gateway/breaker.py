"""A circuit breaker per endpoint (closed → open → half-open), pure: the caller passes the time.

Closed: requests flow; `failure_threshold` consecutive failures open it. Open: nothing is sent for
`open_seconds`. Half-open: one probe at a time; its success closes the breaker, its failure reopens it
(the wait doubling up to `max_open_seconds`, so a dead endpoint is probed ever less often)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakerState(enum.Enum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    open_seconds: float = 1.0
    max_open_seconds: float = 30.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    current_open_seconds: float = 0.0
    probing: bool = False

    def available(self, now: float) -> bool:
        """Whether a request may be sent now (moves an expired open breaker to half-open)."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.current_open_seconds:
            self.state, self.probing = BreakerState.HALF_OPEN, False
        if self.state is BreakerState.HALF_OPEN:
            return not self.probing
        return self.state is BreakerState.CLOSED

    def on_send(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self.probing = True

    def on_success(self) -> None:
        self.state, self.failures, self.probing, self.current_open_seconds = BreakerState.CLOSED, 0, False, 0.0

    def on_failure(self, now: float) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open(now, min(self.max_open_seconds, max(self.current_open_seconds, self.open_seconds) * 2))
        elif self.state is BreakerState.CLOSED and self.failures >= self.failure_threshold:
            self._open(now, self.open_seconds)

    def _open(self, now: float, seconds: float) -> None:
        self.state, self.opened_at, self.current_open_seconds, self.probing = BreakerState.OPEN, now, seconds, False
