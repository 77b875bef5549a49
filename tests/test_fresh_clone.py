"""The commands users run work as the README shows them, from a fresh clone:
started by their #! line with a python3 that lacks the project's packages, they
set up venv/ (once) and run in it.

The clone is of this working tree's committed HEAD. Setting up the venv installs
requirements.txt from the package index, once for the whole module (~25 s).
"""
import os
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTING_UP = "setting up the project's virtualenv"
# What a user runs, with arguments that need no stack of machines.
HELP_COMMANDS = ["predict.py", "preflight.py", "bench_lab.py", "bench_preflight.py"]


def clean_env() -> dict:
    """The user's environment: no venv active, no project venv on PATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "KSERVE_CLUSTER_NO_VENV")}
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                  if d and not Path(d).resolve().is_relative_to(ROOT))
    return env


def why_not() -> str | None:
    """Why this machine cannot run the fresh-clone test, or None."""
    env = clean_env()
    python3 = shutil.which("python3", path=env["PATH"])
    if python3 is None:
        return "no python3 on PATH"
    if shutil.which("git") is None:
        return "git is not installed"
    probe = subprocess.run([python3, "-c", "import pulumi"], env=env, capture_output=True)
    if probe.returncode == 0:
        return (f"the python3 on PATH ({python3}) has pulumi installed, so it cannot show "
                "that the commands set up their own venv")
    probe = subprocess.run([python3, "-c", "import ensurepip, venv"], env=env, capture_output=True)
    if probe.returncode != 0:
        return f"{python3} cannot make virtualenvs (install python3-venv)"
    index = urlparse(os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple"))
    try:
        socket.create_connection((index.hostname, index.port or 443), timeout=5).close()
    except OSError as error:
        return f"the package index {index.hostname} is not reachable ({error})"
    return None


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    reason = why_not()
    if reason:
        pytest.skip(f"fresh-clone test: {reason}")
    target = tmp_path_factory.mktemp("fresh") / "kserve-cluster"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True, capture_output=True)
    # The first command sets up the venv; the others reuse it.
    first = subprocess.run([str(target / "scripts" / "plan.py"), "lab"], cwd=target, env=clean_env(),
                           capture_output=True, text=True, timeout=900)
    return target, first


def test_the_clone_is_this_trees_head(clone):
    target, _ = clone
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    cloned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=target, capture_output=True, text=True)
    assert cloned.stdout == head.stdout and cloned.stdout.strip()


def test_plan_sets_up_the_venv_and_plans_the_lab_stack(clone):
    target, first = clone
    assert first.returncode == 0, first.stderr[-3000:]
    assert SETTING_UP in first.stderr
    assert (target / "venv" / "bin" / "python").exists()
    assert (target / "venv" / ".requirements.sha256").is_file()
    assert "cp1" in first.stdout and "worker2" in first.stdout  # the lab stack's nodes


@pytest.mark.parametrize("command", HELP_COMMANDS)
def test_every_command_runs_from_its_hash_bang_line_in_the_venv(clone, command):
    target, first = clone
    assert first.returncode == 0
    script = target / "scripts" / command
    assert os.access(script, os.X_OK), f"{command} is not executable in the clone"
    assert script.read_text().startswith("#!/usr/bin/env python3\n")
    result = subprocess.run([str(script), "--help"], cwd=target, env=clean_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.lower().startswith("usage:")
    assert SETTING_UP not in result.stderr  # made once, by the first command


def test_up_sh_uses_the_same_venv(clone, tmp_path):
    target, first = clone
    assert first.returncode == 0
    stand_in = tmp_path / "pulumi"  # the CLI cannot be installed here; up.sh only needs to find one
    stand_in.write_text("#!/bin/sh\necho \"pulumi $*\"\n")
    stand_in.chmod(0o755)
    env = clean_env()
    env.update(PATH=f"{tmp_path}{os.pathsep}{env['PATH']}", PULUMI_CONFIG_PASSPHRASE="not-a-real-one")
    env.pop("PULUMI_BACKEND_URL", None)
    env.pop("SSH_KEY_FILE", None)
    result = subprocess.run([str(target / "scripts" / "up.sh"), "lab", "--yes"], cwd=target, env=env,
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert SETTING_UP not in result.stderr  # the venv plan.py made is current for up.sh too
    assert "pulumi up --stack lab --yes" in result.stdout
