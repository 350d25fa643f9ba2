"""Leases on the emulated API server over HTTP, through the runtime's own aiohttp client: the emulator answers
like a real API server (409 on a stale resourceVersion or a second create), and two candidates never both lead."""

from __future__ import annotations

import asyncio
import time

import pytest

from devstack.processes import EmulatorProcess
from trading_runtime.election import ApiAccess, LeaderElection, LeaseApi, LeaseConflictError
from trading_runtime.leadership import LeaseSpec, LeaseTimings, Update

TIMINGS = LeaseTimings(lease_duration=2, renew_deadline=1.5, retry_period=0.2)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    process = EmulatorProcess(tmp_path_factory.mktemp("leases")).start()
    try:
        yield process
    finally:
        process.stop()


def api_for(emulator) -> LeaseApi:
    return LeaseApi(ApiAccess(emulator.url, "default"))


async def test_a_second_create_and_a_stale_update_are_409_conflicts(emulator):
    api = api_for(emulator)
    try:
        created = await api.create("conflicts", LeaseSpec(holder_identity="a", lease_duration_seconds=5))
        assert created.resource_version
        with pytest.raises(LeaseConflictError):
            await api.create("conflicts", LeaseSpec(holder_identity="b"))
        renewed = await api.update("conflicts", Update(LeaseSpec(holder_identity="a", lease_transitions=0),
                                                        created.resource_version))
        assert renewed.resource_version != created.resource_version
        with pytest.raises(LeaseConflictError):  # planned from the version before the renewal
            await api.update("conflicts", Update(LeaseSpec(holder_identity="b"), created.resource_version))
        current = await api.get("conflicts")
        assert current.spec is not None
        assert current.spec.holder_identity == "a"
        assert current.resource_version == renewed.resource_version
        assert (await api.get("absent")).spec is None
    finally:
        await api.close()


async def test_two_candidates_never_lead_together_and_a_release_hands_over_at_once(emulator):
    timeline: list[tuple[float, str, bool]] = []
    elections = {name: LeaderElection(api_for(emulator), "handover", name, TIMINGS,
                                      lambda leading, name=name: timeline.append((time.monotonic(), name, leading)))
                 for name in ("a", "b")}
    stops = {name: asyncio.Event() for name in elections}
    tasks = {name: asyncio.create_task(e.run(stops[name])) for name, e in elections.items()}
    try:
        async def one_leader() -> str:
            while True:
                leaders = [n for n, e in elections.items() if e.leading]
                assert len(leaders) <= 1, leaders
                if leaders:
                    return leaders[0]
                await asyncio.sleep(0.02)

        first = await asyncio.wait_for(one_leader(), 10)
        other = "b" if first == "a" else "a"
        for _ in range(50):  # a few renewals: leadership stays put
            assert elections[first].leading
            assert not elections[other].leading
            await asyncio.sleep(0.02)
        stops[first].set()
        await tasks[first]
        released = time.monotonic()
        await elections[first].release()
        await asyncio.wait_for(one_leader(), 10)
        assert elections[other].leading
        handover = time.monotonic() - released
        assert handover < TIMINGS.lease_duration  # released: no waiting out the lease
        lease = await elections[other].api.get("handover")
        assert lease.spec is not None
        assert lease.spec.holder_identity == other
        assert lease.spec.lease_transitions == 1
    finally:
        for name, stop in stops.items():
            stop.set()
            await tasks[name]
            await elections[name].api.close()
    # The recorded changes: first leads, stops, then the other leads; never both at once.
    leading = set()
    for _, name, on in timeline:
        leading = leading | {name} if on else leading - {name}
        assert len(leading) <= 1
