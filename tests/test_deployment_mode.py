"""KServe's deployment-mode rename (v0.16) and the webhook rule that refuses updates of
InferenceServices whose annotation is not the recorded mode's name (kserve/kserve at
v0.16.0 and v0.20.0, pkg/apis/serving/v1beta1/inference_service_validation.go
validateDeploymentMode; issues #4798, #5885): the rule as a table, the annotation the
program sets, and scripts/node/kserve-mode-annotations.sh run with a stand-in kubectl."""
import os
import subprocess

import pytest

from components.cluster.node_scripts import script_text
from components.serving.deployment_mode import accepted_annotation, refuses

# (KServe, recorded mode, annotation after the update, refused?)
WEBHOOK = [
    # v0.16-v0.18: raw annotation against the raw status.
    ("v0.16.0", "RawDeployment", "RawDeployment", False),  # made on 0.15, left alone
    ("v0.16.0", "RawDeployment", "Standard", True),  # "rewrite to the new name": refused
    ("v0.16.0", "Standard", "RawDeployment", True),  # #5885 on 0.16
    ("v0.16.0", "Knative", "Serverless", True),  # #4798
    ("v0.16.0", "Knative", "Knative", False),
    ("v0.16.0", "Serverless", None, False),  # no annotation: never checked
    ("v0.16.0", "", "Standard", False),  # no recorded mode yet (a create)
    ("v0.17.1", "RawDeployment", "Standard", True),
    ("v0.18.1", "Serverless", "Serverless", False),
    # v0.19+: raw annotation against the status normalized to the new name.
    ("v0.20.0", "RawDeployment", "RawDeployment", True),  # #5885: unchanged, yet refused
    ("v0.20.0", "RawDeployment", "Standard", False),
    ("v0.20.0", "Serverless", "Knative", False),
    ("v0.20.0", "Standard", "RawDeployment", True),
    ("v0.20.0", "Knative", None, False),
    ("v0.19.0", "Serverless", "Serverless", True),
    # Before the rename the names never differ from what was recorded.
    ("v0.15.2", "RawDeployment", "RawDeployment", False),
]


@pytest.mark.parametrize("kserve,status,annotation,refused", WEBHOOK)
def test_the_webhook_rule(kserve, status, annotation, refused):
    assert refuses(kserve, status, annotation) is refused


@pytest.mark.parametrize("kserve", ["v0.15.2", "v0.16.0", "v0.17.1", "v0.18.1", "v0.19.0",
                                    "v0.20.0"])
@pytest.mark.parametrize("status", ["Serverless", "RawDeployment", "Knative", "Standard"])
def test_the_annotation_set_is_accepted_by_that_webhook(kserve, status):
    assert not refuses(kserve, status, accepted_annotation(kserve, status))


def test_no_recorded_mode_needs_no_annotation():
    assert accepted_annotation("v0.20.0", "") is None


def stand_in(tmp_path, rows):
    """A kubectl that lists `rows` (namespace|name|status|annotation) and logs annotate calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    listing = "\\n".join(rows)
    kubectl.write_text(
        "#!/bin/bash\n"
        f'case "$*" in *" get inferenceservices"*) printf "{listing}\\n";; '
        f'*" annotate "*) echo "$*" >>"{tmp_path}/calls";; *) exit 2;; esac\n')
    kubectl.chmod(0o755)
    return bin_dir


def run(tmp_path, rows, normalize):
    env = {**os.environ, "PATH": f"{stand_in(tmp_path, rows)}:{os.environ['PATH']}",
           "NORMALIZE": normalize}
    result = subprocess.run(["bash", "-c", script_text("kserve-mode-annotations.sh"), "x"],
                            env=env, capture_output=True, text=True, timeout=30)
    calls = tmp_path / "calls"
    return result, (calls.read_text().splitlines() if calls.exists() else [])


ROWS = ["ml|raw-old|RawDeployment|RawDeployment", "ml|raw-new|Standard|Standard",
        "ml|kn-old|Serverless|", "ml|fresh||", "ml|mixed|Standard|RawDeployment"]


def test_before_0_19_the_recorded_name_is_written_where_they_differ(tmp_path):
    result, calls = run(tmp_path, ROWS, "false")
    assert result.returncode == 0, result.stderr
    assert calls == ["--kubeconfig /etc/kubernetes/admin.conf -n ml annotate --overwrite "
                     "inferenceservices.serving.kserve.io mixed serving.kserve.io/deploymentMode=Standard"]


def test_from_0_19_the_new_name_is_written(tmp_path):
    result, calls = run(tmp_path, ROWS, "true")
    assert result.returncode == 0, result.stderr
    written = sorted(c.rsplit(" ", 2)[-2:][0] + " " + c.rsplit("=", 1)[1] for c in calls)
    assert written == ["mixed Standard", "raw-old Standard"]
    assert "1 changed" not in result.stdout and "2 changed" in result.stdout
