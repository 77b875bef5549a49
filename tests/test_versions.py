"""One table of versions: the README shows it, and no other file repeats a pin."""
import re
from pathlib import Path

from components import versions

ROOT = Path(__file__).resolve().parents[1]
PINNED = sorted({p.version for p in versions.PINS}
                | {p.version for t in versions.TRAINS.values() for p in t.pins})


def test_every_pin_names_where_it_was_checked():
    for pin in versions.PINS:
        assert pin.checked_against, pin


def test_readme_version_table_shows_every_pin():
    readme = (ROOT / "README.md").read_text()
    for pin in versions.PINS:
        shown = pin.version.lstrip("v")
        assert shown in readme, f"README does not show {pin.component} {pin.version}"


def test_no_other_source_file_repeats_a_pinned_version():
    sources = [p for p in ROOT.rglob("*") if p.suffix in {".py", ".sh", ".yaml", ".yml"}
               and not {"venv", ".venv", "tests", ".git", ".upstream"} & set(p.relative_to(ROOT).parts)
               and p.name != "versions.py"]
    assert sources
    for path in sources:
        text = path.read_text()
        for version in PINNED:
            bare = re.escape(version.lstrip("v").rstrip("*"))
            assert not re.search(rf"(?<![\d.]){bare}(?![\d])", text), \
                f"{path.relative_to(ROOT)} repeats the pinned version {version}"
