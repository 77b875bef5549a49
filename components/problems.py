"""Collecting config problems so that all of them are reported at once."""
from __future__ import annotations

import ipaddress
import re
from typing import Any

PROJECT = "kserve-cluster"


class ConfigError(ValueError):
    """Every problem found in the stack config, reported together."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the stack config " \
            "(nothing was changed on any node):"
        super().__init__("\n".join([header] + [f"  - {p}" for p in self.problems]))


class Problems:
    """Collects problems; each names the key, the bad value and the fix."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, value: Any, what: str, fix: str) -> None:
        shown = "(not set)" if value is None else repr(value)
        self.items.append(f"{PROJECT}:{key} = {shown}: {what} Fix: {fix}")

    def unknown_keys(self, key: str, given: dict, known: set[str]) -> None:
        for name in sorted(set(given) - known):
            where = f"{key}.{name}" if key else name
            self.add(where, given[name], "unknown key (a typo is never ignored).",
                     f"use one of: {', '.join(sorted(known))}.")


# ---------------------------------------------------------------- small checks
# Each returns the value to use (a default after a problem) so that parsing goes
# on and every problem is found in one pass.

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
        return isinstance(value, str)
    except ValueError:
        return False


def is_host(value: Any) -> bool:
    return isinstance(value, str) and (is_ip(value) or bool(DNS1123_SUBDOMAIN.match(value)))


def check_port(problems: Problems, key: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.add(key, value, "not a TCP port.", "use a whole number from 1 to 65535.")
        return default
    return value


def check_text(problems: Problems, key: str, value: Any, default: str, fix: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        problems.add(key, value, "must be a non-empty string.", fix)
        return default
    return value


def check_mapping(problems: Problems, key: str, value: Any, fix: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, value, "must be an object (key: value pairs).", fix)
        return {}
    return value
