"""scripts/plan.py: the offline plan and its deployment graph."""
import json
import re
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from components.offline.program import Evaluation, Registration, evaluate
from components.stack_file import stack_file_config
from components.plan.build import (NOT_RUN_NOTE, PLACEHOLDER_PRIVATE_KEY, SCRIPT_ESTIMATES,
                                   build_plan, plan_config, script_name)
from components.plan.text import render_text, to_json
from components.plan.svg import render_svg

ROOT = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"


def run_plan(*args, path=None):
    """plan.py as a user runs it, with a PATH that has no Pulumi CLI on it."""
    env = dict(os.environ, PATH=path or os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and not shutil.which("pulumi", path=p)))
    assert shutil.which("pulumi", path=env["PATH"]) is None
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "plan.py"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    graph = tmp_path_factory.mktemp("plan") / "lab.svg"
    result = run_plan("lab", "--graph", str(graph))
    assert result.returncode == 0, result.stderr
    return result.stdout, graph


@pytest.fixture(scope="module")
def lab_evaluation():
    return evaluate(stack_file_config("lab"))


def project_components(evaluation):
    return [r for r in evaluation.registrations
            if r.type.startswith("kserve-cluster:") and not r.custom]


def test_names_every_layer_component_and_node(lab_run, lab_evaluation):
    output, _ = lab_run
    components = project_components(lab_evaluation)
    assert components, "the program registered no component"
    for component in components:
        label = f"{component.type.removeprefix('kserve-cluster:')} {component.name}"
        assert label in output, f"{label} missing from the plan"
    for node in stack_file_config("lab")["nodes"]:
        assert f"{node['name']}  {node['address']}  {node['role']}" in output
        assert f"{node['name']} ({node['address']}):" in output  # its commands section


def test_says_nothing_ran(lab_run):
    output, _ = lab_run
    assert NOT_RUN_NOTE in output
    assert "No remote command was run" in output


def test_lists_every_resource_and_every_command_on_its_node(lab_run, lab_evaluation):
    output, _ = lab_run
    for registration in lab_evaluation.registrations:
        if registration.custom or not registration.type.startswith(("kserve-cluster:", "pulumi:pulumi:")):
            assert f"+ {registration.name} [{registration.type}]" in output
    address = {n["name"]: n["address"] for n in stack_file_config("lab")["nodes"]}
    node_of = {a: n for n, a in address.items()}
    for command in lab_evaluation.commands():
        node = node_of[command.inputs["connection"]["host"]]
        script = script_name(command.inputs["create"])
        assert script and script.endswith(".sh")
        assert f"runs {script} on {node} ({address[node]})" in output


def test_charts_with_their_pinned_versions(lab_run):
    from components import versions
    output, _ = lab_run
    chart_line = (f"Helm chart {versions.CALICO_CHART} {versions.CALICO_VERSION} "
                  f"from {versions.CALICO_CHART_REPO}")
    assert chart_line in output.split("Charts and manifests:")[1]


def test_critical_path_is_a_chain_of_real_dependencies(lab_evaluation):
    plan = build_plan("lab", stack_file_config("lab"), lab_evaluation)
    path = [plan.steps[u] for u in plan.critical_path]
    # Preflight gates every node; then the longest step of all, preparing the control plane.
    assert path[0].name.endswith("-preflight")
    assert path[1].name == "cp1-prepare"
    assert path[-1].finish == plan.total_estimate
    for earlier, later in zip(path, path[1:]):
        assert earlier.urn in later.deps, f"{later.name} does not wait for {earlier.name}"
        assert later.start == earlier.finish
    assert plan.total_estimate == sum(step.estimate for step in path)
    assert "cp1-kubeadm-init" in [s.name for s in path]


def test_graph_is_valid_svg_with_every_step_and_the_critical_path(lab_run, lab_evaluation):
    _, graph = lab_run
    root = ET.parse(graph).getroot()
    assert root.tag == f"{SVG}svg"
    steps = [g for g in root.iter(f"{SVG}g") if "step" in g.get("class", "").split()]
    plan = build_plan("lab", stack_file_config("lab"), lab_evaluation)
    assert sorted(g.get("data-urn").rsplit("::", 1)[1] for g in steps) == \
        sorted(s.name for s in plan.steps.values())
    critical = {g.get("data-urn").rsplit("::", 1)[1] for g in steps
                if "critical" in g.get("class").split()}
    assert critical == {plan.steps[u].name for u in plan.critical_path}
    critical_edges = [p for p in root.iter(f"{SVG}path") if "critical" in p.get("class", "")]
    assert len(critical_edges) == len(plan.critical_path) - 1
    bands = " ".join(t.text or "" for g in root.iter(f"{SVG}g") if g.get("class") == "band"
                     for t in g.iter(f"{SVG}text"))
    for component in project_components(lab_evaluation):
        assert component.type.removeprefix("kserve-cluster:") in bands


def test_json_output_has_every_step(lab_evaluation):
    result = run_plan("lab", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = [s["name"] for layer in data["layers"] for g in layer["groups"] for s in g["steps"]]
    expected = [r.name for r in lab_evaluation.registrations
                if r.custom or not r.type.startswith(("kserve-cluster:", "pulumi:pulumi:"))]
    assert sorted(names) == sorted(expected)
    assert data["criticalPath"]["steps"][0].endswith("-preflight")
    assert data["criticalPath"]["steps"][1] == "cp1-prepare"


def png_converter():
    """What components/plan/svg.py rasterises with here, or None."""
    if shutil.which("rsvg-convert"):
        return "rsvg-convert"
    try:
        import cairosvg  # noqa: F401
    except ImportError:
        return None
    return "cairosvg"


def test_png_is_written(tmp_path):
    """Where a rasteriser is installed (CI installs librsvg2-bin): a real PNG, as large as
    the SVG. Without one the test skips, except under CI (CI=true), where it fails."""
    if png_converter() is None:
        reason = ("PNG output needs rsvg-convert (apt-get install librsvg2-bin, which .ci/run "
                  "installs) or the cairosvg package; neither is installed here")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    svg, png = tmp_path / "lab.svg", tmp_path / "lab.png"
    assert run_plan("lab", "--graph", str(svg)).returncode == 0
    result = run_plan("lab", "--graph", str(png))
    assert result.returncode == 0, result.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    root = re.search(r'<svg [^>]*width="(\d+)" height="(\d+)"', svg.read_text())
    assert (width, height) == (int(root.group(1)), int(root.group(2)))
    assert len(data) > 10_000  # boxes and text, not an empty canvas


def test_png_without_a_rasteriser_is_refused_with_the_reason(tmp_path, monkeypatch):
    from components.plan import svg
    monkeypatch.setattr(svg.shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # `import cairosvg` fails
    target = tmp_path / "lab.png"
    with pytest.raises(svg.GraphOutputError, match="PNG output needs rsvg-convert"):
        svg._svg_to_png('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', target)
    assert not target.exists()


def test_unknown_stack_and_bad_graph_name_are_refused(tmp_path):
    missing = run_plan("no-such-stack")
    assert missing.returncode == 2 and "stacks/Pulumi.no-such-stack.yaml" in missing.stderr
    bad = run_plan("lab", "--graph", str(tmp_path / "lab.jpg"))
    assert bad.returncode == 2 and ".svg or .png" in bad.stderr


def test_a_key_file_in_the_stack_is_not_needed(tmp_path):
    config = stack_file_config("lab")
    config["ssh"] = {"user": "ubuntu", "privateKeyPath": str(tmp_path / "absent-key")}
    plan = plan_config("lab", config)
    assert any("placeholder" in note for note in plan.notes)
    assert any(s.script == "prepare.sh" for s in plan.steps.values())


def test_placeholder_key_is_not_the_test_key():
    from components.offline.program import FAKE_PRIVATE_KEY
    assert PLACEHOLDER_PRIVATE_KEY != FAKE_PRIVATE_KEY


# --- resource types plan.py knows only by their shape, and types it does not know --

def registration(type_, name, parent, inputs=None, deps=(), custom=True, provider=""):
    return Registration(type=type_, name=name, urn=f"urn:pulumi:t::p::{type_}::{name}",
                        parent=parent, custom=custom, inputs=inputs or {},
                        dependencies=list(deps), provider=provider, deleted_with="")


@pytest.fixture
def serving_like_evaluation():
    stack = registration("pulumi:pulumi:Stack", "p-t", "", custom=False)
    layer = registration("kserve-cluster:serving:Serving", "serving", stack.urn, custom=False)
    runtimes = registration("kserve-cluster:serving:Runtimes", "runtimes", layer.urn, custom=False)
    provider = registration("pulumi:providers:kubernetes", "k8s", stack.urn)
    crds = registration("kubernetes:yaml/v2:ConfigGroup", "kserve-crds", layer.urn,
                        {"files": ["https://example.invalid/v0.13.1/kserve.yaml"]},
                        custom=False, provider=f"{provider.urn}::id")
    patch = registration("kubernetes:core/v1:ConfigMapPatch", "config-domain", layer.urn,
                         {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "config-domain", "namespace": "knative-serving"}},
                         deps=[crds.urn])
    runtime = registration("kubernetes:serving.kserve.io/v1alpha1:ServingRuntime", "tf-rt",
                           runtimes.urn,
                           {"metadata": {"name": "tf-rt", "namespace": "kserve-test"},
                            "spec": {"supportedModelFormats": [{"name": "tensorflow", "version": "2"}],
                                     "containers": [{"image": "tensorflow/serving:2.6.2"}]}},
                           deps=[crds.urn])
    model = registration("kubernetes:serving.kserve.io/v1beta1:InferenceService", "tf-flower",
                         layer.urn,
                         {"metadata": {"name": "tf-flower", "namespace": "kserve-test"},
                          "spec": {"predictor": {"canaryTrafficPercent": 10, "model": {
                              "modelFormat": {"name": "tensorflow"},
                              "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}}}},
                         deps=[runtimes.urn])  # a dependency on a component: on its children
    gizmo = registration("acme:widgets:Gizmo", "gizmo", layer.urn, {"size": 3}, deps=[model.urn])
    return Evaluation([stack, layer, runtimes, provider, crds, patch, runtime, model, gizmo], {})


def test_models_runtimes_manifests_and_unknown_types_are_listed(serving_like_evaluation):
    plan = build_plan("t", {"nodes": []}, serving_like_evaluation)
    text = render_text(plan)
    assert "manifest https://example.invalid/v0.13.1/kserve.yaml" in text
    assert "ConfigMapPatch knative-serving/config-domain (v1)" in text
    runtimes = text.split("Serving runtimes:")[1].split("Models:")[0]
    assert "ServingRuntime kserve-test/tf-rt: tensorflow:2 with tensorflow/serving:2.6.2" in runtimes
    models = text.split("Models:")[1]
    assert ("model kserve-test/tf-flower: tensorflow from "
            "gs://kfserving-examples/models/tensorflow/flowers, canary 10%") in models
    assert "+ gizmo [acme:widgets:Gizmo]" in text
    assert "Resource types listed without details: acme:widgets:Gizmo" in text
    assert "== Layer serving:Serving serving ==" in text
    assert "-- serving:Runtimes runtimes" in text


def test_a_dependency_on_a_component_waits_for_its_children(serving_like_evaluation):
    plan = build_plan("t", {"nodes": []}, serving_like_evaluation)
    by_name = {s.name: s for s in plan.steps.values()}
    assert by_name["tf-rt"].urn in by_name["tf-flower"].deps
    assert by_name["k8s"].urn in by_name["kserve-crds"].deps  # the provider edge
    assert [plan.steps[u].name for u in plan.critical_path] == \
        ["k8s", "kserve-crds", "tf-rt", "tf-flower", "gizmo"]
    ET.fromstring(render_svg(plan))  # still a well-formed picture
    assert to_json(plan)["criticalPath"]["steps"][-1] == "gizmo"


def test_every_script_the_program_runs_has_an_estimate(lab_evaluation):
    # Without one the critical path falls back to a guess; name each script the program runs.
    scripts = {script_name(c.inputs["create"]) for c in lab_evaluation.commands()}
    assert scripts and None not in scripts
    assert scripts <= set(SCRIPT_ESTIMATES), scripts - set(SCRIPT_ESTIMATES)


def test_the_committed_lab_graph_is_current(tmp_path):
    # docs/operations.md shows docs/plan-lab.svg: it must be what plan.py draws for the lab today.
    fresh = tmp_path / "plan-lab.svg"
    result = run_plan("lab", "--graph", str(fresh))
    assert result.returncode == 0, result.stderr
    committed = Path(__file__).resolve().parents[1] / "docs" / "plan-lab.svg"
    assert fresh.read_text() == committed.read_text(), \
        "docs/plan-lab.svg is stale: run venv/bin/python scripts/plan.py lab --graph docs/plan-lab.svg"
