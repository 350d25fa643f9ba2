"""The feed's WebSocket connection: an `asyncio.Protocol` driving websockets' Sans-I/O client.

Frames are handed on from `data_received` itself, all the frames of one read at once with the instant the read
arrived: no reader task, message queue, future or timer stands between the socket and the handler (each costs a
wake-up on cold caches). Pings are answered and close frames echoed as the bytes come in; a connection closing
(our close, the peer's, a protocol error) is given `close_timeout` for the peer to end the TCP connection, then
aborted."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import State
from websockets.uri import parse_uri

MAX_SIZE = 2**22
"""Largest message accepted (4 MiB: a whole option chain's snapshot fits)."""

Deliver = Callable[[list[bytes], int, float], None]
"""Receives the messages of one read, the `perf_counter_ns` and the wall time when the read arrived."""


class FeedConnection(asyncio.Protocol):
    """One WebSocket connection to `url`: `await open()`, then `send_text`, `close`, and `closed` (a future
    done once the TCP connection is gone; `close_exc` then says how it closed)."""

    def __init__(self, url: str, deliver: Deliver, close_timeout: float = 1.0) -> None:
        # No extensions offered: no permessage-deflate, inflating a frame of a few hundred bytes only delays it.
        self.ws = ClientProtocol(parse_uri(url), max_size=MAX_SIZE)
        self.deliver, self.close_timeout = deliver, close_timeout
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._fragments: list[bytes] = []
        self._abort_at: asyncio.TimerHandle | None = None

    async def open(self) -> None:
        """Connect and complete the opening handshake (TLS for `wss://`); raises `OSError` or websockets'
        `InvalidHandshake`. Cancelled (a timeout), the connection is aborted."""
        uri = self.ws.uri
        context = ssl.create_default_context() if uri.secure else None
        try:
            await asyncio.get_running_loop().create_connection(
                lambda: self, uri.host, uri.port, ssl=context, server_hostname=uri.host if context else None)
            await self.opened
        except BaseException:
            self.abort()
            raise

    @property
    def is_open(self) -> bool:
        return self.ws.state is State.OPEN

    @property
    def close_exc(self) -> ConnectionClosed:
        return self.ws.close_exc

    def send_text(self, text: str) -> None:
        self.ws.send_text(text.encode())
        self._flush()

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (no-op when it has started): `closed` is done within `close_timeout`."""
        if self.is_open:
            self.ws.send_close(code, reason)
            self._flush()
        self.resume_reading()  # the peer's side of the close must be read

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # asyncio.Protocol ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = self.ws.connect()
        request.headers["User-Agent"] = USER_AGENT
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        received, wall = time.perf_counter_ns(), time.time()
        self.ws.receive_data(data)
        messages: list[bytes] = []
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY or event.opcode is Opcode.CONT:
                    self._fragments.append(bytes(event.data))
                    if event.fin:
                        messages.append(self._fragments[0] if len(self._fragments) == 1 else
                                        b"".join(self._fragments))
                        self._fragments = []
            elif isinstance(event, Response) and self.ws.handshake_exc is None and not self.opened.done():
                self.opened.set_result(None)
        self._settle_handshake()
        self._flush()  # pongs and close replies go out before the messages are handled
        if messages:
            self.deliver(messages, received, wall)

    def eof_received(self) -> None:
        self.ws.receive_eof()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()  # idempotent: the state is CLOSED from here
        if self._abort_at is not None:
            self._abort_at.cancel()
        self._settle_handshake(exc)
        if not self.closed.done():
            self.closed.set_result(None)

    # -----------------------------------------------------------------------------------------------------

    def _settle_handshake(self, lost: Exception | None = None) -> None:
        if self.opened.done():
            return
        if self.ws.handshake_exc is not None:
            self.opened.set_exception(self.ws.handshake_exc)
        elif self.ws.state is State.CLOSED:
            self.opened.set_exception(lost or ConnectionResetError("connection lost during the handshake"))

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()
            else:  # TLS cannot half-close
                transport.close()
        if self.ws.close_expected() and self._abort_at is None:
            self._abort_at = asyncio.get_running_loop().call_later(self.close_timeout, transport.abort)
