"""Importing a command of scripts/ has no side effects: the project venv is set up
and the command re-executed in it only when the file runs as a command. Tests
import the commands (`import predict`) under whatever Python runs pytest."""
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))

# Run by a Python outside the venv, with the venv's packages on sys.path: anything
# that would set the venv up or replace the process records itself and stops.
CHILD = """
import os, subprocess, sys
sys.path[:0] = {paths!r}
from components import project_venv
calls = []
def recorder(name):
    def called(*args, **kwargs):
        calls.append(name)
        print("called on import:", name, flush=True)
        os._exit(3)
    return called
for owner, attr in ((project_venv, "set_up_if_needed"), (os, "execv"), (os, "execve"),
                    (subprocess, "run"), (subprocess, "check_call")):
    setattr(owner, attr, recorder(attr))
import importlib
importlib.import_module({module!r})
print("imported under", sys.prefix)
"""


def outside_python() -> str:
    """The interpreter the venv was made from (itself when pytest runs outside a venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


@pytest.mark.parametrize("module", SCRIPTS)
def test_importing_a_command_neither_sets_up_nor_re_executes(module):
    paths = [str(ROOT), str(ROOT / "scripts"), *site.getsitepackages()]
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "KSERVE_CLUSTER_NO_VENV")}
    result = subprocess.run([outside_python(), "-c", CHILD.format(paths=paths, module=module)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "called on import" not in result.stdout, result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    prefix = result.stdout.split("imported under ", 1)[1].strip()
    assert Path(prefix).resolve() != (ROOT / "venv").resolve()  # the child ran outside it
