"""Pod IPs for processes on one machine: on Linux all of 127.0.0.0/8 is local, so each pod gets its own
loopback address and listens on its container's own port (9102 for every trading pod), as pods do in a
cluster. An address is taken only when the pod's ports are free on it: other stacks on the machine draw
from the same space."""

from __future__ import annotations

import random
import socket


class LoopbackAddresses:
    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)
        self.used: set[str] = set()

    def allocate(self, ports: list[int]) -> str:
        for _ in range(1000):
            pick = self._random.randint
            address = f"127.{pick(1, 254)}.{pick(0, 255)}.{pick(1, 254)}"
            if address not in self.used and all(_free(address, port) for port in ports):
                self.used.add(address)
                return address
        raise RuntimeError("no free loopback address for a pod (is 127.0.0.0/8 routed to lo?)")

    def release(self, address: str) -> None:
        self.used.discard(address)


def _free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True
