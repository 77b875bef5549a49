"""Record pinned host keys in a stack file, keeping its comments and layout.

pyyaml would drop every comment on a round trip, so the `hostKey` line is
written into the text of the node's entry, and the result is parsed back to
check that exactly the intended values changed.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from components.problems import PROJECT

NODES_KEY = f"{PROJECT}:nodes"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _node_entries(lines: list[str]) -> dict[str, tuple[int, int, int]]:
    """node name -> (first line, end line, indent of the entry's keys)."""
    start = next((i for i, line in enumerate(lines) if line.strip() == f"{NODES_KEY}:"), None)
    if start is None:
        raise ValueError(f"no `{NODES_KEY}:` block in the stack file")
    key_indent, item_indent, items, end = _indent(lines[start]), None, [], len(lines)
    for i in range(start + 1, len(lines)):
        text = lines[i].strip()
        if not text or text.startswith("#"):
            continue
        indent = _indent(lines[i])
        # The list may sit at the key's own indent (`- name:` under `nodes:`) or deeper.
        if indent < key_indent or (indent == key_indent and not text.startswith("- ")):
            end = i
            break
        if text.startswith("- ") and item_indent in (None, indent):
            if text.startswith("- {"):
                raise ValueError("node entries in flow style ({...}) cannot be edited; "
                                 "write them as block mappings")
            item_indent = indent
            items.append(i)
    entries = {}
    for k, first in enumerate(items):
        last = items[k + 1] if k + 1 < len(items) else end
        for j in range(first, last):
            candidate = lines[j].strip().removeprefix("- ")
            match = re.match(r"^name:\s*['\"]?([a-z0-9-]+)['\"]?\s*$", candidate)
            if match:
                entries[match.group(1)] = (first, last, item_indent + 2)
                break
    return entries


def set_host_keys(path: Path, keys: dict[str, str]) -> None:
    """Write `hostKey: <key>` into each named node's entry (replacing an old one)."""
    lines = path.read_text().splitlines()
    entries = _node_entries(lines)
    missing = sorted(set(keys) - set(entries))
    if missing:
        raise ValueError(f"nodes not found in {path}: {', '.join(missing)}")
    # Edit from the bottom so earlier line numbers stay valid.
    for name, (first, end, indent) in sorted(entries.items(), key=lambda e: -e[1][0]):
        if name not in keys:
            continue
        new_line = " " * indent + f"hostKey: {keys[name]}"
        existing = [i for i in range(first, end) if re.match(r"^\s*-?\s*hostKey:", lines[i])]
        if existing:
            prefix = lines[existing[0]][:len(lines[existing[0]]) - len(lines[existing[0]].lstrip())]
            if lines[existing[0]].lstrip().startswith("- "):
                raise ValueError(f"{name}: hostKey as the first key of the entry cannot be edited")
            lines[existing[0]] = prefix + f"hostKey: {keys[name]}"
        else:
            last = max(i for i in range(first, end) if lines[i].strip() and not lines[i].strip().startswith("#"))
            lines.insert(last + 1, new_line)
    text = "\n".join(lines) + "\n"
    parsed = {n["name"]: n.get("hostKey") for n in yaml.safe_load(text)["config"][NODES_KEY]}
    for name, key in keys.items():
        if parsed.get(name) != key:
            raise ValueError(f"writing the host key of {name} into {path} went wrong; the file was not changed")
    path.write_text(text)
