"""Prometheus rules from SLO policies: error-ratio recording rules, error budgets and multi-window,
multi-burn-rate alerts (the SRE workbook, chapter 5), as a rules file or a PrometheusRule manifest.

Every rule aggregates `by (namespace, symbol)` over all runtimes instead of being copied per symbol: one
rule set covers every TradingSymbol, including ones created after the rules were deployed (no regeneration
when a symbol is added), Prometheus evaluates a handful of rules instead of rules x symbols, and each alert
still fires per symbol because the symbol is a label of the result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import jinja2

from policies.models import SLO, ErrorRatioSLI, SLOPolicySpec, duration_seconds
from policies.templates import render

DEFAULT_SELECTOR = 'symbol!=""'
"""Label matchers of every runtime's series: the runtime labels all its series with `symbol`."""
AGGREGATION = "namespace, symbol"
RULE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Windows of the `slo:sli_error:ratio_rate<window>` recording rules (the burn-rate alerts' windows)."""
MANIFEST_NAME = "tradeops-slos"
MANIFEST_LABELS = {"release": "kube-prometheus-stack", "app.kubernetes.io/part-of": "tradeops",
                   "app.kubernetes.io/component": "slo-rules"}
"""kube-prometheus-stack's Prometheus selects PrometheusRules labelled with its release name."""

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("policies", "templates"), undefined=jinja2.StrictUndefined,
                          autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
# Strings go into YAML as JSON (a subset of YAML): quotes, `{{ $labels }}` and colons need no care.
_ENV.filters["q"] = lambda value: json.dumps(str(value), ensure_ascii=False)


@dataclass(frozen=True)
class BurnRateAlert:
    """One pair of the multi-window alert: both windows must burn faster than `factor` x the budget."""

    factor: float
    long: str
    short: str
    page: bool
    """Pages with the SLO's severity; otherwise always a ticket."""


BURN_RATE_ALERTS = (
    BurnRateAlert(14.4, "1h", "5m", page=True),   # 2 % of a 30-day budget in an hour
    BurnRateAlert(6.0, "6h", "30m", page=True),   # 5 % in six hours
    BurnRateAlert(3.0, "1d", "2h", page=False),   # 10 % in a day
    BurnRateAlert(1.0, "3d", "6h", page=False),   # 10 % in three days: on course to spend it all
)
ALERT_NAME = "TradeopsErrorBudgetBurn"
PERIOD_INTERVAL = "150s"
"""Evaluation interval of the period groups (Pyrra's for a 30-day window)."""


def number(value: float) -> str:
    """A float as PromQL and YAML read it back exactly (`0.01`, not `0.010000000000000009`)."""
    return f"{round(value, 12):.12g}"


def budget(slo: SLO) -> float:
    """The error budget: the share of events allowed to be bad."""
    return round(1.0 - slo.objective, 12)


def error_ratio_query(sli: ErrorRatioSLI, selector: str, window: str) -> str:
    """Bad over all events per (namespace, symbol) over a window. A symbol with traffic but no error series
    yet (counters with labels appear on first increment) counts as 0, not as absent. A window without events
    has no ratio (the denominator is kept only above 0): 0/0 would be NaN, and one NaN poisons every
    `avg_over_time` of the period that includes it."""
    errors = f"sum by ({AGGREGATION}) ({render(sli.error_query, selector, window)})"
    total = f"sum by ({AGGREGATION}) ({render(sli.total_query, selector, window)})"
    return f"({errors} or 0 * {total})\n/\n({total} > 0)"


def record_name(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}"


def _recordings(slo: SLO, sli: ErrorRatioSLI, selector: str) -> list[dict[str, Any]]:
    labels = {"slo": slo.name}
    return [{"record": record_name(w), "expr": error_ratio_query(sli, selector, w), "labels": labels}
            for w in RULE_WINDOWS] + [
        {"record": "slo:objective:ratio", "expr": f"vector({number(slo.objective)})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({number(budget(slo))})", "labels": labels},
    ]


def _period_recordings(slo: SLO) -> list[dict[str, Any]]:
    """The ratio over the SLO period and the budget left. The period ratio averages the 5m ratio over the
    period: reading one recorded series is cheap, where a rate over 30 days of raw samples at every
    evaluation is not. It weighs time, not events (a quiet night counts like a busy open), and covers only
    the history Prometheus keeps (its retention must cover the period; the Pulumi program checks it). A period that is
    one of the windows (1d, 3d) already has its exact ratio recorded in the SLO's group."""
    labels = {"slo": slo.name}
    period_ratio = record_name(slo.period)
    rules = []
    if slo.period not in RULE_WINDOWS:
        rules.append({"record": period_ratio, "labels": labels,
                      "expr": f'avg_over_time({record_name("5m")}{{slo="{slo.name}"}}[{slo.period}])'})
    rules.append({"record": "slo:error_budget_remaining:ratio", "labels": labels,
                  "expr": f'1 - {period_ratio}{{slo="{slo.name}"}} / {number(budget(slo))}'})
    return rules


def _burn(slo: SLO, window: str, factor: float) -> str:
    """The SLO's burn rate over a window (error ratio over budget), kept where above `factor`."""
    return f'{record_name(window)}{{slo="{slo.name}"}} / {number(budget(slo))} > {number(factor)}'


def _alerts(slo: SLO) -> list[dict[str, Any]]:
    rules = []
    for pair in BURN_RATE_ALERTS:
        severity = slo.severity if pair.page else "ticket"
        hours = duration_seconds(slo.period) / 3600 / pair.factor
        rules.append({
            "alert": ALERT_NAME,
            # $value is the left side of `and`: the long window's burn rate.
            "expr": f"{_burn(slo, pair.long, pair.factor)}\nand\n{_burn(slo, pair.short, pair.factor)}",
            "labels": {"severity": severity, "slo": slo.name, "burn_rate": number(pair.factor),
                       "long": pair.long, "short": pair.short},
            "annotations": {
                "summary": f"{{{{ $labels.symbol }}}} burns the {slo.name} error budget "
                           f"{number(pair.factor)}x too fast",
                "description": (
                    f"{{{{ $labels.namespace }}}}/{{{{ $labels.symbol }}}}: the {slo.name} SLO "
                    f"({number(slo.objective * 100)} % over {slo.period}) burns its error budget "
                    f"{{{{ printf \"%.1f\" $value }}}}x as fast as sustainable over {pair.long} "
                    f"(and above {number(pair.factor)}x over {pair.short}); "
                    f"at {number(pair.factor)}x the whole budget lasts {number(round(hours, 1))} h."
                ),
                "runbook_url": slo.runbook_url,
            },
        })
    return rules


def groups(spec: SLOPolicySpec, selector: str = DEFAULT_SELECTOR) -> list[dict[str, Any]]:
    """Rule groups of one SLO policy: per SLO with an SLI, its ratios and alerts (recordings first: a group
    evaluates in order, so its alerts read this evaluation's ratios), then its period group. Series carry the
    `slo` label, not the policy's name: render one policy per Prometheus, and narrow `selector` when symbols
    follow different policies."""
    return [{"name": f"tradeops-slo-{slo.name}", "rules": _recordings(slo, slo.sli, selector) + _alerts(slo)}
            for slo in spec.slos if slo.sli is not None] + [
        # The period's budget changes slowly and its range is long: evaluated at a coarser interval in a group
        # of its own (as Pyrra does for 30 days), it costs a fraction of the burn-rate group's evaluations.
        {"name": f"tradeops-slo-{slo.name}-period", "interval": PERIOD_INTERVAL, "rules": _period_recordings(slo)}
        for slo in spec.slos if slo.sli is not None]


def render_rules(rule_groups: list[dict[str, Any]], form: Literal["rules", "prometheusrule"] = "rules",
                 namespace: str | None = None, name: str = MANIFEST_NAME,
                 generator: str = "`python -m policies rules` from the SLO policy") -> str:
    """A Prometheus rules file (`groups:`), or the same groups in a monitoring.coreos.com/v1 PrometheusRule."""
    manifest = None
    if form == "prometheusrule":
        manifest = {"name": name, "namespace": namespace, "labels": MANIFEST_LABELS}
    return _ENV.get_template("rules.yaml.j2").render(groups=rule_groups, manifest=manifest, generator=generator)
