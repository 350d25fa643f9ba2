"""Which images the devstack can run: the trading-runtime image (any registry, any tag or digest) is the
working tree's `python -m trading_runtime`; anything else cannot be pulled here (ErrImagePull)."""

from __future__ import annotations

import re
import sys

RUNTIME_IMAGES = r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?(?:[a-z0-9._-]+/)*trading-runtime(?::[\w][\w.-]{0,127})?" \
                 r"(?:@sha256:[0-9a-f]{64})?$"
"""The images examples/ and deploy/ use (ghcr.io/tradeops/trading-runtime:0.1.0, the CD's
ghcr.io/<owner>/trading-runtime@sha256:…) and a local build (trading-runtime:dev)."""
ENTRYPOINT = (sys.executable, "-m", "trading_runtime")
"""deploy/docker/runtime.Dockerfile's ENTRYPOINT, in this virtualenv."""


def entrypoint(image: str, pattern: str = RUNTIME_IMAGES) -> list[str] | None:
    """The command an image runs here, or None when the devstack has nothing for it."""
    return list(ENTRYPOINT) if re.fullmatch(pattern, image) else None


def pull_error(image: str) -> str:
    """What the container runtime answers for an image it cannot pull."""
    return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found '
            "(the devstack runs only the trading-runtime image)")
