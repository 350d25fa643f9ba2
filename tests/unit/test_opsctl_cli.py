"""opsctl's command line without a cluster: help, usage errors (exit 2, nothing sent), options accepted
before or after the verb, --version, and what `opsctl get` does not load (boto3, the drills, the
`kubernetes` package, the API models) so that it starts fast."""

from __future__ import annotations

import importlib
import json
import pathlib
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from opsctl.errors import ExitCode
from opsctl.main import GROUPS, app

runner = CliRunner()
VERBS = ("get", "describe", "history", "rollback", "pause", "resume", "halt", "unhalt", "promote", "abort", "retry",
         "restart",
         "analysis", "version")


def test_help_lists_every_command_and_the_exit_codes():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for command in (*VERBS, *GROUPS):
        assert f" {command} " in text, command
    for promise in ("3 not found", "4 unreachable", "5 timed out waiting", "6 rejected", "7 a check failed",
                    "8 no answer within --request-timeout"):
        assert promise in text
    commands = result.stdout.partition("Commands:")[2].split("\n\n")[0]
    assert "..." not in commands  # short help is never cut


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_help_shown_for_a_lazy_group_is_its_own(group):
    """The registry's one-line help (shown without loading the group) is what the group itself says."""
    loaded = typer.main.get_command(importlib.import_module(GROUPS[group].module).app)
    assert loaded.help == GROUPS[group].help
    listed = runner.invoke(app, [group, "--help"])
    assert listed.exit_code == 0
    assert "..." not in listed.stdout.partition("Commands:")[2]


@pytest.mark.parametrize(
    "args",
    [["rollback"], ["get", "-o", "xml"], ["get", "-o", "jsonpath={.a["], ["rollback", "spy", "--to-revision", "two"],
     ["rollback", "spy", "--timeout", "-1"], ["get", "--request-timeout", "soon"], ["frobnicate"],
     ["get", "spy", "-A"]],
    ids=["missing-name", "bad-output", "bad-jsonpath", "bad-revision", "negative-timeout", "bad-duration",
         "unknown-command", "name-and-all-namespaces"],
)
def test_usage_errors_exit_2_before_any_request(tmp_path: pathlib.Path, args: list[str]):
    # The kubeconfig does not exist: had opsctl tried to connect, it would have exited 4.
    result = runner.invoke(app, ["--kubeconfig", str(tmp_path / "absent"), *args])
    assert result.exit_code == ExitCode.USAGE, result.output


@pytest.mark.parametrize("args", [["-o", "json", "version", "--client"], ["version", "--client", "-o", "json"],
                                  ["version", "-o", "json", "--client"]],
                         ids=["before", "after", "between"])
def test_global_options_go_before_or_after_the_verb(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["apiVersion"] == "trading.tradeops.io/v1alpha1"


def test_the_option_nearest_the_verb_wins(tmp_path: pathlib.Path):
    result = runner.invoke(app, ["-o", "yaml", "version", "--client", "-o", "json"])
    assert json.loads(result.stdout)["clientVersion"]


def test_version_flag_and_client_version():
    from importlib import metadata

    assert runner.invoke(app, ["--version"]).stdout.strip() == metadata.version("tradeops")
    client = runner.invoke(app, ["version", "--client"])
    assert client.stdout.startswith(f"Client Version: {metadata.version('tradeops')} (speaks "
                                    "trading.tradeops.io/v1alpha1)")


def test_name_output_is_refused_where_there_are_no_objects():
    result = runner.invoke(app, ["version", "--client", "-o", "name"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("opsctl: error: -o name prints API objects")


def test_get_loads_none_of_the_heavy_parts(tmp_path: pathlib.Path):
    """What `opsctl get` imports (against no cluster: the imports are the same, the request fails)."""
    code = ("import sys\nfrom opsctl.main import app\n"
            f"try:\n    app(['--kubeconfig', {str(tmp_path / 'absent')!r}, 'get'], prog_name='opsctl')\n"
            "except SystemExit:\n    pass\n"
            "heavy = ['boto3', 'drills', 'kubernetes', 'prometheus_api_client', 'requests', 'rich', "
            "'trading_operator.api', 'policies.models', 'aiohttp', 'kopf']\n"
            "print([m for m in heavy if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    assert "no kubeconfig" in done.stderr
