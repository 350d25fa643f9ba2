"""Fencing by time: how long an order may live, and how long a new leader waits before it reads the broker.

Every order goes out with an expiry (`expireAt`, good-till-time) no later than its sender's Lease renew
deadline, and the broker refuses one received after it. A leader that lost its Lease — killed, paused,
partitioned — therefore cannot have an order fill after its deadline as the broker's clock reads it, even one
still on the wire. A new leader knows when that is from the lease timings alone (`fence_wait`), so once it has
waited that long, the broker's fills are all the old leader will ever have: nothing lands that it has not seen.
Pure: times are passed in (a monotonic clock for deadlines, the wall clock for the stamp the broker reads)."""

from __future__ import annotations

from trading_runtime.leadership import LeaseTimings


def fence_wait(timings: LeaseTimings, max_clock_skew: float, read_timeout: float) -> float:
    """Seconds a new leader waits, from the moment it took the Lease, before it reads the broker's fills.

    The old leader's deadline is its last successful renewal's *send* time plus `renew_deadline`. The standby
    first saw that renewal in a read it sent at `s`, answered within `read_timeout`, so the renewal was sent
    before `s + read_timeout`; it takes the Lease no earlier than `s + lease_duration` (the record unchanged
    that long). So at takeover the old deadline is at most `renew_deadline + read_timeout - lease_duration`
    away, and the broker, whose clock may differ from the old leader's by `max_clock_skew`, refuses the old
    leader's orders from at most `max_clock_skew` after it. A released Lease is covered too: its holder waits
    for its own unanswered orders to expire before it releases (`HttpBroker.quiet_at`)."""
    if max_clock_skew < 0 or read_timeout < 0:
        raise ValueError(f"clock skew ({max_clock_skew}) and read timeout ({read_timeout}) cannot be negative")
    return max(0.0, timings.renew_deadline + read_timeout - timings.lease_duration + max_clock_skew)


def order_expiry(now: float, wall: float, deadline: float | None, call_deadline: float) -> float | None:
    """The wall-clock time (epoch seconds) an order sent at monotonic `now` and wall time `wall` expires: the
    sender's lease `deadline` (monotonic; `math.inf` for a runtime alone, without a Lease), and never later than
    the client's own `call_deadline` seconds for the call (a request the client gave up on cannot land later).
    None — leadership lapsed (`deadline` None or past) — means the order may not be sent."""
    if call_deadline <= 0:
        raise ValueError(f"a call's deadline must be positive, not {call_deadline}")
    if deadline is None or deadline <= now:
        return None
    return wall + min(deadline - now, call_deadline)
