"""The layout a newcomer relies on: library code in packages under components/,
no import circle among the project's modules, and scripts/ holding only commands
users run, the scripts that run on nodes, and the Vagrantfile of scripts/vms.sh.

Anyone can run this check: `scripts/test.sh tests/test_layout.py`.
"""
import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((ROOT / "components").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {n for n in names if n in known}
    return found


def find_cycle(graph: dict[str, set[str]]):
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(module):
        state[module] = 1
        trail.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                return trail[trail.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        state[module] = 2
        trail.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_no_import_circle_among_the_project_modules():
    modules = project_modules()
    graph = {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}
    # A package's __init__ is imported with any of its modules: count it as a dependency.
    for name in list(graph):
        parent = name.rsplit(".", 1)[0]
        if parent != name and parent in graph:
            graph[name].add(parent)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# scripts/vms/: what scripts/vms.sh runs Vagrant on (its state, .vagrant*/, is ignored).
VMS_FILES = {"Vagrantfile", "sizes.txt"}


def test_scripts_holds_only_commands_and_node_scripts():
    for path in sorted((ROOT / "scripts").iterdir()):
        if path.name == "node":
            assert all(p.suffix == ".sh" for p in path.iterdir()), "scripts/node is for node scripts"
            continue
        if path.name == "vms":
            found = {p.name for p in path.iterdir() if not p.name.startswith(".vagrant")}
            assert found == VMS_FILES, "scripts/vms is for the Vagrantfile of scripts/vms.sh"
            continue
        assert path.suffix in (".py", ".sh"), path
        assert os.access(path, os.X_OK), f"{path.name} is a command: make it executable"
        text = path.read_text()
        assert text.startswith("#!"), f"{path.name} needs a #! line"
        if path.suffix == ".py":
            assert 'if __name__ == "__main__":' in text, f"{path.name} is not a command"


def test_no_project_module_imports_a_script():
    commands = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    for name, path in project_modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & commands, (name, node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module not in commands, (name, node.module)
