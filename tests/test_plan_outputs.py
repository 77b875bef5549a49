"""scripts/plan.py: a monitoring stack without its password."""
import json

import pytest
import yaml

from components.offline.program import evaluate
from components.plan.build import GRAFANA_PLACEHOLDER_NOTE, plan_stack
from components.problems import ConfigError
from components.stack_file import parse_stack_file, stack_file_config
from test_plan import run_plan

PASSWORD = {"secure": "v1:Z3JhZmFuYS1zZWNyZXQtaW4tdGhlLWZpbGU="}


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
