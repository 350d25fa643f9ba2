"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it: the pure part.

One Lease per symbol; `holderIdentity` is the pod's name. `Elector.plan` turns what was read from the API
server into the one write to attempt (create, update or none); `succeeded` and `leading` keep the local
view. No I/O and no clock of its own: times are passed in (a monotonic clock for expiry, the wall clock only
for the record's `acquireTime`/`renewTime`), so acquire, renew, expiry and takeover are table-tested with a
fake clock (tests/unit/test_leadership.py). `election.py` is the I/O edge that drives it.

The rules (client-go's):
- a Lease another pod holds is taken over only once it has not changed for `leaseDurationSeconds` of *our*
  clock since we first saw it that way — the holder's `renewTime` is never compared with our clock, so clock
  skew between nodes cannot shorten a lease;
- the holder counts itself leader only until `renew_deadline` after the start of its last successful
  write: shorter than the lease duration, so it stops trading before anyone else may start;
- every write carries the `resourceVersion` it was planned from: of two candidates only one write wins, the
  other gets a 409 Conflict and reads again;
- a released Lease (empty holder) is free at once: a pod that stops cleanly hands over without the wait."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
"""metav1.MicroTime as the API server writes it."""


class LeaseSpec(BaseModel):
    """`spec` of a coordination.k8s.io/v1 Lease (the fields leader election uses)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    holder_identity: str | None = Field(default=None, alias="holderIdentity")
    lease_duration_seconds: int | None = Field(default=None, alias="leaseDurationSeconds")
    acquire_time: str | None = Field(default=None, alias="acquireTime")
    renew_time: str | None = Field(default=None, alias="renewTime")
    lease_transitions: int | None = Field(default=None, alias="leaseTransitions")


@dataclass(frozen=True)
class ObservedLease:
    """What a GET returned: the spec and the resourceVersion a write must carry; `spec` None: no Lease."""

    spec: LeaseSpec | None
    resource_version: str | None = None


@dataclass(frozen=True)
class LeaseTimings:
    """Seconds. client-go's defaults are 15/10/2; a trading process wants a standby to take over within a
    few seconds, so shorter (`renew_deadline` < `lease_duration`: the old leader stops first)."""

    lease_duration: int = 4
    renew_deadline: float = 3.0
    retry_period: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(f"lease timings need 0 < retry period ({self.retry_period}) < renew deadline "
                             f"({self.renew_deadline}) < lease duration ({self.lease_duration})")


@dataclass(frozen=True)
class Create:
    spec: LeaseSpec


@dataclass(frozen=True)
class Update:
    spec: LeaseSpec
    resource_version: str | None


@dataclass(frozen=True)
class Follow:
    """Another pod holds a live Lease: nothing to write."""

    holder: str
    expires_in: float


Step = Create | Update | Follow


def micro_time(wall: datetime.datetime) -> str:
    return wall.astimezone(datetime.UTC).strftime(MICRO_TIME)


class Elector:
    """One candidate's view of one Lease. `now` is a monotonic clock; `wall` the wall clock for the record."""

    def __init__(self, identity: str, timings: LeaseTimings) -> None:
        if not identity:
            raise ValueError("a leader election candidate needs an identity (the pod's name)")
        self.identity, self.timings = identity, timings
        self._observed: LeaseSpec | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None

    def plan(self, observed: ObservedLease, now: float, wall: datetime.datetime) -> Step:
        """The write to attempt after reading `observed` at `now`."""
        spec = observed.spec
        if spec != self._observed:  # the record changed: its holder is alive as of now
            self._observed, self._observed_at = spec, now
        stamp = micro_time(wall)
        if spec is None:
            return Create(LeaseSpec(holder_identity=self.identity, lease_duration_seconds=self.timings.lease_duration,
                                    acquire_time=stamp, renew_time=stamp, lease_transitions=0))
        holder = spec.holder_identity or ""
        if holder and holder != self.identity:
            duration = spec.lease_duration_seconds or self.timings.lease_duration
            left = self._observed_at + duration - now
            if left > 0:
                self._renewed_at = None  # someone else holds it: whatever we held is gone
                return Follow(holder, left)
        transitions = spec.lease_transitions or 0
        if holder == self.identity:
            acquired = spec.acquire_time or stamp
        else:  # taking over (expired or released)
            acquired, transitions = stamp, transitions + 1
        return Update(LeaseSpec(holder_identity=self.identity, lease_duration_seconds=self.timings.lease_duration,
                                acquire_time=acquired, renew_time=stamp, lease_transitions=transitions),
                      observed.resource_version)

    def succeeded(self, written: LeaseSpec, sent_at: float) -> None:
        """Our create or update was accepted. Validity counts from when the write was *sent*: the API server
        may have stored it any time after."""
        self._observed, self._observed_at = written, sent_at
        self._renewed_at = sent_at

    def leading(self, now: float) -> bool:
        """Whether this candidate may act as leader at `now` (strictly before the renew deadline)."""
        return self._renewed_at is not None and now - self._renewed_at < self.timings.renew_deadline

    def deadline(self, now: float) -> float | None:
        """When leadership lapses unless renewed (monotonic), or None when not leading at `now`."""
        if self._renewed_at is None or not self.leading(now):
            return None
        return self._renewed_at + self.timings.renew_deadline

    def release(self, observed: ObservedLease, wall: datetime.datetime) -> Update | None:
        """The write that hands the Lease over on a clean stop (client-go's ReleaseOnCancel): holder emptied,
        duration 1 s; None when we do not hold it."""
        self._renewed_at = None
        spec = observed.spec
        if spec is None or spec.holder_identity != self.identity:
            return None
        stamp = micro_time(wall)
        return Update(LeaseSpec(holder_identity=None, lease_duration_seconds=1, acquire_time=stamp,
                                renew_time=stamp, lease_transitions=spec.lease_transitions or 0),
                      observed.resource_version)
