"""Alertmanager configuration from the SLO policy: who hears about which alert, grouped how, and what
silences what.

- Routes by severity: `page` alerts go to the on-call pager (PagerDuty), `ticket` alerts to the ticket
  channel (Slack). Every SLO alert of the policy also reaches the operator's webhook first (`continue`),
  which records it on the TradingSymbol; routing stops at the first match otherwise.
- Grouping by alert, namespace, symbol and SLO: the burn-rate pairs of one SLO of one symbol arrive as one
  notification; two symbols never share one.
- Inhibitions: a halted or paused symbol silences its SLO alerts (nothing trades, or a change is held on
  purpose: its burn is expected), and a page silences the ticket of the same symbol and SLO.
- Secrets stay in Secrets: the pager's routing key and the chat webhook URL are read from files
  (`routing_key_file`, `api_url_file`) that a Secret mounts; nothing secret is in the generated file.

`python -m policies.alertmanager [-o FILE] [--operator-url URL]` (also `make alertmanager`)."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError

from policies.loader import DEFAULTS_DIR, PolicyLoadError, load_dir
from policies.models import DURATION_PATTERN, PolicyModel, SLOPolicySpec
from policies.rules import ALERT_NAME
from policies.symbol_alerts import HALTED_ALERT, PAUSED_ALERT

GROUP_BY = ("alertname", "namespace", "symbol", "slo")
OPERATOR_RECEIVER = "tradeops-operator"
PAGE_RECEIVER = "tradeops-page"
TICKET_RECEIVER = "tradeops-ticket"
DEFAULT_OUTPUT = pathlib.Path("deploy/alertmanager/alertmanager.yml")
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]


class AlertmanagerSettings(PolicyModel):
    """Where notifications go and how often; defaults fit the cluster install (`deploy/alertmanager/`)."""

    operator_url: Annotated[str, Field(pattern=r"^https?://")] = \
        "http://tradeops-operator.tradeops-system.svc:9104/alerts"
    """The operator's webhook receiver."""
    pagerduty_routing_key_file: str = "/etc/alertmanager/secrets/tradeops-alerting/pagerduty-routing-key"
    """File holding the PagerDuty Events v2 routing key (mounted from a Secret)."""
    pagerduty_url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    """PagerDuty Events API URL (Alertmanager's default when unset)."""
    slack_api_url_file: str = "/etc/alertmanager/secrets/tradeops-alerting/slack-webhook-url"
    """File holding the Slack incoming-webhook URL of the ticket channel (mounted from a Secret)."""
    slack_channel: str = "#tradeops-tickets"
    """Channel of the ticket notifications."""
    group_wait: Duration = "30s"
    """Wait for more alerts of a new group before the first notification."""
    group_interval: Duration = "5m"
    """Wait before notifying about alerts added to a group already notified."""
    page_repeat_interval: Duration = "1h"
    """Re-send a page still firing after this long."""
    ticket_repeat_interval: Duration = "12h"
    """Re-send a ticket still firing after this long."""


def _matchers(**labels: str) -> list[str]:
    """Alertmanager matchers; a value starting with `~` is a regular expression."""
    return [f'{k}=~"{v[1:]}"' if v.startswith("~") else f'{k}="{v}"' for k, v in labels.items()]


def _slo_names(spec: SLOPolicySpec) -> str:
    """The SLOs that have burn-rate alerts, as a regular expression."""
    return "|".join(slo.name for slo in spec.slos if slo.sli is not None)


def routes(spec: SLOPolicySpec, settings: AlertmanagerSettings) -> dict[str, Any]:
    """The routing tree: operator first (and on), then page or ticket by severity; tickets by default."""
    return {
        "receiver": TICKET_RECEIVER,
        "group_by": list(GROUP_BY),
        "group_wait": settings.group_wait,
        "group_interval": settings.group_interval,
        "repeat_interval": settings.ticket_repeat_interval,
        "routes": [
            {"receiver": OPERATOR_RECEIVER, "continue": True,
             "matchers": _matchers(alertname=ALERT_NAME, slo=f"~{_slo_names(spec)}")},
            {"receiver": PAGE_RECEIVER, "matchers": _matchers(severity="page"),
             "repeat_interval": settings.page_repeat_interval},
            {"receiver": TICKET_RECEIVER, "matchers": _matchers(severity="ticket")},
        ],
    }


def inhibit_rules() -> list[dict[str, Any]]:
    """A halted or paused symbol silences its SLO alerts; a page silences the ticket it makes redundant."""
    return [
        {"source_matchers": _matchers(alertname=HALTED_ALERT), "target_matchers": _matchers(alertname=ALERT_NAME),
         "equal": ["namespace", "symbol"]},
        {"source_matchers": _matchers(alertname=PAUSED_ALERT), "target_matchers": _matchers(alertname=ALERT_NAME),
         "equal": ["namespace", "symbol"]},
        {"source_matchers": _matchers(alertname=ALERT_NAME, severity="page"),
         "target_matchers": _matchers(alertname=ALERT_NAME, severity="ticket"),
         "equal": ["namespace", "symbol", "slo"]},
    ]


def receivers(settings: AlertmanagerSettings) -> list[dict[str, Any]]:
    pagerduty: dict[str, Any] = {
        "routing_key_file": settings.pagerduty_routing_key_file, "send_resolved": True,
        "description": '{{ .CommonLabels.symbol }}: {{ .CommonAnnotations.summary }}',
        "links": [{"href": "{{ .CommonAnnotations.runbook_url }}", "text": "runbook"}],
    }
    if settings.pagerduty_url is not None:
        pagerduty["url"] = settings.pagerduty_url
    return [
        {"name": OPERATOR_RECEIVER,
         "webhook_configs": [{"url": settings.operator_url, "send_resolved": True}]},
        {"name": PAGE_RECEIVER, "pagerduty_configs": [pagerduty]},
        {"name": TICKET_RECEIVER, "slack_configs": [{
            "api_url_file": settings.slack_api_url_file, "channel": settings.slack_channel, "send_resolved": True,
            "title": '{{ .CommonLabels.namespace }}/{{ .CommonLabels.symbol }}: {{ .CommonLabels.alertname }}',
            "text": "{{ range .Alerts }}{{ .Annotations.description }}\n{{ end }}",
            "title_link": "{{ .CommonAnnotations.runbook_url }}",
        }]},
    ]


def config(spec: SLOPolicySpec, settings: AlertmanagerSettings | None = None) -> dict[str, Any]:
    """The whole alertmanager.yml as a mapping."""
    settings = settings or AlertmanagerSettings()
    return {"route": routes(spec, settings), "inhibit_rules": inhibit_rules(), "receivers": receivers(settings)}


def render(spec: SLOPolicySpec, settings: AlertmanagerSettings | None = None) -> str:
    header = "# Generated by `python -m policies.alertmanager` from the SLO policy: do not edit, run " \
             "`make alertmanager`.\n"
    return header + yaml.safe_dump(config(spec, settings), sort_keys=False, width=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.alertmanager", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=pathlib.Path, default=DEFAULTS_DIR, help="policy directory")
    parser.add_argument("--policy", default="default", help="SLOPolicy name (default: default)")
    parser.add_argument("--operator-url", default=AlertmanagerSettings().operator_url,
                        help="the operator's webhook receiver (default: %(default)s)")
    parser.add_argument("-o", "--output", type=pathlib.Path, help="write to FILE (default: stdout)")
    args = parser.parse_args(argv)
    try:
        policies = load_dir(args.directory)
        settings = AlertmanagerSettings(operator_url=args.operator_url)
    except (PolicyLoadError, ValidationError, FileNotFoundError) as error:
        print(f"cannot render: {error}", file=sys.stderr)
        return 1
    if args.policy not in policies.slo:
        print(f"{args.directory}: no SLOPolicy named {args.policy!r}", file=sys.stderr)
        return 1
    text = render(policies.slo[args.policy], settings)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
