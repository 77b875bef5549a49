"""Run a user command under the project's virtualenv, making it on first use.

The commands in scripts/ need pulumi, paramiko and PyYAML. Called first thing
(before any of those is imported), `ensure()` re-executes the command with
venv/bin/python, after creating venv/ and installing requirements.txt when it
is missing or older than requirements.txt. The commands call it only under
`if __name__ == "__main__"`: importing one (the tests do) must not replace the
importing process. Standard library only.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "venv"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"
# Set to 1 to run with whatever Python started the command (it must have the packages).
OPT_OUT = "KSERVE_CLUSTER_NO_VENV"


def _in_project_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def _set_up(command: str, python: Path) -> None:
    print(f"{command}: setting up the project's virtualenv in {VENV} "
          "(pip install -r requirements.txt; once)...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "-r", str(REQUIREMENTS)], check=True)
    except (subprocess.CalledProcessError, OSError) as error:
        print(f"{command}: could not set up {VENV} ({error}). Check that python3-venv is "
              "installed and that PyPI is reachable, or run the command with a Python that has "
              f"the packages of requirements.txt and {OPT_OUT}=1.", file=sys.stderr)
        sys.exit(2)
    STAMP.write_text(_requirements_digest())


def set_up_if_needed(command: str) -> Path:
    """venv/ with the packages of requirements.txt; made or remade only when needed.
    Returns its python."""
    python = VENV / "bin" / "python"
    current = STAMP.is_file() and STAMP.read_text().strip() == _requirements_digest()
    if not python.exists() or not current:
        _set_up(command, python)
    return python


def ensure() -> None:
    """Return if this Python is the project's venv (or the user opted out); otherwise
    set the venv up if needed and re-execute the command in it."""
    if _in_project_venv() or os.environ.get(OPT_OUT) == "1":
        return
    python = set_up_if_needed(Path(sys.argv[0]).name)
    os.execv(str(python), [str(python), sys.argv[0], *sys.argv[1:]])


if __name__ == "__main__":
    # scripts/up.sh: make the venv the Pulumi CLI runs the program with (Pulumi.yaml).
    set_up_if_needed(sys.argv[1] if len(sys.argv) > 1 else "project_venv.py")
