"""Test-wide settings: hypothesis runs without deadlines (shared 2-core machines), and derandomized in CI so
a run is reproducible; locally it explores new examples each time."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
