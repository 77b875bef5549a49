"""Turn a script from scripts/node/ into one command line for remote.Command.

Pure: no Pulumi. The script's `source lib.sh` line is replaced by lib.sh itself,
and the inputs are passed as `env NAME=value` in front of `bash -c`, because
remote.Command's `environment` only works when the server's AcceptEnv allows it.
"""
from __future__ import annotations

import re
import shlex
from functools import lru_cache
from pathlib import Path

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts" / "node"
_SOURCE_LIB = re.compile(r'^\. "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/lib\.sh"$', re.M)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@lru_cache(maxsize=None)
def script_text(name: str) -> str:
    """The script with lib.sh inlined, ready to run with `bash -c`."""
    body = (SCRIPTS_DIR / name).read_text()
    if not _SOURCE_LIB.search(body):
        raise ValueError(f"scripts/node/{name} does not source lib.sh the expected way")
    lib = (SCRIPTS_DIR / "lib.sh").read_text()
    return _SOURCE_LIB.sub(lambda _: lib.rstrip("\n"), body, count=1)


def render_command(name: str, env: dict[str, str] | None = None, sudo: bool = True) -> str:
    """`sudo -n env A=1 B=2 bash -c '<script>' <name>` with every value quoted.

    `sudo -n` fails at once instead of waiting for a password nobody will type.
    """
    env = env or {}
    for key, value in env.items():
        if not _ENV_NAME.match(key) or not isinstance(value, str):
            raise ValueError(f"bad script input {key!r}={value!r}")
    assignments = [f"{key}={shlex.quote(value)}" for key, value in sorted(env.items())]
    words = (["sudo", "-n"] if sudo else []) + ["env"] + assignments
    return " ".join(words + ["bash", "-c", shlex.quote(script_text(name)), shlex.quote(name)])
