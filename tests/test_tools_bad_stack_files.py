"""Every user command reports a bad stack file the same way: file, line and column
for YAML errors, every problem with its fix, a misspelt namespace with the close
match, and never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB = (ROOT / "stacks" / "Pulumi.lab.yaml").read_text()

# Each tool with the arguments that make it read stacks/Pulumi.broken.yaml.
TOOLS = {
    "plan.py": ["broken"],
    "preflight.py": ["--stack", "broken", "--key-file", "/dev/null"],
    "predict.py": ["--stack", "broken", "--model", "tf-flower", "/dev/null"],
}


def run_tool(tool, stacks_dir):
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / tool), *TOOLS[tool],
                           "--stacks-dir", str(stacks_dir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def stack(tmp_path, text):
    (tmp_path / "Pulumi.broken.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_yaml_syntax_error_names_file_line_and_column(tool, tmp_path):
    # Line 4 opens a flow mapping that never closes.
    broken = LAB.replace("kserve-cluster:ssh:", "kserve-cluster:ssh: {user: ubuntu\n  oops:", 1)
    result = run_tool(tool, stack(tmp_path, broken))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "<unicode string>" not in result.stderr
    assert "Pulumi.broken.yaml:" in result.stderr and "YAML syntax error" in result.stderr
    line = next(l for l in result.stderr.splitlines() if "YAML syntax error" in l)
    position = line.split("Pulumi.broken.yaml:", 1)[1].split(":")[:2]
    assert all(part.isdigit() for part in position), line


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_misspelt_project_prefix_is_reported_by_every_tool(tool, tmp_path):
    text = LAB + "  kserve-clustr:serving:\n    ingressNodePort: 31000\n"
    result = run_tool(tool, stack(tmp_path, text))
    assert result.returncode == (6 if tool == "predict.py" else 2), result.stderr
    assert "Traceback" not in result.stderr
    assert "kserve-clustr:serving" in result.stderr
    assert "did you mean 'kserve-cluster'?" in result.stderr


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_config_problems_are_listed_with_their_fix(tool, tmp_path):
    text = LAB.replace("address: 10.0.2.22", "address: 10.0.2.300")
    result = run_tool(tool, stack(tmp_path, text))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "unexpected answer" not in result.stderr
    assert "kserve-cluster:nodes[1] (worker1).address = '10.0.2.300'" in result.stderr
    assert "Fix:" in result.stderr


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_missing_stack_file_is_named(tool, tmp_path):
    result = run_tool(tool, tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Pulumi.broken.yaml: no such stack file" in result.stderr
