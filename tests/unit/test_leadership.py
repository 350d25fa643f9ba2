"""The Lease state machine (trading_runtime/leadership.py) on a fake clock: acquire, renew, expiry, takeover,
release, and the old leader stopping before a new one may start."""

from __future__ import annotations

import datetime

import pytest

from trading_runtime.leadership import (
    Create,
    Elector,
    Follow,
    LeaseSpec,
    LeaseTimings,
    ObservedLease,
    Update,
    micro_time,
)

T = LeaseTimings(lease_duration=4, renew_deadline=3.0, retry_period=0.5)
WALL = datetime.datetime(2026, 12, 6, 9, 0, 0, 123456, tzinfo=datetime.UTC)


def held(holder: str | None, rv: str = "7", transitions: int = 2, duration: int = 4) -> ObservedLease:
    stamp = micro_time(WALL - datetime.timedelta(hours=1))
    return ObservedLease(LeaseSpec(holder_identity=holder, lease_duration_seconds=duration, acquire_time=stamp,
                                   renew_time=stamp, lease_transitions=transitions), rv)


def test_no_lease_is_created_with_us_as_holder_and_no_transitions():
    step = Elector("pod-a", T).plan(ObservedLease(None), 0.0, WALL)
    assert isinstance(step, Create)
    assert step.spec == LeaseSpec(holder_identity="pod-a", lease_duration_seconds=4,
                                  acquire_time="2026-12-06T09:00:00.123456Z",
                                  renew_time="2026-12-06T09:00:00.123456Z", lease_transitions=0)


def test_renewing_our_own_lease_keeps_acquire_time_and_transitions():
    observed = held("pod-a", rv="9", transitions=3)
    step = Elector("pod-a", T).plan(observed, 10.0, WALL)
    assert isinstance(step, Update)
    assert step.resource_version == "9"  # the optimistic lock: the version it was planned from
    assert step.spec.acquire_time == observed.spec.acquire_time
    assert step.spec.lease_transitions == 3
    assert step.spec.renew_time == micro_time(WALL)


@pytest.mark.parametrize(("seen_unchanged_for", "expected"), [
    (0.0, Follow), (3.99, Follow), (4.0, Update), (30.0, Update),
], ids=["just-seen", "just-before-expiry", "at-expiry", "long-dead"])
def test_another_holders_lease_is_taken_only_after_it_stayed_unchanged_for_its_duration(seen_unchanged_for, expected):
    elector = Elector("pod-b", T)
    observed = held("pod-a")
    first = elector.plan(observed, 100.0, WALL)
    assert isinstance(first, Follow)
    assert first.holder == "pod-a"
    step = elector.plan(observed, 100.0 + seen_unchanged_for, WALL)
    assert isinstance(step, expected)
    if isinstance(step, Update):
        assert step.spec.holder_identity == "pod-b"
        assert step.spec.lease_transitions == 3
        assert step.spec.acquire_time == micro_time(WALL)


def test_a_renewal_by_the_holder_restarts_the_standbys_wait():
    elector = Elector("pod-b", T)
    elector.plan(held("pod-a", rv="1"), 0.0, WALL)
    renewed = ObservedLease(held("pod-a").spec.model_copy(update={"renew_time": micro_time(WALL)}), "2")
    assert isinstance(elector.plan(renewed, 3.5, WALL), Follow)
    assert isinstance(elector.plan(renewed, 7.4, WALL), Follow)  # 3.9 s since the change was seen
    assert isinstance(elector.plan(renewed, 7.5, WALL), Update)


def test_the_holders_own_clock_is_not_trusted():
    """A renewTime far in the past (skewed clock on the holder's node) does not make the lease expired."""
    elector = Elector("pod-b", T)
    assert isinstance(elector.plan(held("pod-a"), 0.0, WALL + datetime.timedelta(days=1)), Follow)


def test_a_released_lease_is_taken_at_once():
    step = Elector("pod-b", T).plan(held(None, transitions=5, duration=1), 0.0, WALL)
    assert isinstance(step, Update)
    assert step.spec.holder_identity == "pod-b"
    assert step.spec.lease_transitions == 6


@pytest.mark.parametrize(("since_write", "leading"), [
    (0.0, True), (2.99, True), (3.0, False), (3.5, False),
], ids=["written", "before-deadline", "at-deadline", "after-deadline"])
def test_the_leader_leads_until_the_renew_deadline_counted_from_when_it_sent_the_write(since_write, leading):
    elector = Elector("pod-a", T)
    step = elector.plan(ObservedLease(None), 50.0, WALL)
    assert isinstance(step, Create)
    assert not elector.leading(50.0)  # not before the API server accepted it
    elector.succeeded(step.spec, 50.0)
    assert elector.leading(50.0 + since_write) is leading
    assert (elector.deadline(50.0 + since_write) is not None) is leading


def test_the_old_leader_stops_before_a_standby_may_take_over():
    """Leader A's last successful renewal was sent at t=10 and then the API became unreachable for A. B saw
    that renewal at t=10.2 at the earliest. A stops leading at 13; B may take over at 14.2."""
    a, b = Elector("pod-a", T), Elector("pod-b", T)
    a.succeeded(LeaseSpec(holder_identity="pod-a", lease_duration_seconds=4, lease_transitions=0), 10.0)
    observed = held("pod-a", transitions=0)
    b.plan(observed, 10.2, WALL)
    a_stops = next(t / 100 for t in range(1000, 3000) if not a.leading(t / 100))
    b_starts = next(t / 100 for t in range(1000, 3000) if isinstance(b.plan(observed, t / 100, WALL), Update))
    assert a_stops == 13.0
    assert b_starts == 14.2
    assert a_stops < b_starts


def test_losing_the_lease_to_another_holder_ends_leadership_at_once():
    elector = Elector("pod-a", T)
    elector.succeeded(LeaseSpec(holder_identity="pod-a", lease_duration_seconds=4), 0.0)
    assert elector.leading(1.0)
    assert isinstance(elector.plan(held("pod-b", rv="3"), 1.0, WALL), Follow)
    assert not elector.leading(1.0)


def test_release_empties_the_holder_and_keeps_the_transitions():
    elector = Elector("pod-a", T)
    elector.succeeded(LeaseSpec(holder_identity="pod-a"), 0.0)
    update = elector.release(held("pod-a", rv="12", transitions=4), WALL)
    assert update is not None
    assert update.resource_version == "12"
    assert update.spec.holder_identity is None
    assert update.spec.lease_duration_seconds == 1
    assert update.spec.lease_transitions == 4
    assert not elector.leading(0.1)


@pytest.mark.parametrize("observed", [ObservedLease(None), held("pod-b")], ids=["no-lease", "someone-elses"])
def test_release_writes_nothing_when_we_do_not_hold_it(observed):
    assert Elector("pod-a", T).release(observed, WALL) is None


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(4, 4.0, 0.5), (4, 3.0, 3.0), (4, 5.0, 1.0), (4, 3.0, 0)],
                         ids=["deadline-equals-duration", "retry-equals-deadline", "deadline-past-duration",
                              "no-retry-period"])
def test_timings_that_could_let_two_leaders_overlap_are_refused(duration, deadline, retry):
    with pytest.raises(ValueError, match="lease timings"):
        LeaseTimings(duration, deadline, retry)


def test_a_candidate_needs_an_identity():
    with pytest.raises(ValueError, match="identity"):
        Elector("", T)
