"""Leases on the emulated API server over HTTP, through the runtime's own aiohttp client: the emulator answers
like a real API server (409 on a stale resourceVersion or a second create), and two candidates never both lead."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

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


async def test_a_leader_whose_api_hangs_stops_leading_at_its_renew_deadline():
    """The API server stops answering (a partition): the leader gives up leadership at the renew deadline
    counted from its last successful renewal — while its request still hangs — before any standby could take
    over (lease duration). A real HTTP server that holds a Lease and then stops answering."""
    state = {"rv": 0, "spec": None, "hang": False}
    answer_again = asyncio.Event()

    async def lease(request: web.Request) -> web.StreamResponse:
        if state["hang"]:
            await answer_again.wait()
        if request.method == "GET" and state["spec"] is None:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        if request.method in ("POST", "PUT"):
            body = await request.json()
            state["rv"] += 1
            state["spec"] = body["spec"]
        return web.json_response({"metadata": {"resourceVersion": str(state["rv"])}, "spec": state["spec"]},
                                 status=201 if request.method == "POST" else 200)

    app = web.Application()
    app.router.add_route("*", "/apis/coordination.k8s.io/v1/namespaces/default/leases", lease)
    app.router.add_route("*", "/apis/coordination.k8s.io/v1/namespaces/default/leases/{name}", lease)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    renewed: list[float] = []
    gained, lost = asyncio.Event(), asyncio.Event()
    stopped_at: list[float] = []

    def listener(leading: bool) -> None:
        if leading:
            gained.set()
        else:
            stopped_at.append(time.monotonic())
            lost.set()

    election = LeaderElection(LeaseApi(ApiAccess(f"http://127.0.0.1:{port}", "default"), timeout=30), "hang", "a",
                              TIMINGS, listener)
    real_succeeded = election.elector.succeeded

    def succeeded(spec: LeaseSpec, sent_at: float) -> None:  # records when each renewal was sent
        renewed.append(sent_at)
        real_succeeded(spec, sent_at)

    election.elector.succeeded = succeeded  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(election.run(stop))
    try:
        await asyncio.wait_for(gained.wait(), 10)
        await asyncio.sleep(0.5)  # a few renewals
        state["hang"] = True
        await asyncio.wait_for(lost.wait(), 10)
        stopped, last = stopped_at[0], renewed[-1]
        assert len(renewed) >= 2
        assert stopped - last >= TIMINGS.renew_deadline - 0.05  # not before the deadline...
        assert stopped - last < TIMINGS.lease_duration  # ...and before any standby may take over
        assert election.failures >= 1  # the hung round was cut off, not waited out
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        answer_again.set()
        await election.api.close()
        await runner.cleanup()
