"""How a stack file holds a secret: `{secure: v1:...}` (pure).

The program gets plain values from the Pulumi CLI, with the secret top-level
keys listed; a tool that reads the stack file itself sees the encrypted form.
"""
from __future__ import annotations

from typing import Any


def encrypted_in_file(value: Any) -> bool:
    """A secret as a stack file holds it, `{secure: v1:...}`: what the tools see
    when they read the file without the Pulumi CLI (the program gets the plain
    value, and its top-level key in `secret_keys`)."""
    return isinstance(value, dict) and set(value) == {"secure"}


def holds_encrypted(value: Any) -> bool:
    """True when a stack file value has an encrypted part anywhere inside it."""
    if encrypted_in_file(value):
        return True
    if isinstance(value, dict):
        return any(holds_encrypted(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_encrypted(v) for v in value)
    return False
