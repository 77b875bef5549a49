"""The storage keys of one `models[]` entry, parsed where the models are parsed.

Kept apart from components/storage/config.py so that the models parser can call
it without importing the storage parser (which reads the parsed models).
"""
from __future__ import annotations

from typing import Any, Optional

from components.problems import Problems, check_name

MODEL_STORAGE_KEYS = {"storageSecret"}


def parse_storage_secret(problems: Problems, key: str, item: dict) -> Optional[str]:
    """`storageSecret`: the name of a `storageSecrets` entry (checked against them later)."""
    value: Any = item.get("storageSecret")
    if value is None:
        return None
    return check_name(problems, f"{key}.storageSecret", value, "minio") or None
