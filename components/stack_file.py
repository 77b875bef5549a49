"""Reading stacks/Pulumi.<stack>.yaml from disk, for the tools and the tests.

`pulumi up` gets its config from the Pulumi CLI; the tools (plan, preflight,
predict, loadtest) read the same file themselves and validate it the same way,
every namespace included. A YAML syntax error becomes a ConfigError naming the
file, the line and the column, never a traceback.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from components.config_secrets import holds_encrypted
from components.problems import PROJECT, ConfigError, Problems
from components.stack_config import (
    SECRET_PRIVATE_KEY, StackConfig, parse_namespaced_config, split_namespaces)

ROOT = Path(__file__).resolve().parents[1]
STACKS_DIR = ROOT / "stacks"


def stack_file(stack: str, stacks_dir: Optional[Path] = None) -> Path:
    return (stacks_dir or STACKS_DIR) / f"Pulumi.{stack}.yaml"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` block of a stack file, keys as written (`namespace:key`).

    Raises ConfigError for a missing file, a YAML syntax error (file:line:column
    and what is wrong) or a file that is not a stack file.
    """
    shown = _shown(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError([f"{shown}: no such stack file. Fix: create it (copy "
                           "stacks/Pulumi.lab.yaml) or check the stack name."]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        what = " ".join(part for part in (error.context, error.problem) if part)
        raise ConfigError([f"{where}: YAML syntax error: {what}. Fix: correct the YAML at that "
                           "line (indentation, a missing ':' or an unclosed quote or bracket)."]) \
            from None
    except yaml.YAMLError as error:
        raise ConfigError([f"{shown}: not readable as YAML ({error}). Fix: correct the file."]) \
            from None
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise ConfigError([f"{shown}: not a stack file: expected a mapping with a `config:` "
                           f"block of `{PROJECT}:<key>` entries. Fix: see stacks/Pulumi.lab.yaml."])
    return dict(data.get("config") or {})


def stack_file_config(stack: str, stacks_dir: Optional[Path] = None) -> dict[str, Any]:
    """The project's keys of a stack file, without the prefix.

    Keys of other namespaces are left out here; `parse_stack_file` reports them.
    """
    problems = Problems()
    return split_namespaces(problems, read_stack_file(stack_file(stack, stacks_dir)))


def parse_stack_file(stack: str, stacks_dir: Optional[Path] = None,
                     path_exists: Callable[[str], bool] = os.path.isfile) -> StackConfig:
    """The stack file validated as the program validates it, for the tools that
    need no SSH key from it: its encrypted `sshPrivateKey` secret (which only the
    Pulumi CLI can read) counts as given unless the file names another credential."""
    return parse_file_values(read_stack_file(stack_file(stack, stacks_dir)), path_exists)


def parse_file_values(full: dict[str, Any],
                      path_exists: Callable[[str], bool] = os.path.isfile) -> StackConfig:
    """`parse_stack_file` for a `config:` block already read (read_stack_file)."""
    full = dict(full)
    full.pop(f"{PROJECT}:{SECRET_PRIVATE_KEY}", None)
    ssh = full.get(f"{PROJECT}:ssh")
    ssh = ssh if isinstance(ssh, dict) else {}
    other = bool(ssh.get("privateKeyPath") or ssh.get("useAgent"))
    # Values set with `pulumi config set --secret` are `{secure: ...}` in the file.
    secret_keys = frozenset(key for key, value in full.items() if holds_encrypted(value))
    return parse_namespaced_config(full, has_secret_private_key=not other,
                                   path_exists=path_exists, secret_keys=secret_keys)


def print_warnings(config: StackConfig, tool: str) -> None:
    """What a tool prints of the config's warnings (on stderr)."""
    for warning in config.warnings:
        print(f"{tool}: warning: {warning}", file=sys.stderr)
