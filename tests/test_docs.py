"""The documentation holds together: README.md is a short front door that links
every page under docs/, every relative link and #anchor resolves, and the config
reference in docs/config.md names exactly the keys the program accepts."""
import ast
import importlib
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from components.namespaces import KUBERNETES_PREFIX, LAYER_NAMESPACES, MONITORING_NAMESPACE
from components.stack_config import config_key_paths, config_key_tree

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIG_REFERENCE = DOCS / "config.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`\n]*?`+")
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
KEY_PATH = re.compile(r"^`([A-Za-z]+(?:\[\])?(?:\.[A-Za-z]+(?:\[\])?)*)`$")


def prose_lines(text: str):
    """(line number, line) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower-case, without punctuation
    (apart from '-' and '_'), spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(text: str):
    """(line number, target) of every inline link and image outside code."""
    for number, line in prose_lines(text):
        for target in LINK_TARGET.findall(INLINE_CODE.sub("", line)):
            yield number, target


def broken_links(page: Path) -> list[str]:
    problems = []
    for number, target in links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        file = (page.parent / unquote(path)).resolve() if path else page
        if not file.exists():
            problems.append(f"{where}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
            continue
        if anchor:
            if file.suffix != ".md":
                problems.append(f"{where}: an anchor into a file that is not markdown")
            elif unquote(anchor) not in anchors(file.read_text()):
                problems.append(f"{where}: no heading #{anchor} in {file.relative_to(ROOT)}")
    return problems


# --- the link checker itself ------------------------------------------------------

def test_slugs_follow_githubs_rules():
    assert slug("What `pulumi up` builds") == "what-pulumi-up-builds"
    assert slug("Storage access for `gs://` models") == "storage-access-for-gs-models"
    assert slug("Members: renewal, removal, and what cannot be revoked") == \
        "members-renewal-removal-and-what-cannot-be-revoked"
    assert slug("`monitoring`, `grafanaAdminPassword`") == "monitoring-grafanaadminpassword"
    assert slug("snake_case and-dash") == "snake_case-and-dash"
    assert anchors("# A\n## A\n```\n# A\n```\n### A!\n") == {"a", "a-1", "a-2"}


def test_the_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Here it is\n")
    page = tmp_path / "page.md"
    page.write_text("# Top\n[ok](other.md#here-it-is) [ok](#top) [web](https://example.com/x)\n"
                    "[`a[].b`](other.md#missing) ![pic](gone.png)\n"
                    "```\n[in code](nowhere.md)\n```\n`[in code](nowhere.md)`\n")
    problems = broken_links(page)
    assert len(problems) == 2, problems
    assert "no heading #missing" in problems[0] and "no file gone.png" in problems[1]


# --- the pages ---------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page):
    assert list(links(page.read_text())), f"{page.name} links nowhere"
    assert broken_links(page) == []


def test_the_readme_is_a_short_front_door_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "README.md is the front door: move reference text to docs/"
    assert "SSH_KEY_FILE=~/.ssh/id_ed25519 scripts/up.sh lab\n" in text
    assert "\nscripts/test.sh\n" in text


def test_the_readme_links_every_page_of_docs():
    targets = {target.partition("#")[0] for _, target in links(README.read_text())}
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")}
    assert pages and pages <= targets, f"not linked from README.md: {sorted(pages - targets)}"


def test_the_reserved_namespaces_are_all_listed():
    section = CONFIG_REFERENCE.read_text().split("### Reserved namespaces", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"`([a-z*-]+)`", section))
    wanted = set(LAYER_NAMESPACES) | {f"{KUBERNETES_PREFIX}*", MONITORING_NAMESPACE}
    assert listed == wanted, (sorted(wanted - listed), sorted(listed - wanted))


# --- the config reference against the code -----------------------------------------

def documented_key_paths(text: str) -> list[str]:
    """The first cell of every row of every table whose first column is `Key`."""
    paths, in_key_table = [], False
    for number, line in prose_lines(text):
        if not line.startswith("|"):
            in_key_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "Key":
            in_key_table = True
        elif in_key_table and not set(cells[0]) <= set("-: "):
            match = KEY_PATH.match(cells[0])
            assert match, f"docs/config.md:{number}: write one key per row as its `full.path`: {cells[0]!r}"
            paths.append(match.group(1))
    return paths


def test_documented_key_paths_are_read_from_the_tables():
    text = ("| Key | Type |\n| --- | --- |\n| `a.b` | x |\n| `c[].d` | y |\n\n"
            "| Output | Secret |\n| --- | --- |\n| `kubeconfig` | yes |\n")
    assert documented_key_paths(text) == ["a.b", "c[].d"]
    with pytest.raises(AssertionError, match="one key per row"):
        documented_key_paths("| Key | Type |\n| --- | --- |\n| `a`, `b` | x |\n")


def test_every_documented_config_key_exists_in_the_code():
    documented = documented_key_paths(CONFIG_REFERENCE.read_text())
    assert len(documented) == len(set(documented)), "a key is documented twice"
    unknown = set(documented) - config_key_paths()
    assert not unknown, f"docs/config.md documents keys the program does not accept: {sorted(unknown)}"


def test_every_config_key_the_code_accepts_is_documented():
    missing = config_key_paths() - set(documented_key_paths(CONFIG_REFERENCE.read_text()))
    assert not missing, f"keys the program accepts but docs/config.md does not document: {sorted(missing)}"


def key_sets_the_parsers_check() -> dict[int, str]:
    """Every key set passed to `Problems.unknown_keys(...)` in components/, by identity."""
    found = {}
    for path in (ROOT / "components").rglob("*.py"):
        module = None
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "unknown_keys" and len(node.args) == 3):
                assert isinstance(node.args[2], ast.Name), f"{path}:{node.lineno}: name the key set"
                if module is None:
                    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    module = importlib.import_module(name)
                found[id(getattr(module, node.args[2].id))] = f"{path.name}:{node.args[2].id}"
    return found


def test_config_key_paths_covers_every_key_set_the_parsers_check():
    """config_key_paths() is built from config_key_tree(); a key set a parser checks
    but the tree leaves out would hide its keys from the reference check."""
    in_tree, stack = set(), [config_key_tree()]
    while stack:
        keys, children = stack.pop()
        in_tree.add(id(keys))
        stack.extend(children.values())
    checked = key_sets_the_parsers_check()
    assert len(checked) >= 20
    left_out = [name for key, name in checked.items() if key not in in_tree]
    assert not left_out, f"add these key sets to config_key_tree(): {left_out}"
