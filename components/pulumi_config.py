"""Read this project's stack config from the Pulumi runtime and validate it."""
from __future__ import annotations

import datetime
import json
from typing import Any, Optional

import pulumi
from pulumi.runtime import config as runtime_config

from components import versions
from components.stack_config import (
    PROJECT, SECRET_PRIVATE_KEY, StackConfig, parse_namespaced_config)

SECRET_KEY = f"{PROJECT}:{SECRET_PRIVATE_KEY}"


def raw_config() -> dict[str, Any]:
    """Every config key of the stack, in every namespace, JSON values decoded."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw = {}
    for full_key, value in merged.items():
        try:
            raw[full_key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[full_key] = value  # a plain string
    return raw


def load_stack_config() -> tuple[StackConfig, Optional[pulumi.Output]]:
    """The validated config, and the SSH private key as a secret Output (or None).

    Warnings are logged; problems raise ConfigError with every one of them.
    """
    raw = raw_config()
    secret = raw.pop(SECRET_KEY, None)
    secret_keys = frozenset(k for k in raw if runtime_config.is_config_secret(k)) | \
        frozenset(runtime_config.get_config_secret_keys_env())
    config = parse_namespaced_config(raw, has_secret_private_key=bool(secret),
                                     secret_keys=secret_keys)
    for warning in config.warnings:
        pulumi.log.warn(warning)
    # `pulumi up` and preview say so when the train's Kubernetes is past end of life.
    end_of_life = versions.end_of_life_warning(config.kubernetes.train, datetime.date.today())
    if end_of_life:
        pulumi.log.warn(end_of_life)
    key = pulumi.Output.secret(str(secret)) if secret else None
    return config, key
