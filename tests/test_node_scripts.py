"""The node scripts: shellcheck-clean, and rendered into commands that keep every value intact."""
import shlex
import shutil
import subprocess

import pytest

from components.cluster.node_preparation import prepare_inputs
from components.cluster.node_scripts import SCRIPTS_DIR, render_command, script_text
from components.stack_config import parse_stack_config

SCRIPTS = sorted(p.name for p in SCRIPTS_DIR.glob("*.sh") if p.name != "lib.sh")


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (.ci/run installs it with apt-get)")
def test_shellcheck_passes_on_every_script():
    files = [str(p) for p in SCRIPTS_DIR.glob("*.sh")]
    result = subprocess.run(["shellcheck", "--severity=style", *files], capture_output=True,
                            text=True, cwd=SCRIPTS_DIR.parents[1])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_is_strict_and_inlines_lib(name):
    text = script_text(name)
    assert "set -euo pipefail" in text
    assert "wait_for_dpkg_lock()" in text  # lib.sh is inside, nothing to copy first
    assert 'dirname "${BASH_SOURCE[0]}"' not in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_command_round_trips_values_through_the_shell():
    tricky = {"NODE_NAME": "it's a \"node\" $(rm -rf /) `x`", "ACTION": "wait"}
    words = shlex.split(render_command("node-membership.sh", tricky))
    assert words[:3] == ["sudo", "-n", "env"]
    assert words[3:5] == ["ACTION=wait", f"NODE_NAME={tricky['NODE_NAME']}"]
    assert words[5:7] == ["bash", "-c"]
    assert words[7] == script_text("node-membership.sh")
    assert words[8] == "node-membership.sh"


def test_command_really_passes_values_to_bash():
    # Run the rendered command locally (without sudo) on a script that only echoes.
    command = render_command("node-membership.sh", {"ACTION": "bogus", "NODE_NAME": "a b'c"},
                             sudo=False)
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown ACTION 'bogus'" in result.stderr


def test_bad_input_names_are_refused():
    with pytest.raises(ValueError):
        render_command("prepare.sh", {"lower": "x"})


def test_prepare_inputs_pin_the_configured_patch():
    config = parse_stack_config({
        "nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
        "kubernetes": {"version": "1.31.3"}}, has_secret_private_key=True)
    inputs = prepare_inputs(config.control_plane, config.kubernetes)
    assert inputs["K8S_PACKAGE_VERSION"] == "1.31.3-1.1"
    assert inputs["K8S_VERSION_TAG"] == "v1.31.3"
    assert inputs["K8S_APT_REPO"] == "https://pkgs.k8s.io/core:/stable:/v1.31/deb/"
    assert inputs["PAUSE_IMAGE"] == "registry.k8s.io/pause:3.10"
    assert inputs["NODE_ROLE"] == "control-plane"
