"""The risk policy's caps on a TradingSymbol's own risk limits — the one place that judges them, for the
operator (a spec above a cap is rejected, nothing running changes) and for admission (`opsctl policy
check`, CI). Pure: limits and a policy in, the problems out."""

from __future__ import annotations

from policies.loader import PolicySet
from policies.models import RiskPolicySpec
from trading_runtime.config import RiskLimits

# (RiskLimits attribute, its camelCase field, the RiskPolicySpec attribute capping it)
RISK_BOUNDS = (
    ("capital", "capital", "max_capital"),
    ("max_drawdown", "maxDrawdown", "max_drawdown"),
    ("correlated_exposure_cap", "correlatedExposureCap", "max_correlated_exposure"),
    ("target_volatility", "targetVolatility", "max_target_volatility"),
)


def cap_violations(limits: RiskLimits, policy: RiskPolicySpec) -> list[str]:
    """`spec.config.risk.<field>: value exceeds the cap` for every limit above the policy's cap."""
    problems = []
    for attribute, field, bound in RISK_BOUNDS:
        value, most = getattr(limits, attribute), getattr(policy, bound)
        if value > most:
            problems.append(f"spec.config.risk.{field}: {value:g} exceeds the risk policy's limit {most:g}")
    return problems


def risk_problems(policies: PolicySet, policy_name: str, limits: RiskLimits) -> list[str]:
    """Why these limits may not run under the named RiskPolicy (it must exist); empty when they may."""
    try:
        policy = policies.get(RiskPolicySpec, policy_name)
    except KeyError as error:
        return [f"spec.policies.risk: {error.args[0]}"]
    return [f"{problem} (RiskPolicy {policy_name!r})" for problem in cap_violations(limits, policy)]
