"""What a claimant's status says about its symbol: refused while another TradingSymbol owns it (`claims.py`
decides who), and owning it once that one is gone. Called by the planner only; pure."""

from __future__ import annotations

from trading_operator import claims, user_requests
from trading_operator.api import ConditionStatus, Phase, TradingSymbolStatus
from trading_operator.conditions import ConditionType, Reason, get_condition, set_condition
from trading_operator.plans import NORMAL, WARNING, DeleteObject, Observed, Plan


def refused(result: Plan, observed: Observed, status: TradingSymbolStatus, symbol: str, holder: claims.Claim,
            running: list[str]) -> TradingSymbolStatus:
    """Refuse a later claimant of a symbol: Conflict and an Event naming the owner, no revision, no pods (the
    Deployments it runs, `running` — it started in the moment before it saw an older claimant, or an older
    TradingSymbol's claim reached the index late — are deleted), its requests refused."""
    message = claims.conflict_message(symbol, observed.namespace, holder)
    for name in running:
        result.actions.append(DeleteObject("Deployment", name))
    previous = get_condition(status.conditions, ConditionType.CONFLICT)
    if running:
        result.event(WARNING, Reason.SYMBOL_CONFLICT, f"{message}; stopped the pods it ran")
    elif previous is None or previous.status != ConditionStatus.TRUE or previous.message != message:
        result.event(WARNING, Reason.SYMBOL_CONFLICT, message)
    gen, now = observed.generation, observed.now
    conditions = set_condition(status.conditions, ConditionType.CONFLICT, ConditionStatus.TRUE,
                               Reason.SYMBOL_CONFLICT, message, gen, now)
    conditions = set_condition(conditions, ConditionType.READY, ConditionStatus.FALSE, Reason.SYMBOL_CONFLICT,
                               f"Waiting for {claims.normalise(symbol)}: TradingSymbol {holder.name} trades it",
                               gen, now)
    answers = user_requests.refuse_all(observed.annotations, frozenset(r.id for r in status.requests), message)
    user_requests.respond(result, answers)
    last_request = user_requests.last_request_condition(answers)
    if last_request is not None:
        conditions = set_condition(conditions, ConditionType.LAST_REQUEST, *last_request, gen, now)
    return status.model_copy(update={"conditions": conditions, "phase": Phase.PENDING, "observed_generation": gen,
                                     "replicas": 0, "ready_replicas": 0,
                                     "requests": user_requests.records(status.requests, answers, now)})


def owned(result: Plan, observed: Observed, symbol: str, status: TradingSymbolStatus) -> TradingSymbolStatus:
    """A former claimant that now owns its symbol says so (the Conflict condition turns False, once); a symbol
    never in conflict gets no Conflict condition."""
    previous = get_condition(status.conditions, ConditionType.CONFLICT)
    if previous is None or previous.status != ConditionStatus.TRUE:
        return status
    name = claims.normalise(symbol)
    result.event(NORMAL, Reason.SYMBOL_OWNED, f"{name} is no longer claimed by another TradingSymbol; starting")
    conditions = set_condition(status.conditions, ConditionType.CONFLICT, ConditionStatus.FALSE,
                               Reason.SYMBOL_OWNED, f"Owns {name} in namespace {observed.namespace}",
                               observed.generation, observed.now)
    return status.model_copy(update={"conditions": conditions})
