"""A retry budget (Finagle's and Envoy's idea): retries may add at most `ratio` of the first attempts'
traffic, plus `min_per_second` so a quiet client can still retry. Without one, every caller retrying
during an outage multiplies the load on the endpoints that are left."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RetryBudget:
    ratio: float = 0.2
    min_per_second: float = 5.0
    cap: float = 50.0
    """Most retries that can be saved up (a burst of retries is still bounded)."""
    tokens: float = field(init=False)
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = min(self.cap, self.min_per_second)  # a second's worth to start with

    def _refill(self, now: float) -> None:
        if self._last is not None:
            self.tokens = min(self.cap, self.tokens + (now - self._last) * self.min_per_second)
        self._last = now

    def on_request(self, now: float) -> None:
        """A first attempt earns `ratio` of a retry."""
        self._refill(now)
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget; False when it is spent."""
        self._refill(now)
        if self.tokens >= 1.0 - 1e-9:  # ten tenths make a whole retry
            self.tokens -= 1.0
            return True
        return False
