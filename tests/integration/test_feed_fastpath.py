"""The feed client's transport against scripted WebSocket servers on real sockets: frames handled in
`data_received` (the fast path), the ordered drain behind an awaiting handler, handler errors, pings,
backpressure, staleness and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import pathlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from trading_runtime.feeds.client import FeedClient, Message
from trading_runtime.feeds.transport import FeedConnection

SNAPSHOT = {"type": "snapshot", "symbol": "SPY", "seq": 0, "ts": 1.0, "options": [],
            "underlying": {"instrument": "SPY", "bid": 499.98, "ask": 500.02, "bidSize": 100.0, "askSize": 100.0}}

Script = Callable[[ServerConnection], Awaitable[None]]


def quote(seq: int) -> str:
    return json.dumps({"type": "quote", "symbol": "SPY", "seq": seq, "ts": 1.0 + seq / 1000, "instrument": "SPY",
                       "bid": 500.0, "ask": 500.01, "bidSize": 10.0, "askSize": 10.0})


def burst(connection: ServerConnection, first: int, count: int) -> None:
    """Quotes `first`…`first+count-1` written to the socket at once (one write: the client reads many per read)."""
    connection.transport.write(b"".join(Frame(Opcode.TEXT, quote(seq).encode()).serialize(mask=False)
                                        for seq in range(first, first + count)))


@contextlib.asynccontextmanager
async def scripted(script: Script, **options: object) -> AsyncIterator[tuple[str, list[ServerConnection]]]:
    """A feed that waits for the subscription, sends the snapshot (seq 0), then runs `script`; yields its URL and
    the connections it served."""
    served: list[ServerConnection] = []

    async def handler(connection: ServerConnection) -> None:
        served.append(connection)
        await connection.recv()
        await connection.send(json.dumps(SNAPSHOT))
        await script(connection)
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None, **options) as server:  # type: ignore[arg-type]
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", served


class Seen:
    """A handler recording each message's seq and whether it was handled in `data_received` (no task runs
    there) or in the drain task; `slow` makes it await for the messages it selects."""

    def __init__(self, slow: Callable[[int], bool] = lambda seq: False, fail_at: int | None = None) -> None:
        self.seqs: list[int] = []
        self.on_fast_path: list[bool] = []
        self.slow, self.fail_at = slow, fail_at

    def __call__(self, message: Message) -> Awaitable[None] | None:
        seq = getattr(message, "seq", -1)
        self.seqs.append(seq)
        self.on_fast_path.append(asyncio.current_task() is None)
        if self.slow(seq):
            return self._later(seq)
        if seq == self.fail_at:
            raise RuntimeError(f"handler failed at {seq}")
        return None

    async def _later(self, seq: int) -> None:
        await asyncio.sleep(0)
        if seq == self.fail_at:
            raise RuntimeError(f"handler failed at {seq}")


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(client: FeedClient) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_the_frames_of_one_read_are_handled_in_order_in_data_received():
    stamps: list[int] = []
    seen = Seen()

    def handler(message: Message) -> None:
        seen(message)
        stamps.append(client.frame_times[0])

    async def script(connection: ServerConnection) -> None:
        burst(connection, 1, 50)

    async with scripted(script) as (url, _):
        client = FeedClient(url, ["SPY"], handler, seed=0)
        async with running(client):
            await until(lambda: len(seen.seqs) == 51)
    assert seen.seqs == list(range(51))
    assert all(seen.on_fast_path)
    assert len(set(stamps[1:])) < 50, "the burst's frames share their read's arrival stamp"
    assert client.stats.messages == 51


async def test_an_awaiting_handler_drains_in_order_and_the_stream_returns_to_the_fast_path():
    seen = Seen(slow=lambda seq: seq <= 300)

    async def script(connection: ServerConnection) -> None:
        for first in range(1, 401, 100):  # bursts of 100 arrive while the drain awaits
            burst(connection, first, 100)
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.3)  # the drain has emptied the queue
        burst(connection, 401, 100)

    async with scripted(script) as (url, _):
        client = FeedClient(url, ["SPY"], seen, seed=0)
        async with running(client):
            await until(lambda: len(seen.seqs) == 501)
    assert seen.seqs == list(range(501))
    assert not all(seen.on_fast_path[1:301]), "the awaiting handler moved the stream to the drain"
    assert all(seen.on_fast_path[401:]), "back on the fast path once the drain emptied"
    assert client.stats.reconnects == 0


@pytest.mark.parametrize("slow", [False, True], ids=["fast-path", "drain"])
async def test_a_handler_that_raises_ends_the_connection_and_run_raises_it(slow):
    seen = Seen(slow=lambda seq: slow, fail_at=5)

    async def script(connection: ServerConnection) -> None:
        burst(connection, 1, 20)

    async with scripted(script) as (url, served):
        client = FeedClient(url, ["SPY"], seen, seed=0)
        with pytest.raises(RuntimeError, match="handler failed at 5"):
            await asyncio.wait_for(client.run(asyncio.Event()), 5)
        await served[0].wait_closed()
    assert seen.seqs == [0, 1, 2, 3, 4, 5], "nothing is handled after the failure"
    assert served[0].close_code == 1011
    assert not client.connected.is_set()


async def test_the_servers_pings_are_answered_and_the_connection_outlives_its_ping_timeout():
    seen = Seen()

    async def script(connection: ServerConnection) -> None:
        for seq in range(1, 16):
            await asyncio.sleep(0.1)
            await connection.send(quote(seq))

    async with scripted(script, ping_interval=0.05, ping_timeout=0.1) as (url, served):
        client = FeedClient(url, ["SPY"], seen, seed=0)
        async with running(client):
            await until(lambda: len(seen.seqs) == 16)
            assert served[0].latency > 0, "a pong was received"
    assert client.stats.reconnects == 0
    assert len(served) == 1


async def test_a_long_queue_pauses_reading_and_resumes_it_without_losing_a_frame(monkeypatch):
    calls: list[str] = []
    pause, resume = FeedConnection.pause_reading, FeedConnection.resume_reading

    def paused(self: FeedConnection) -> None:
        calls.append("pause")
        pause(self)

    def resumed(self: FeedConnection) -> None:
        calls.append("resume")
        resume(self)

    monkeypatch.setattr(FeedConnection, "pause_reading", paused)
    monkeypatch.setattr(FeedConnection, "resume_reading", resumed)
    seen = Seen(slow=lambda seq: True)
    total = 25_000

    async def script(connection: ServerConnection) -> None:
        for first in range(1, total, 1000):
            burst(connection, first, min(1000, total - first))
            await asyncio.sleep(0)

    async with scripted(script) as (url, _):
        client = FeedClient(url, ["SPY"], seen, seed=0, stale_after=30)
        async with running(client):
            await until(lambda: len(seen.seqs) == total, within=60)
            streamed = list(calls)  # (the stop's close resumes reading too)
    assert seen.seqs == list(range(total))
    assert streamed[:2] == ["pause", "resume"]
    assert streamed.count("pause") == streamed.count("resume")
    assert client.stats.reconnects == 0


async def test_a_feed_that_falls_silent_is_stale_only_once_it_is_silent():
    seen = Seen()

    async def script(connection: ServerConnection) -> None:
        for seq in range(1, 9):  # 0.8 s of frames: longer than stale_after, never silent for it
            await asyncio.sleep(0.1)
            await connection.send(quote(seq))

    async with scripted(script) as (url, served):
        client = FeedClient(url, ["SPY"], seen, seed=0, stale_after=0.3, backoff_base=0.05)
        async with running(client):
            await until(lambda: len(seen.seqs) == 9)
            assert client.stats.stale_timeouts == 0
            await until(lambda: client.stats.stale_timeouts == 1)
            await until(lambda: len(served) >= 2)
    assert client.stats.reconnects >= 1
    assert served[0].close_code == 1000, "a stale connection is closed with a close frame"


async def test_a_stop_closes_the_connection_cleanly_and_run_returns_at_once():
    seen = Seen()

    async def script(connection: ServerConnection) -> None:
        for seq in range(1, 1000):
            await asyncio.sleep(0.01)
            await connection.send(quote(seq))

    async with scripted(script) as (url, served):
        client = FeedClient(url, ["SPY"], seen, seed=0)
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        await until(lambda: len(seen.seqs) >= 10)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        elapsed = time.monotonic() - started
        await served[0].wait_closed()
    assert elapsed < 0.5
    assert served[0].close_code == 1000
    assert client.stats.reconnects == 0
    assert not client.connected.is_set()


async def test_a_stop_while_reading_is_paused_still_closes_cleanly_and_drops_the_queue(monkeypatch):
    paused = asyncio.Event()
    pause = FeedConnection.pause_reading

    def pausing(self: FeedConnection) -> None:
        paused.set()
        pause(self)

    monkeypatch.setattr(FeedConnection, "pause_reading", pausing)

    class Slow(Seen):
        async def _later(self, seq: int) -> None:
            await asyncio.sleep(0.005)

    seen = Slow(slow=lambda seq: True)

    async def script(connection: ServerConnection) -> None:
        for first in range(1, 20_000, 1000):
            burst(connection, first, 1000)
            await asyncio.sleep(0)

    async with scripted(script) as (url, served):
        client = FeedClient(url, ["SPY"], seen, seed=0, stale_after=30)
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(paused.wait(), 10)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        elapsed = time.monotonic() - started
        await served[0].wait_closed()
    assert elapsed < 0.5, "the feed's close reply was left unread while reading was paused"
    assert served[0].close_code == 1000
    assert seen.seqs == list(range(len(seen.seqs)))
    assert len(seen.seqs) < 20_000


async def test_a_rejected_handshake_is_logged_and_retried(caplog):
    def refuse(connection: ServerConnection, request: object) -> object:
        return connection.respond(503, "not yet\n")

    async with serve(lambda connection: connection.wait_closed(), "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        client = FeedClient(f"ws://127.0.0.1:{port}", ["SPY"], Seen(), seed=0, backoff_base=0.02, backoff_cap=0.05)
        async with running(client):
            await until(lambda: client.stats.reconnects >= 2)
            assert not client.connected.is_set()
    assert "server rejected WebSocket connection: HTTP 503" in caplog.text


async def test_a_handshake_that_never_completes_times_out(monkeypatch):
    monkeypatch.setattr("trading_runtime.feeds.client.OPEN_TIMEOUT", 0.2)
    accepted: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # holds the TCP connection, never answers the handshake

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        client = FeedClient(f"ws://127.0.0.1:{port}", ["SPY"], Seen(), seed=0, backoff_base=0.02, backoff_cap=0.05)
        async with running(client):
            await until(lambda: client.stats.reconnects >= 2, within=5)
        for writer in accepted:
            writer.close()
    assert len(accepted) >= 2


async def test_a_fragmented_message_is_handled_whole():
    seen = Seen()

    async def script(connection: ServerConnection) -> None:
        text = quote(1)
        await connection.send([text[:10], text[10:40], text[40:]])  # three frames, one message
        await connection.send(quote(2))

    async with scripted(script) as (url, _):
        client = FeedClient(url, ["SPY"], seen, seed=0)
        async with running(client):
            await until(lambda: len(seen.seqs) == 3)
    assert seen.seqs == [0, 1, 2]
    assert client.stats.malformed == 0


@pytest.fixture
def certificate(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed key and certificate for localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


async def test_wss_is_served_over_tls_with_the_default_context(certificate, monkeypatch):
    key, cert = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    default_context = ssl.create_default_context
    trusted: list[ssl.SSLContext] = []

    def trusting(*args: object, **kwargs: object) -> ssl.SSLContext:  # the default context, trusting the test CA
        context = default_context(cafile=str(cert))
        trusted.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    seen = Seen()

    async def script(connection: ServerConnection) -> None:
        for seq in range(1, 6):
            await connection.send(quote(seq))

    async with scripted(script, ssl=server_context) as (url, _):
        client = FeedClient(url.replace("ws://127.0.0.1", "wss://localhost"), ["SPY"], seen, seed=0)
        async with running(client):
            await until(lambda: len(seen.seqs) == 6)
    assert seen.seqs == list(range(6))
    assert trusted, "the client made its TLS context"
