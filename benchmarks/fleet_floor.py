"""The floor this machine sets under `fleet_latency.py`: the same feed, rate, phasing and 12 processes, each
runtime replaced by a subscriber that does nothing but note when each frame arrived.

Start: the moment the feed was due to send the frame (its `sent` stamp, as in `fleet_latency.py`). End: the
subscriber holds the frame — before any engine, indicator or decision. Counted over the same frames as
`fleet_latency.py` (the underlying's quotes and trades). Whatever a runtime does, its end-to-end figure
cannot be below this one on the same machine at the same moment.

Three subscribers:
- `websockets`: websockets' asyncio client (reader task, message queue, `recv`), frames decoded with `json`;
- `sansio`: websockets' Sans-I/O client driven by an `asyncio.Protocol`, frames handled in `data_received`
  (how the runtime's feed client reads: trading_runtime/feeds/transport.py);
- `raw`: a plain blocking socket and a hand-written WebSocket frame reader (no asyncio, no library): the
  cheapest consumer Python can be.

    python benchmarks/fleet_floor.py [--consumer raw|sansio|websockets|both] [--symbols 12] [--rate 2000] [--json]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import psutil

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from fleet_latency import MESSAGES_PER_TICK, SYMBOLS, Feed, free_port, percentiles, sched_wait, schedstat

WARMUP_S = 3.0
SUBSCRIBERS_START_S = 3.0
CONNECT_TIMEOUT_S = 60.0
CONSUMERS = ("raw", "sansio", "websockets")


def _decides(frame: dict[str, Any], symbol: str) -> bool:
    """A frame a runtime decides on: a trade, or a quote of the underlying itself (not an option)."""
    return frame.get("type") == "trade" or (frame.get("type") == "quote" and frame.get("instrument") == symbol)


def _raw(url: str, symbol: str, out: pathlib.Path) -> None:
    host, port = url.removeprefix("ws://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(4096)
    buffer = buffer.split(b"\r\n\r\n", 1)[1]
    _send(sock, 0x1, json.dumps({"op": "subscribe", "symbols": [symbol]}).encode())
    records: list[tuple[float, float]] = []
    signal.signal(signal.SIGTERM, lambda *_: _save(out, records))
    while True:
        chunk = sock.recv(65536)
        arrived = time.time()
        if not chunk:
            break
        buffer += chunk
        while len(buffer) >= 2:  # server frames are unmasked; a frame of over 64 KiB does not come from this feed
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, start = struct.unpack(">H", buffer[2:4])[0], 4
            if len(buffer) < start + length:
                break
            opcode, payload, buffer = buffer[0] & 0x0F, buffer[start:start + length], buffer[start + length:]
            if opcode == 0x9:  # the server's keepalive ping
                _send(sock, 0xA, payload)
            elif opcode == 0x1:
                frame = json.loads(payload)
                if "sent" in frame and _decides(frame, symbol):
                    records.append((frame["sent"], arrived))
    _save(out, records)


def _send(sock: socket.socket, opcode: int, payload: bytes) -> None:
    """One short client frame (under 126 bytes), masked as RFC 6455 requires of a client."""
    mask = os.urandom(4)
    sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _websockets(url: str, symbol: str, out: pathlib.Path) -> None:
    import asyncio

    from websockets.asyncio.client import connect

    records: list[tuple[float, float]] = []

    async def listen() -> None:
        async with connect(url, max_size=2**22, compression=None) as connection:
            await connection.send(json.dumps({"op": "subscribe", "symbols": [symbol]}))
            while True:
                raw = await connection.recv()
                arrived = time.time()
                frame = json.loads(raw)
                if "sent" in frame and _decides(frame, symbol):
                    records.append((frame["sent"], arrived))

    signal.signal(signal.SIGTERM, lambda *_: _save(out, records))
    asyncio.run(listen())


def _sansio(url: str, symbol: str, out: pathlib.Path) -> None:
    import asyncio

    from websockets.client import ClientProtocol
    from websockets.frames import Frame, Opcode
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    records: list[tuple[float, float]] = []

    class Reader(asyncio.Protocol):
        def __init__(self) -> None:
            self.ws = ClientProtocol(parse_uri(url), max_size=2**22)
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.ws.send_request(self.ws.connect())
            self._flush()

        def data_received(self, data: bytes) -> None:
            arrived = time.time()
            self.ws.receive_data(data)
            for event in self.ws.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    frame = json.loads(bytes(event.data))
                    if "sent" in frame and _decides(frame, symbol):
                        records.append((frame["sent"], arrived))
                elif isinstance(event, Response):  # the handshake's answer: subscribe
                    self.ws.send_text(json.dumps({"op": "subscribe", "symbols": [symbol]}).encode())
            self._flush()

        def _flush(self) -> None:
            assert self.transport is not None
            for chunk in self.ws.data_to_send():
                if chunk:
                    self.transport.write(chunk)

    async def listen() -> None:
        host, port = url.removeprefix("ws://").split(":")
        await asyncio.get_running_loop().create_connection(Reader, host, int(port))
        await asyncio.Event().wait()

    signal.signal(signal.SIGTERM, lambda *_: _save(out, records))
    asyncio.run(listen())


def _save(out: pathlib.Path, records: list[tuple[float, float]]) -> None:
    out.write_text(json.dumps(records))
    os._exit(0)


def floor(consumer: str, symbols: list[str], rate: float, seconds: float) -> dict[str, Any]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-floor-"))
    port = free_port()
    outs = [workdir / f"{s}.json" for s in symbols]
    # The subscribers start first and retry the feed (as fleet_latency.py's runtimes): a dozen Python processes
    # starting at once would starve the feed's schedule.
    subscribers = [subprocess.Popen([sys.executable, __file__, "--subscribe", consumer, f"ws://127.0.0.1:{port}",
                                     s, str(out)]) for s, out in zip(symbols, outs, strict=True)]
    feed: Feed | None = None
    try:
        time.sleep(SUBSCRIBERS_START_S)
        feed = Feed.start(symbols, rate / (len(symbols) * MESSAGES_PER_TICK), port)
        time.sleep(WARMUP_S)
        pids = [p.pid for p in subscribers]
        cpu_before = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)
        feed_before = sum(psutil.Process(feed.process.pid).cpu_times()[:2])
        sched_before = schedstat(pids), schedstat([feed.process.pid])
        start = time.time()
        time.sleep(seconds)
        end = time.time()
        cpu = sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids) - cpu_before
        feed_cpu = sum(psutil.Process(feed.process.pid).cpu_times()[:2]) - feed_before
        sched_after = schedstat(pids), schedstat([feed.process.pid])
        time.sleep(0.5)  # frames due before `end` arrive
    finally:
        for process in subscribers:
            process.send_signal(signal.SIGTERM)
        for process in subscribers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # a subscriber stuck past its SIGTERM: no process is left behind
                process.kill()
                process.wait()
        if feed is not None:
            feed.stop()
    lags = [arrived - sent for out in outs if out.exists()
            for sent, arrived in json.loads(out.read_text()) if start <= sent < end]
    shutil.rmtree(workdir, ignore_errors=True)
    wall = end - start
    return {"consumer": consumer, "symbols": len(symbols), "processes": len(subscribers),
            "target_rate_msgs_per_s": rate, **percentiles(lags), "frames": len(lags),
            "feed_send_late": feed.late_ms, "feed_slips": feed.slips,
            "cpu_pct": round(100 * cpu / wall, 1), "feed_cpu_pct": round(100 * feed_cpu / wall, 1),
            "sched_wait": {"subscribers": sched_wait(sched_before[0], sched_after[0], wall),
                           "feed": sched_wait(sched_before[1], sched_after[1], wall)},
            "seconds": round(wall, 1), "load_avg_1m": round(os.getloadavg()[0], 1)}


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--subscribe":  # one subscriber process (started by `floor`)
        _, _, consumer, url, symbol, out = sys.argv
        subscriber = {"raw": _raw, "sansio": _sansio, "websockets": _websockets}[consumer]
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                subscriber(url, symbol, pathlib.Path(out))
                return
            except ConnectionRefusedError:  # the feed is not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consumer", choices=[*CONSUMERS, "both"], default="both")
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--rate", type=float, default=2000.0, help="feed messages per second, all symbols")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.symbols <= len(SYMBOLS):
        parser.error(f"--symbols must be 1..{len(SYMBOLS)}")
    consumers = CONSUMERS if args.consumer == "both" else (args.consumer,)
    results = [floor(c, SYMBOLS[:args.symbols], args.rate, args.seconds) for c in consumers]
    for result in results:
        print(json.dumps(result, indent=2 if args.json else None))
    if not all(r["frames"] for r in results):
        sys.exit(1)  # nothing measured


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
