"""The TorchServe example: a real layout, an archive built from the committed
handler, a handler that answers, a stack that validates and plans."""
import importlib.util
import json
import zipfile

from components.plan.build import SCRIPT_ESTIMATES, plan_stack
from components.plan.text import render_text
from components.stack_file import parse_stack_file
from components.storage.files import ROOT

EXAMPLE = ROOT / "examples" / "torchserve"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_archive_is_what_build_mar_makes(tmp_path):
    build = load("build_mar", EXAMPLE / "build_mar.py")
    rebuilt = build.build(tmp_path / "adder.mar")
    committed = EXAMPLE / "model" / "model-store" / "adder.mar"
    assert rebuilt.read_bytes() == committed.read_bytes(), "run examples/torchserve/build_mar.py"
    with zipfile.ZipFile(committed) as archive:
        manifest = json.loads(archive.read("MAR-INF/MANIFEST.json"))
        handler = archive.read("adder_handler.py").decode()
    assert manifest["model"] == {"modelName": "adder", "handler": "adder_handler.py",
                                 "modelVersion": "1.0"}
    assert handler == (EXAMPLE / "adder_handler.py").read_text()


def test_the_handler_answers_each_instance():
    handler = load("adder_handler", EXAMPLE / "adder_handler.py")
    assert handler.handle(None, None) is None  # TorchServe's load-time call
    request = json.loads((EXAMPLE / "request.json").read_text())
    assert handler.handle(request["instances"], None) == [6, 0.75]
    answers = handler.handle([{"data": [2, 3]}, 4, "x"], None)
    assert answers[:2] == [5, 4] and "expected a list of numbers" in answers[2]["error"]


def test_the_example_stack_validates_without_warnings():
    config = parse_stack_file("torchserve-example")
    assert config.warnings == ()
    [model] = config.serving.models
    assert (model.name, model.served_name, model.format) == ("torchserve", "adder", "pytorch")
    assert config.storage.settings.provisioner == "local-path"


def test_the_plan_shows_uploads_and_what_happens_to_the_data():
    plan = plan_stack("torchserve-example")
    text = render_text(plan)
    assert "Uploads and data (2 file(s)" in text
    steps = {s.name: s for s in plan.steps.values()}
    upload = steps["upload-kserve-test-models/torchserve"]
    assert "removing this upload entry deletes torchserve from the claim" in upload.summary
    assert "pulumi destroy skips it" in upload.summary
    claim = steps["claim-kserve-test-models"]
    assert "removing the store deletes the claim and its files" in claim.summary
    assert "/opt/local-path-provisioner" in claim.summary
    copy = steps["stage-kserve-test-models/torchserve/model-store/adder.mar"]
    size = (EXAMPLE / "model" / "model-store" / "adder.mar").stat().st_size
    assert copy.kind == "upload" and copy.details["bytes"] == size
    assert f"({size} bytes) to cp1:~/.kserve-cluster/uploads/" in copy.summary
    scripts = {s.script for s in plan.steps.values() if s.kind == "command"}
    assert "upload-to-claim.sh" in scripts and scripts <= set(SCRIPT_ESTIMATES)
