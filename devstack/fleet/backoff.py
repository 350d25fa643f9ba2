"""The kubelet's back-off, pure: client-go's `flowcontrol.Backoff` as the kubelet uses it for container
restarts (`doBackOff`, key pod uid + container) and image pulls (key pod uid + image): 10 s doubling to
300 s, no jitter; an entry untouched for twice the maximum (10 minutes) starts over."""

from __future__ import annotations

from dataclasses import dataclass, field

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0
POD_WORKER_RETRY_SECONDS = 10.0
"""A pod sync that failed (a container in back-off, an image that would not pull, a bad config) is
retried after the pod worker's backOffPeriod."""


@dataclass
class Entry:
    backoff: float
    last_update: float


@dataclass
class BackOff:
    initial: float = INITIAL_SECONDS
    maximum: float = MAX_SECONDS
    entries: dict[str, Entry] = field(default_factory=dict)

    def _expired(self, event_time: float, entry: Entry) -> bool:
        """hasExpired: stable for twice the maximum since the last update."""
        return event_time - entry.last_update > 2 * self.maximum

    def next(self, key: str, event_time: float, now: float) -> None:
        """Next: the first back-off, or double the current one (up to the maximum)."""
        entry = self.entries.get(key)
        if entry is None or self._expired(event_time, entry):
            self.entries[key] = Entry(self.initial, now)
        else:
            self.entries[key] = Entry(min(entry.backoff * 2, self.maximum), now)

    def in_backoff_since(self, key: str, event_time: float, now: float) -> bool:
        """IsInBackOffSince: within the back-off of `event_time` (a container's finish time)."""
        entry = self.entries.get(key)
        if entry is None or self._expired(event_time, entry):
            return False
        return now - event_time < entry.backoff

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        """IsInBackOffSinceUpdate: within the back-off of the last failure (image pulls)."""
        entry = self.entries.get(key)
        return entry is not None and now - entry.last_update < entry.backoff

    def get(self, key: str) -> float:
        entry = self.entries.get(key)
        return entry.backoff if entry is not None else 0.0

    def forget(self, prefix: str) -> None:
        """Drop the entries of a pod that is gone."""
        for key in [k for k in self.entries if k.startswith(prefix)]:
            del self.entries[key]


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it: 10s, 1m20s, 5m0s."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{rest}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{rest}s"
