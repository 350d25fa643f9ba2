"""Waking the event loop's own thread at a monotonic instant, to the tens of microseconds: a Linux timerfd
(armed with an absolute CLOCK_MONOTONIC time, the clock `time.monotonic` reads) watched by the loop like a
socket. asyncio's timers wake on the millisecond grain of epoll's timeout; a thread
sleeping on the nanosecond clock and handing the wake-up to the loop costs a second thread's wake-up, an
eventfd/self-pipe write and a GIL hand-off every time. `timer()` gives None where there is no timerfd."""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import sys
import time

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class PreciseTimer:
    """`await timer.until(at)`: one waiter at a time (the feed's producer)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        fd = int(libc.timerfd_create(CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd, self._loop = fd, loop
        self._spec = _Itimerspec()
        self._waiter: asyncio.Future[None] | None = None
        loop.add_reader(fd, self._fired)

    async def until(self, at: float) -> None:
        """Return once `time.monotonic()` has reached `at` (at once when it has)."""
        if at <= time.monotonic():
            return
        seconds = math.floor(at)
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = seconds, int((at - seconds) * 1e9)
        if self._settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _fired(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:  # re-armed after it fired: nothing to read
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        self._loop.remove_reader(self.fd)
        os.close(self.fd)


def timer(loop: asyncio.AbstractEventLoop) -> PreciseTimer | None:
    """A timerfd timer on Linux; None elsewhere (or where the call is refused, e.g. by a seccomp profile)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return PreciseTimer(loop)
    except (OSError, AttributeError):
        return None
