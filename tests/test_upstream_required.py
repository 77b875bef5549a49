"""KSERVE_UPSTREAM_REQUIRED=1: a test whose upstream source is missing fails instead of
being skipped, for the sources ../shared/upstream holds (components/upstream.py
EXPECTED); a source outside them (a newly added pin) still skips, naming itself."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components import upstream, versions
from components.upstream import ChartRef
from upstream_needs import need

ROOT = Path(__file__).resolve().parents[1]
CALICO = ChartRef(versions.CALICO_CHART, versions.CALICO_VERSION, versions.CALICO_CHART_REPO)


def outcome(found, monkeypatch, required: bool):
    """What need(found) does to a test: ("run"|"skip"|"fail", message)."""
    if required:
        monkeypatch.setenv(upstream.REQUIRED_ENV, "1")
    else:
        monkeypatch.delenv(upstream.REQUIRED_ENV, raising=False)
    try:
        need(found)
    except pytest.skip.Exception as skipped:
        return "skip", str(skipped)
    except pytest.fail.Exception as failed:
        return "fail", str(failed)
    return "run", ""


def test_verdict():
    here = upstream.Found(Path("/x"))
    expected_missing = upstream.Found(None, "gone")
    new_pin_missing = upstream.Found(None, "gone", expected=False)
    assert upstream.verdict(here, True) == upstream.verdict(here, False) == "run"
    assert upstream.verdict(expected_missing, False) == "skip"
    assert upstream.verdict(expected_missing, True) == "fail"
    assert upstream.verdict(new_pin_missing, False) == "skip"
    assert upstream.verdict(new_pin_missing, True) == "skip"


def test_a_missing_pinned_source_the_shared_folder_holds_fails_when_required(monkeypatch, tmp_path):
    monkeypatch.setenv(upstream.ENV, str(tmp_path))
    for found in (upstream.chart_source(CALICO), upstream.kserve_crds_dir(),
                  upstream.source(upstream.LOCAL_PATH_MANIFEST, "local-path manifest"),
                  upstream.source(upstream.chart_subdir(CALICO) / "crds", "Calico CRDs")):
        assert found.expected, found
        kind, message = outcome(found, monkeypatch, required=True)
        assert kind == "fail" and f"{upstream.REQUIRED_ENV}=1" in message and found.reason in message
        assert outcome(found, monkeypatch, required=False) == ("skip", found.reason)


def test_a_source_the_shared_folder_does_not_list_skips_naming_it_even_when_required(monkeypatch, tmp_path):
    monkeypatch.setenv(upstream.ENV, str(tmp_path))
    bumped = ChartRef(versions.CALICO_CHART, "v9.9.9", versions.CALICO_CHART_REPO)
    found = upstream.chart_source(bumped)
    assert not found.expected
    kind, message = outcome(found, monkeypatch, required=True)
    assert kind == "skip"
    # Repository, chart, version and the place it was looked for.
    assert f"{versions.CALICO_CHART_REPO} {versions.CALICO_CHART} v9.9.9" in message
    assert str(tmp_path / "charts/calico-v9.9.9/tigera-operator") in message
    assert "not one of the sources ../shared/upstream holds" in message


def test_no_upstream_directory_and_no_helm_fail_when_required(monkeypatch, tmp_path):
    monkeypatch.setenv(upstream.ENV, str(tmp_path / "nowhere"))
    assert outcome(upstream.chart_source(CALICO), monkeypatch, required=True)[0] == "fail"
    no_helm = upstream.Found(None, "no helm: none on PATH")
    assert outcome(no_helm, monkeypatch, required=True)[0] == "fail"
    assert outcome(no_helm, monkeypatch, required=False)[0] == "skip"


def shared_sources(top: Path) -> set[str]:
    """What an upstream directory holds, as EXPECTED names it: each chart (a directory
    with Chart.yaml, not inside another chart) and each file outside charts/."""
    charts = set()
    for chart_yaml in sorted((top / "charts").rglob("Chart.yaml")):
        place = chart_yaml.parent.relative_to(top)
        if not any(p.as_posix() in charts for p in place.parents):
            charts.add(place.as_posix())
    files = {p.relative_to(top).as_posix() for p in top.rglob("*")
             if p.is_file() and p.parts[len(top.parts)] != "charts" and p.parent != top}
    return charts | files


@pytest.mark.skipif(not upstream.SHARED_DIR.is_dir(), reason=f"no {upstream.SHARED_DIR} on this machine")
def test_expected_is_what_the_shared_folder_holds():
    assert shared_sources(upstream.SHARED_DIR) == set(upstream.EXPECTED)


def test_every_upstream_skip_goes_through_upstream_needs():
    """A test module that looks up upstream files must not skip on its own (skipif,
    pytest.skip): only tests/upstream_needs.py decides skip or fail."""
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        if re.search(r"\bupstream\.(chart_source|kserve_crds_dir|upstream_dir|source|helm)\(", text) \
                and path.name not in ("test_upstream.py", "test_upstream_required.py"):
            assert "skipif(" not in text and "pytest.skip(" not in text, path.name


@pytest.mark.parametrize("required, result", [
    ("", "1 skipped"), ("1", f"upstream source missing but {upstream.REQUIRED_ENV}=1: KServe")])
def test_a_crd_test_module_fails_instead_of_skipping_when_required(tmp_path, required, result):
    """The whole way through pytest: KServe's CRD tests with no upstream files."""
    env = {**os.environ, upstream.ENV: str(tmp_path), upstream.REQUIRED_ENV: required}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_serving_resources.py::test_a_misspelt_field_fails_the_schema"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result in done.stdout, done.stdout[-2000:]  # -q: the skip reason is not shown
    assert (done.returncode == 0) == (required == ""), done.stdout[-2000:]
