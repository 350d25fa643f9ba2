"""Which images the devstack can run, and as what: the trading-runtime image (any registry, any tag or
digest) is the working tree's `python -m trading_runtime`, the training image (tradeops-modelops) its
`python -m modelops`; anything else cannot be pulled here (ErrImagePull)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

_REFERENCE = r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?(?:[a-z0-9._-]+/)*{name}(?::[\w][\w.-]{{0,127}})?" \
             r"(?:@sha256:[0-9a-f]{{64}})?$"
RUNTIME_IMAGES = _REFERENCE.format(name="trading-runtime")
"""The images examples/ and deploy/ use (ghcr.io/tradeops/trading-runtime:0.1.0, the CD's
ghcr.io/<owner>/trading-runtime@sha256:…) and a local build (trading-runtime:dev)."""
MODELOPS_IMAGES = _REFERENCE.format(name="tradeops-modelops")
"""The training image the retraining Job runs (ghcr.io/tradeops/tradeops-modelops:0.1.0, the CD's build)."""


@dataclass(frozen=True)
class Image:
    """What a container of a runnable image is here."""

    entrypoint: tuple[str, ...]
    """The Dockerfile's ENTRYPOINT, in this virtualenv (a container's own `command` replaces it)."""
    cmd: tuple[str, ...]
    """The Dockerfile's CMD: the arguments when the container gives neither `command` nor `args`."""
    runtime: bool
    """The trading runtime: it is given `--metrics-host`/`--spill-path` for the pod's network and /tmp."""


RUNTIME = Image((sys.executable, "-m", "trading_runtime"),
                ("--config", "/etc/tradeops/runtime.yaml", "--switches", "/etc/tradeops/switches.yaml"), runtime=True)
"""deploy/docker/runtime.Dockerfile."""
MODELOPS = Image((sys.executable, "-m", "modelops"), ("train", "--help"), runtime=False)
"""deploy/docker/modelops.Dockerfile."""


def image_for(image: str, runtime_pattern: str = RUNTIME_IMAGES) -> Image | None:
    """What an image runs as here, or None when the devstack has nothing for it."""
    if re.fullmatch(runtime_pattern, image):
        return RUNTIME
    if re.fullmatch(MODELOPS_IMAGES, image):
        return MODELOPS
    return None


def pull_error(image: str) -> str:
    """What the container runtime answers for an image it cannot pull."""
    return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found '
            "(the devstack runs only the trading-runtime and tradeops-modelops images)")
