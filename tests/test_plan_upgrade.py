"""The upgrade in the offline plan (scripts/plan.py --from-version) and in the
program's log: numbered steps per node, in order, under the command that runs
them, with what each drain displaces."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import versions
from components.offline.program import ClusterMocks, evaluate
from components.plan.build import plan_stack
from components.plan.text import render_text, to_json
from components.stack_file import stack_file_config
from components.upgrade.report import PLACEMENT_NOTE

ROOT = Path(__file__).resolve().parents[1]
OLD = versions.TRAINS["1.31"].kubernetes_version
NEW = versions.TRAINS["1.32"].kubernetes_version
NEWER = versions.TRAINS["1.33"].kubernetes_version
P = "kserve-cluster:"


def stack_dir(tmp_path, version=NEW, upgrade=None, models=None, base="lab"):
    """stacks/Pulumi.<base>.yaml with kubernetes.version (and upgrade, models) changed."""
    document = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{base}.yaml").read_text())
    config = document["config"]
    config[f"{P}kubernetes"] = {**(config.get(f"{P}kubernetes") or {}), "version": version}
    if upgrade:
        config[f"{P}upgrade"] = upgrade
    if models is not None:
        config[f"{P}models"] = models
    (tmp_path / f"Pulumi.{base}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


def model(name, replicas=None, gpu=0):
    entry = {"name": name, "namespace": "kserve-test", "format": "sklearn",
             "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}
    if replicas is not None:
        entry["scaling"] = {"minReplicas": replicas, "maxReplicas": max(replicas, 1) + 1}
    if gpu:
        entry.update(format="triton", resources={"gpu": gpu})
    return entry


def upgrade_of(tmp_path, from_version=OLD, base="lab", **stack):
    return plan_stack(base, stack_dir(tmp_path, base=base, **stack), from_version=from_version).upgrade


def drains(upgrade):
    return {block["node"]: next(s for s in block["steps"] if s["action"] == "drain")
            for block in upgrade["commands"] if block["command"] != "upgrade-gates"}


def test_numbered_steps_per_node_in_order_under_their_commands(tmp_path):
    plan = plan_stack("lab", stack_dir(tmp_path), from_version=OLD)
    upgrade = plan.upgrade
    assert (upgrade["current"], upgrade["target"], upgrade["kind"]) == (OLD, NEW, "minor")
    assert [b["command"] for b in upgrade["commands"]] == [
        "upgrade-gates", "cp1-upgrade", "worker1-upgrade", "worker2-upgrade"]
    numbers = [s["number"] for b in upgrade["commands"] for s in b["steps"]]
    assert numbers == list(range(1, len(numbers) + 1))
    cp1 = [s["text"] for s in upgrade["commands"][1]["steps"]]
    assert cp1[:4] == [f"apt repository -> {versions.kubernetes_apt_repo('1.32')} (its Release.key)",
                       f"install kubeadm {NEW} (held)", f"kubeadm upgrade plan v{NEW}",
                       f"kubeadm upgrade apply v{NEW}"]
    assert [b["batch"] for b in upgrade["commands"]] == [0, 0, 1, 2]
    text = render_text(plan)
    assert f"Upgrade {OLD} -> {NEW}: a minor upgrade" in text
    assert "  worker1-upgrade (on worker1, batch 1 of 2):" in text
    assert f"      6. kubeadm upgrade apply v{NEW}" in text
    assert PLACEMENT_NOTE in text
    # Every command the plan names is one the program registers.
    names = {c.name for c in evaluate(stack_file_config("lab")).commands()}
    assert {b["command"] for b in upgrade["commands"]} <= names
    assert to_json(plan)["upgrade"] == upgrade


def test_what_each_drain_displaces(tmp_path):
    models = [model("one"), model("two", replicas=2), model("scaled-to-zero", replicas=0)]
    by_node = drains(upgrade_of(tmp_path, models=models))
    # The control plane runs no model (kubeadm taints it when there are workers).
    assert by_node["cp1"]["losesAReplica"] == [] and by_node["cp1"]["noneLeft"] == []
    lost = {n: {m["model"]: (m["left"], m["of"]) for m in d["losesAReplica"]} for n, d in by_node.items()}
    # Dealt round the workers: one -> worker1, two -> worker2 and worker1.
    assert lost["worker1"] == {"kserve-test/one": (0, 1), "kserve-test/two": (1, 2)}
    assert lost["worker2"] == {"kserve-test/two": (1, 2)}
    assert by_node["worker1"]["noneLeft"] == ["kserve-test/one"] and by_node["worker2"]["noneLeft"] == []
    # Both workers in one batch: the two-replica model is left with none too.
    together = drains(upgrade_of(tmp_path, models=models, upgrade={"maxUnavailable": 2}))
    assert together["worker1"]["noneLeft"] == ["kserve-test/one", "kserve-test/two"]
    assert together["worker1"]["drainedWith"] == ["worker2"]


def test_a_gpu_model_is_displaced_only_by_its_gpu_worker(tmp_path):
    models = [model("cpu-model"), model("gpu-model", gpu=1)]
    by_node = drains(upgrade_of(tmp_path, models=models, base="gpu-example"))
    assert by_node["gpu1"]["noneLeft"] == ["kserve-test/gpu-model"]
    assert by_node["worker1"]["noneLeft"] == ["kserve-test/cpu-model"]


def test_a_resumed_or_finished_upgrade_and_a_refused_one(tmp_path):
    assert "none; the cluster runs" in upgrade_of(tmp_path, from_version=NEW)["note"]
    refused = upgrade_of(tmp_path, version=NEWER)
    assert refused["current"] == OLD and "skips a minor" in refused["refused"][0]
    text = render_text(plan_stack("lab", stack_dir(tmp_path, version=NEWER), from_version=OLD))
    assert "`pulumi up` refuses it before any node changes" in text


def test_without_the_current_version_the_plan_says_it_cannot_know(tmp_path):
    plan = plan_stack("lab", stack_dir(tmp_path))
    assert "cannot know which version the cluster runs" in plan.upgrade["note"]
    assert f"--from-version {OLD}" in render_text(plan)


def run_plan(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "plan.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_the_command_line(tmp_path):
    stacks = str(stack_dir(tmp_path))
    shown = run_plan("lab", "--stacks-dir", stacks, "--from-version", f"v{OLD}", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["upgrade"]["current"] == OLD
    bad = run_plan("lab", "--stacks-dir", stacks, "--from-version", "1.31")
    assert bad.returncode == 2 and "--from-version '1.31': not a Kubernetes version" in bad.stderr


def test_pulumi_up_logs_the_steps_before_any_node_changes(caplog):
    config = stack_file_config("lab")
    config["kubernetes"] = {**config.get("kubernetes", {}), "version": NEW}

    def answers(name, inputs):
        if name == "upgrade-versions":
            return f"api_server={OLD}\n" + "".join(f"node={n} {OLD} Ready\n"
                                                  for n in ("cp1", "worker1", "worker2"))
        return ClusterMocks.default_stdout(name, inputs)
    with caplog.at_level(logging.INFO):
        evaluate(config, mocks=ClusterMocks(preview=False, command_stdout=answers))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"Upgrade {OLD} -> {NEW}: a minor upgrade" in logged
    assert "  worker2-upgrade (on worker2, batch 2 of 2):" in logged


@pytest.mark.parametrize("version", [OLD, NEW])
def test_no_upgrade_is_logged_for_a_fresh_build(caplog, version):
    config = stack_file_config("lab")
    config["kubernetes"] = {**config.get("kubernetes", {}), "version": version}
    with caplog.at_level(logging.INFO):
        evaluate(config)
    assert "Upgrade " not in "\n".join(r.getMessage() for r in caplog.records)
