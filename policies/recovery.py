"""Recovery objectives (RTO/RPO per drill) and backup retention: a `RecoveryPolicy` document among the
policies (the packaged default is `policies/defaults/recovery.yaml`)."""

from __future__ import annotations

import pathlib

from policies.loader import PolicyLoadError, default_policies, load_texts
from policies.models import Objective, RecoveryPolicy, Retention

DEFAULT_NAME = "default"

__all__ = ["Objective", "RecoveryPolicy", "Retention", "load_recovery_policy"]


def load_recovery_policy(path: pathlib.Path | None = None) -> RecoveryPolicy:
    """The `default` RecoveryPolicy of a policy file (or the only one in it), or the packaged default."""
    if path is None:
        return default_policies().recovery[DEFAULT_NAME]
    found, errors = load_texts({str(path): path.read_text()})
    if errors:
        raise PolicyLoadError(errors)
    if DEFAULT_NAME in found.recovery:
        return found.recovery[DEFAULT_NAME]
    if len(found.recovery) == 1:
        return next(iter(found.recovery.values()))
    raise ValueError(f"{path}: no RecoveryPolicy named {DEFAULT_NAME!r}")
