"""Read this project's stack config from the Pulumi runtime and validate it."""
from __future__ import annotations

import json
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as runtime_config

from components.stack_config import PROJECT, SECRET_PRIVATE_KEY, StackConfig, parse_stack_config


def raw_project_config() -> dict[str, Any]:
    """Every `kserve-cluster:*` key, JSON values decoded (objects, lists, numbers)."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw = {}
    for full_key, value in merged.items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value  # a plain string
    return raw


def load_stack_config() -> tuple[StackConfig, Optional[pulumi.Output]]:
    """The validated config, and the SSH private key as a secret Output (or None)."""
    raw = raw_project_config()
    secret = raw.pop(SECRET_PRIVATE_KEY, None)
    config = parse_stack_config(raw, has_secret_private_key=bool(secret))
    key = pulumi.Output.secret(str(secret)) if secret else None
    return config, key
