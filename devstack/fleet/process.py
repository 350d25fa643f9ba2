"""A container as a host process: started with the pod's environment and its stdout/stderr in a log file,
tied to its parent (`setpriv --pdeathsig`: if the devstack dies, so do its pods), stopped with SIGTERM then
SIGKILL, its memory read from /proc (psutil) for the cgroup-style limit."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import subprocess
import time
from dataclasses import dataclass

import psutil

from devstack.processes import tied_to_parent

_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
          "Ti": 2**40}


def memory_bytes(quantity: str | int | None) -> int | None:
    """A memory quantity (`512Mi`, `1G`, `268435456`) in bytes."""
    if quantity is None:
        return None
    text = str(quantity)
    number = text.rstrip("kKMGTi")
    unit = text[len(number):]
    if unit not in _UNITS:
        raise ValueError(f"not a memory quantity: {text!r}")
    return int(float(number) * _UNITS[unit])


@dataclass
class ContainerProcess:
    popen: subprocess.Popen[bytes]
    started: float
    log: pathlib.Path
    oom_killed: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """The exit code as a container runtime reports it (128 + signal for a signal)."""
        code = self.popen.poll()
        if code is None:
            return None
        return 128 - code if code < 0 else code

    def rss(self) -> int:
        """Resident memory of the process and its children (what counts against a memory limit)."""
        try:
            process = psutil.Process(self.popen.pid)
            return int(sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]))
        except psutil.Error:
            return 0

    def oom_kill(self) -> None:
        """What the kernel does to a cgroup over its limit: SIGKILL."""
        self.oom_killed = True
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, max(grace_seconds, 0.0))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.popen.wait)

    def kill_now(self) -> None:
        """SIGKILL and reap (the kubelet itself is going away)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)


def start(command: list[str], env: dict[str, str], log: pathlib.Path, cwd: pathlib.Path) -> ContainerProcess:
    """Start a container's process (the parent-death signal makes an orphan exit with its kubelet)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(tied_to_parent(command), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                 stdin=subprocess.DEVNULL)
    return ContainerProcess(popen, time.time(), log)


def tail(log: pathlib.Path, lines: int = 80, limit: int = 2048) -> str:
    """The end of a log, as kubelet's FallbackToLogsOnError takes it (80 lines, 2048 bytes)."""
    try:
        text = log.read_bytes()[-64 * 1024:].decode(errors="replace")
    except OSError:
        return ""
    kept = "\n".join(text.splitlines()[-lines:])
    return kept[-limit:]
