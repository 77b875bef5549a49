"""Collecting config problems so that all of them are reported at once.

Every problem names the key (list items by index and, where they have one, by
name: `nodes[1] (worker1).address`), the value as given and the fix. Warnings
are collected the same way but do not stop a run.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Any, Iterable, Optional

PROJECT = "kserve-cluster"
NOT_SET = "(not set)"


class ConfigError(ValueError):
    """Every problem found in the stack config, reported together."""

    def __init__(self, problems: list[str], warnings: Optional[list[str]] = None):
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the stack config " \
            "(nothing was changed on any node):"
        lines = [header] + [f"  - {p}" for p in self.problems]
        if self.warnings:
            lines += ["and warnings:"] + [f"  - {w}" for w in self.warnings]
        super().__init__("\n".join(lines))


def close_match(word: Any, choices: Iterable[str], cutoff: float = 0.6) -> Optional[str]:
    """The choice a typo most likely meant, or None. A higher `cutoff` (up to 1)
    asks for a closer match."""
    if not isinstance(word, str):
        return None
    choices = list(choices)
    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=cutoff)
    if not found:
        # Case slips (`podCIDR`) fall below the ratio: compare case-folded too.
        folded = {c.casefold(): c for c in choices}
        found = [folded[m] for m in difflib.get_close_matches(word.casefold(), sorted(folded),
                                                                n=1, cutoff=cutoff)]
    return found[0] if found else None


def item_key(section: str, index: int, item: Any) -> str:
    """`models[2]`, or `models[2] (tf-flower)` when the item has a name."""
    name = item.get("name") if isinstance(item, dict) else None
    return f"{section}[{index}] ({name})" if isinstance(name, str) and name else f"{section}[{index}]"


def _show(value: Any) -> str:
    return NOT_SET if value is None else repr(value)


class Problems:
    """Collects problems and warnings; each names the key, the bad value and the fix."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    @staticmethod
    def _line(key: str, value: Any, what: str, fix: str, namespaced: bool = False) -> str:
        shown = key if namespaced else f"{PROJECT}:{key}"
        return f"{shown} = {_show(value)}: {what} Fix: {fix}"

    def add(self, key: str, value: Any, what: str, fix: str) -> None:
        self.items.append(self._line(key, value, what, fix))

    def add_as_written(self, full_key: str, value: Any, what: str, fix: str) -> None:
        """A problem with a key of any namespace, shown exactly as the stack file has it."""
        self.items.append(self._line(full_key, value, what, fix, namespaced=True))

    def warn(self, key: str, value: Any, what: str, fix: str) -> None:
        self.warnings.append(self._line(key, value, what, fix))

    def required(self, key: str, fix: str) -> None:
        self.add(key, None, "required.", fix)

    def unknown_keys(self, key: str, given: dict, known: set[str]) -> None:
        for name in sorted(set(given) - known, key=str):
            where = f"{key}.{name}" if key else name
            guess = close_match(name, known)
            if guess:
                self.add(where, given[name], f"unknown key; did you mean {guess!r}? "
                         "(a typo is never ignored)", f"rename it to {guess!r}.")
            else:
                self.add(where, given[name], "unknown key (a typo is never ignored).",
                         f"use one of: {', '.join(sorted(known))}.")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items, self.warnings)


class NamesInNamespaces:
    """Each (namespace, name) once in a list: a second entry is reported, naming the first."""

    def __init__(self, problems: Problems, fix: str, why: str = ""):
        self.problems, self.fix, self.why = problems, fix, why
        self.first: dict[tuple[str, str], str] = {}

    def first_time(self, key: str, namespace: str, name: str) -> bool:
        """False (and a problem at `<key>.name`) when `namespace/name` came before."""
        earlier = self.first.setdefault((namespace, name), key)
        if earlier == key:
            return True
        self.problems.add(f"{key}.name", name,
                          f"duplicates {earlier} in namespace {namespace}{self.why}.", self.fix)
        return False


# ---------------------------------------------------------------- small checks
# Each returns the value to use (a default after a problem) so that parsing goes
# on and every problem is found in one pass.

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
DNS1123_RULE = ("a DNS-1123 label: lower-case letters, digits and '-', at most 63, "
                "starting and ending with a letter or digit")


def is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
        return isinstance(value, str)
    except ValueError:
        return False


def is_host(value: Any) -> bool:
    return isinstance(value, str) and (is_ip(value) or bool(DNS1123_SUBDOMAIN.match(value)))


def is_whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(problems: Problems, key: str, value: Any, default: int, low: int, high: int,
              fix: str) -> int:
    """A whole number in [low, high]; "not a whole number" and "outside" are told apart."""
    if value is None:
        return default
    if not is_whole_number(value):
        problems.add(key, value, "not a whole number.", fix)
        return default
    if not low <= value <= high:
        problems.add(key, value, f"outside the range {low}-{high}.", fix)
        return default
    return value


def check_port(problems: Problems, key: str, value: Any, default: int) -> int:
    return check_int(problems, key, value, default, 1, 65535,
                     "use a TCP port, a whole number from 1 to 65535.")


def check_text(problems: Problems, key: str, value: Any, default: str, fix: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        problems.add(key, value, "must be a non-empty string.", fix)
        return default
    return value


def check_bool(problems: Problems, key: str, value: Any, default: bool, fix: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.add(key, value, "must be true or false.", fix)
        return default
    return value


def check_mapping(problems: Problems, key: str, value: Any, fix: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, value, "must be an object (key: value pairs).", fix)
        return {}
    return value


def check_name(problems: Problems, key: str, value: Any, example: str) -> str:
    """A DNS-1123 label (Kubernetes object and namespace names); "" after a problem."""
    if value is None:
        problems.required(key, f"give a name, e.g. '{example}'.")
        return ""
    if not isinstance(value, str) or not DNS1123_LABEL.match(value):
        problems.add(key, value, f"not a valid name ({DNS1123_RULE}).",
                     f"rename it, e.g. '{example}'.")
        return ""
    return value


def check_list(problems: Problems, key: str, value: Any, fix: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(key, value, "must be a list.", fix)
        return []
    return value


def check_nfs_export(problems: Problems, key: str, nfs: dict, example_path: str) -> tuple[str, str]:
    """`{server, path}` of an NFS export under `key` -> (server, path), "" where wrong.

    The path must be absolute and free of control characters: it is written into
    mount units and scripts on the nodes.
    """
    server, path = nfs.get("server"), nfs.get("path")
    if server is None:
        problems.required(f"{key}.server", "give the NFS server's address, e.g. 10.0.2.5.")
    elif not is_host(server):
        problems.add(f"{key}.server", server, "not an IP address or host name.",
                     "give the NFS server's address, e.g. 10.0.2.5.")
    if path is None:
        problems.required(f"{key}.path", f"give the exported directory, e.g. {example_path}.")
    elif not isinstance(path, str) or not path.startswith("/") or any(ord(c) < 32 for c in path):
        problems.add(f"{key}.path", path, "not an absolute path.",
                     f"give the exported directory as an absolute path, e.g. {example_path}.")
    return (server if is_host(server) else "",
            path if isinstance(path, str) and path.startswith("/") else "")

