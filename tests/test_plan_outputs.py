"""scripts/plan.py: the files it uploads, and a monitoring stack without its password."""
import json

import pytest
import yaml

from components.offline.program import evaluate
from components.plan.build import GRAFANA_PLACEHOLDER_NOTE, plan_stack
from components.plan.text import render_text, to_json
from components.problems import ConfigError
from components.stack_file import parse_stack_file, stack_file_config
from test_plan import run_plan

PASSWORD = {"secure": "v1:Z3JhZmFuYS1zZWNyZXQtaW4tdGhlLWZpbGU="}


def section(text, title):
    return text.split(f"\n{title}")[1].split("\n\n")[0]


# --- uploads ------------------------------------------------------------------------

def test_uploads_and_data_lists_the_files_it_counts():
    plan = plan_stack("torchserve-example")
    text = render_text(plan)
    uploads = section(text, "Uploads and data")
    copies = [s for s in plan.steps.values() if s.kind == "upload"]
    assert f"({len(copies)} file(s), {sum(c.details['bytes'] for c in copies)} bytes" in uploads
    listed = [line for line in uploads.splitlines() if line.startswith("    file ")]
    assert len(listed) == len(copies) == 2
    for copy_step in copies:
        assert f"    file {copy_step.details['source']} ({copy_step.details['bytes']} bytes)" in listed
    # Each file under the upload that sends it, after it.
    lines = uploads.splitlines()
    upload_at = next(i for i, line in enumerate(lines)
                     if line.startswith("  upload-kserve-test-models/torchserve:"))
    assert all(lines.index(f) == upload_at + 1 + n for n, f in enumerate(listed))
    [entry] = [e for e in to_json(plan)["uploadsAndData"] if e["files"]]
    assert entry["step"] == "upload-kserve-test-models/torchserve"
    assert sorted(f["source"] for f in entry["files"]) == sorted(c.details["source"] for c in copies)


# --- a monitoring stack without its password ----------------------------------------

def monitoring_stack(tmp_path, **extra):
    config = {f"kserve-cluster:{k}": v for k, v in stack_file_config("lab").items()}
    config["kserve-cluster:monitoring"] = {"enabled": True}
    config.update(extra)
    (tmp_path / "Pulumi.mon.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def test_plan_runs_for_a_monitoring_stack_without_its_password(tmp_path):
    stacks = monitoring_stack(tmp_path)
    result = run_plan("mon", "--stacks-dir", str(stacks))
    assert result.returncode == 0, result.stderr
    assert GRAFANA_PLACEHOLDER_NOTE in result.stdout
    assert "kube-prometheus-stack-chart" in result.stdout
    data = json.loads(run_plan("mon", "--stacks-dir", str(stacks), "--json").stdout)
    assert GRAFANA_PLACEHOLDER_NOTE in data["notes"]
    # `pulumi up` still refuses it: the program's validation is unchanged.
    with pytest.raises(ConfigError, match="grafanaAdminPassword = \\(not set\\): required"):
        parse_stack_file("mon", stacks)
    with pytest.raises(Exception, match="grafanaAdminPassword"):
        evaluate(stack_file_config("mon", stacks))


def test_no_placeholder_when_the_password_is_set_or_monitoring_is_off(tmp_path):
    plan = plan_stack("mon", monitoring_stack(tmp_path, **{"kserve-cluster:grafanaAdminPassword":
                                                            PASSWORD}))
    assert GRAFANA_PLACEHOLDER_NOTE not in plan.notes
    lab = plan_stack("lab")
    assert GRAFANA_PLACEHOLDER_NOTE not in lab.notes
    assert not [n for n in lab.notes if "grafanaAdminPassword" in n]  # no "set, but not enabled"
