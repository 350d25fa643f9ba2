"""python -m policies: lint policy files, render Prometheus rules, check TradingSymbol manifests.

Exit codes: 0 clean, 1 problems found (each printed as `file: location: message`), 2 usage."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

from policies.cost_rules import COST_MANIFEST_NAME, cost_groups
from policies.lint import check_manifests, lint
from policies.loader import DEFAULTS_DIR, PolicyError, load_texts, read_dir
from policies.rule_set import rule_groups
from policies.rules import DEFAULT_SELECTOR, render_rules


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m policies", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lint_cmd = commands.add_parser("lint", help="validate every policy file of a directory")
    lint_cmd.add_argument("directory", nargs="?", type=pathlib.Path, default=DEFAULTS_DIR)
    rules = commands.add_parser(
        "rules", help="render an SLO policy's recording rules and burn-rate alerts, the symbol alerts and the KPIs")
    rules.add_argument("directory", nargs="?", type=pathlib.Path, default=DEFAULTS_DIR)
    rules.add_argument("--policy", default="default", help="SLOPolicy name (default: default)")
    rules.add_argument("--selector", default=DEFAULT_SELECTOR, help=f"label matchers of the runtimes' series "
                       f"(default: {DEFAULT_SELECTOR})")
    rules.add_argument("--prometheusrule", action="store_true", help="a PrometheusRule manifest, not a rules file")
    rules.add_argument("--namespace", help="metadata.namespace of the PrometheusRule")
    rules.add_argument("-o", "--output", type=pathlib.Path, help="write to FILE (default: stdout)")
    cost = commands.add_parser("cost-rules", help="render the cost recording rules and budget alert of a CostPolicy")
    cost.add_argument("directory", nargs="?", type=pathlib.Path, default=DEFAULTS_DIR)
    cost.add_argument("--policy", default="default", help="CostPolicy name (default: default)")
    cost.add_argument("--prometheusrule", action="store_true", help="a PrometheusRule manifest, not a rules file")
    cost.add_argument("--namespace", help="metadata.namespace of the PrometheusRule")
    cost.add_argument("-o", "--output", type=pathlib.Path, help="write to FILE (default: stdout)")
    check = commands.add_parser("check-manifests", help="check TradingSymbol manifests against admission and risk")
    check.add_argument("files", nargs="+", type=pathlib.Path)
    check.add_argument("--policies", type=pathlib.Path, default=DEFAULTS_DIR, help="policy directory")
    check.add_argument("--admission", default="default", help="AdmissionPolicy name (default: default)")
    return parser


def _report(problems: list[PolicyError]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "lint":
        return _report(lint(args.directory))
    if args.command == "check-manifests":
        return _report(check_manifests(args.files, args.policies, args.admission))
    problems = lint(args.directory)
    if problems:
        return _report(problems)
    policies = load_texts(read_dir(args.directory))[0]
    if args.command == "cost-rules":
        if args.policy not in policies.cost:
            return _report([PolicyError(str(args.directory), "CostPolicy", f"no CostPolicy named {args.policy!r}")])
        text = render_rules(cost_groups(policies.cost[args.policy]),
                            "prometheusrule" if args.prometheusrule else "rules", args.namespace, COST_MANIFEST_NAME,
                            "`python -m policies cost-rules` from the cost policy")
        return _write(text, args.output)
    if args.policy not in policies.slo:
        return _report([PolicyError(str(args.directory), "SLOPolicy", f"no SLOPolicy named {args.policy!r}")])
    text = render_rules(rule_groups(policies.slo[args.policy], args.selector),
                        "prometheusrule" if args.prometheusrule else "rules", args.namespace)
    return _write(text, args.output)


def _write(text: str, output: pathlib.Path | None) -> int:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
