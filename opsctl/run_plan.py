"""How many measurements a TradingSymbol's analysis run takes, and how far apart: its analysis policy (as
the operator loads it: TRADEOPS_POLICIES_DIR on top of the shipped policies) with the symbol's
`spec.rollout` overrides. Loads the policy and API models, so only the verbs that show progress import it."""

from __future__ import annotations

import os
import pathlib

from opsctl.kube import Obj
from opsctl.progress import RunPlan


def run_plan(ts: Obj) -> RunPlan | None:
    """The run plan of a TradingSymbol; None when its spec or its policy does not load here (the progress
    then shows no step count nor time left rather than a guess)."""
    from pydantic import ValidationError

    from policies.loader import PolicyLoadError, default_policies, load_layered
    from policies.models import AnalysisPolicySpec
    from trading_operator.analysis import settings_for
    from trading_operator.api import TradingSymbolSpec

    try:
        spec = TradingSymbolSpec.model_validate(ts.get("spec") or {})
        directory = os.environ.get("TRADEOPS_POLICIES_DIR")
        policies = load_layered(pathlib.Path(directory)) if directory else default_policies()
        policy = policies.get(AnalysisPolicySpec, spec.policies.analysis)
    except (ValidationError, PolicyLoadError, KeyError, OSError):
        return None
    settings = settings_for(policy, spec.rollout)
    return RunPlan(settings.count, settings.interval_seconds, settings.initial_delay_seconds)
