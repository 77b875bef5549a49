"""preflight.py --trust writes host keys into the stack file, keeping everything else."""
import shutil
from pathlib import Path

import pytest
import yaml

from components.preflight.host_key_pins import set_host_keys

ROOT = Path(__file__).resolve().parents[1]
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


@pytest.fixture
def lab_file(tmp_path):
    path = tmp_path / "Pulumi.lab.yaml"
    shutil.copy(ROOT / "stacks" / "Pulumi.lab.yaml", path)
    return path


def nodes(path):
    return {n["name"]: n for n in yaml.safe_load(path.read_text())["config"]["kserve-cluster:nodes"]}


def test_keys_written_comments_and_other_keys_kept(lab_file):
    before = lab_file.read_text()
    set_host_keys(lab_file, {"cp1": KEY_A, "worker2": KEY_B})
    after = lab_file.read_text()
    parsed = nodes(lab_file)
    assert parsed["cp1"]["hostKey"] == KEY_A and parsed["worker2"]["hostKey"] == KEY_B
    assert "hostKey" not in parsed["worker1"]
    assert parsed["cp1"]["address"] == "10.0.2.21" and parsed["worker2"]["role"] == "worker"
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    assert len(after.splitlines()) == len(before.splitlines()) + 2


def test_re_trust_replaces_the_old_key(lab_file):
    set_host_keys(lab_file, {"cp1": KEY_A})
    set_host_keys(lab_file, {"cp1": KEY_B})
    assert nodes(lab_file)["cp1"]["hostKey"] == KEY_B
    assert lab_file.read_text().count("hostKey:") == 1


def test_unknown_node_is_refused_and_nothing_written(lab_file):
    before = lab_file.read_text()
    with pytest.raises(ValueError, match="nope"):
        set_host_keys(lab_file, {"nope": KEY_A})
    assert lab_file.read_text() == before
