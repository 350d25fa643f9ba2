"""Print the rule groups of a PrometheusRule manifest as a plain Prometheus rules file (for promtool)."""

import sys

import yaml

with open(sys.argv[1]) as manifest:
    rule = yaml.safe_load(manifest)
yaml.safe_dump({"groups": rule["spec"]["groups"]}, sys.stdout, sort_keys=False)
