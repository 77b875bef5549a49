"""Release trains: one table of versions per Kubernetes minor (components/versions.py)."""
import dataclasses
import datetime
import re
from pathlib import Path

import pytest

from components import versions
from components.plan.build import plan_stack
from components.serving.config import RAW_DEPLOYMENT, SERVERLESS, ServingConfig
from components.serving.kserve import controller_images, kserve_values

ROOT = Path(__file__).resolve().parents[1]
TRAINS = list(versions.TRAINS.values())
IDS = list(versions.TRAINS)


def test_trains_cover_1_31_to_1_34_at_least_and_1_31_is_the_default():
    assert {"1.31", "1.32", "1.33", "1.34"} <= set(versions.TRAINS)
    assert versions.DEFAULT_TRAIN is versions.TRAINS["1.31"]
    assert versions.DEFAULT_TRAIN.kubernetes_version == versions.KUBERNETES_VERSION
    assert versions.DEFAULT_TRAIN.pins == versions.PINS


@pytest.mark.parametrize("train", TRAINS, ids=IDS)
def test_every_pin_of_a_train_names_its_page(train):
    assert train.pins
    for pin in train.pins:
        assert pin.checked_against.strip(), pin
    shown = {pin.version for pin in train.pins}
    for version in train.component_versions().values():
        assert version in shown, f"{train.kubernetes_minor}: {version} has no pin"


@pytest.mark.parametrize("train", TRAINS, ids=IDS)
def test_a_train_mixes_no_versions_upstream_calls_unsupported_together(train):
    for component, version in train.component_versions().items():
        if component in versions.UNRANGED:
            continue
        [line] = [s for s in versions.SUPPORT if s.component == component and s.covers(version)]
        assert line.supports(train.kubernetes_minor), \
            f"{component} {version} supports Kubernetes {line.kubernetes_low}-" \
            f"{line.kubernetes_high or '...'} ({line.page}), not {train.kubernetes_minor}"
    assert train.kubernetes_version.startswith(train.kubernetes_minor + ".")
    net_istio = ".".join(re.findall(r"\d+", train.knative_net_istio_version)[:2])
    serving = ".".join(re.findall(r"\d+", train.knative_serving_version)[:2])
    istio = ".".join(train.istio_version.split(".")[:2])
    assert net_istio == serving, "net-istio is released with Knative Serving: same minor"
    assert versions.NET_ISTIO_TESTED_ISTIO[net_istio] == istio


def test_the_support_check_refuses_a_mix_upstream_does_not_support():
    istio_1_24 = next(s for s in versions.SUPPORT if s.component == "Istio" and s.covers("1.24.6"))
    assert istio_1_24.supports("1.31") and not istio_1_24.supports("1.32")
    knative = next(s for s in versions.SUPPORT if s.covers("knative-v1.19.9")
                   and s.component == "Knative Serving")
    assert not knative.supports("1.31") and knative.supports("1.40")


def test_trains_are_consecutive_minors_with_rising_end_of_life():
    minors = [int(m.split(".")[1]) for m in versions.TRAINS]
    assert minors == list(range(minors[0], minors[0] + len(minors)))
    dates = [t.end_of_life for t in TRAINS]
    assert dates == sorted(dates)


@pytest.mark.parametrize("given, minor", [("1.32.13", "1.32"), ("v1.34.1", "1.34"),
                                          ("1.31.0", "1.31")])
def test_train_for_picks_by_minor(given, minor):
    assert versions.train_for(given) is versions.TRAINS[minor]


@pytest.mark.parametrize("given", ["1.30.14", "1.99.0", "1.32", "latest", ""])
def test_train_for_refuses_a_version_with_no_train(given):
    with pytest.raises(ValueError, match="the trains are 1.31, 1.32"):
        versions.train_for(given)


def test_apt_repository_per_minor():
    assert versions.kubernetes_apt_repo("1.32") == "https://pkgs.k8s.io/core:/stable:/v1.32/deb/"
    assert versions.DEFAULT_TRAIN.kubernetes_apt_repo == versions.KUBERNETES_APT_REPO


def test_end_of_life_warning_names_the_date_and_the_next_train():
    train = versions.TRAINS["1.32"]
    assert versions.end_of_life_warning(train, train.end_of_life) is None
    warning = versions.end_of_life_warning(train, train.end_of_life + datetime.timedelta(days=1))
    assert "Kubernetes 1.32 reached end of life on 2026-02-28" in warning
    assert "1.33 train" in warning and versions.TRAINS["1.33"].kubernetes_version in warning
    last = TRAINS[-1]
    # When the next train is past its end of life too, the warning says where the
    # minors lead: the oldest train still supported on that day.
    today = datetime.date(2026, 12, 4)
    assert versions.end_of_life_warning(versions.TRAINS["1.31"], today).endswith(
        "on to the 1.35 train, supported until 2027-02-28.")
    assert "on to the" not in versions.end_of_life_warning(versions.TRAINS["1.34"], today)
    assert "no newer train" in versions.end_of_life_warning(
        last, last.end_of_life + datetime.timedelta(days=1))


def test_the_plan_warns_when_the_train_is_past_end_of_life():
    eol = versions.DEFAULT_TRAIN.end_of_life
    late = plan_stack("lab", today=eol + datetime.timedelta(days=1))
    [note] = [n for n in late.notes if "end of life" in n]
    assert note.startswith("warning: Kubernetes 1.31 reached end of life on 2025-10-28")
    assert "1.32 train" in note
    assert not [n for n in plan_stack("lab", today=eol).notes if "end of life" in n]


# --- KServe's breaking changes, per train (checked against kserve/kserve at each tag)

def _serving(minor: str, mode: str = SERVERLESS) -> ServingConfig:
    return dataclasses.replace(ServingConfig(), train=versions.TRAINS[minor], deployment_mode=mode)


def test_kserve_mode_names_follow_the_train():
    assert kserve_values(_serving("1.31"))["kserve"]["controller"]["deploymentMode"] == "Serverless"
    assert kserve_values(_serving("1.32", RAW_DEPLOYMENT))["kserve"]["controller"][
        "deploymentMode"] == "RawDeployment"
    assert kserve_values(_serving("1.33"))["kserve"]["controller"]["deploymentMode"] == "Knative"
    assert kserve_values(_serving("1.34", RAW_DEPLOYMENT))["kserve"]["controller"][
        "deploymentMode"] == "Standard"


def test_kserve_chart_name_and_runtime_chart_follow_the_train():
    assert versions.TRAINS["1.33"].kserve_chart.endswith("/kserve")
    assert versions.TRAINS["1.33"].kserve_runtimes_chart is None
    assert versions.TRAINS["1.34"].kserve_chart.endswith("/kserve-resources")
    assert versions.TRAINS["1.34"].kserve_runtimes_chart.endswith("/kserve-runtime-configs")


@pytest.mark.parametrize("train", TRAINS, ids=IDS)
def test_kserve_images_are_the_trains(train):
    values = kserve_values(_serving(train.kubernetes_minor))
    for image in controller_images(values) - {versions.KUBE_RBAC_PROXY_IMAGE}:
        assert image.endswith(f":{train.kserve_version}"), image
    # ModelMesh has no part in the v0.15+ charts: the key is only written where it exists.
    assert ("modelmesh" in values["kserve"]) == (versions.release_key(train.kserve_version) < (0, 15))


# --- Docs

def test_readme_version_table_shows_the_default_train():
    readme = (ROOT / "README.md").read_text()
    for pin in versions.DEFAULT_TRAIN.pins:
        assert pin.version.lstrip("v") in readme, pin


def test_releases_page_lists_every_train():
    page = (ROOT / "docs" / "releases.md").read_text()
    for train in TRAINS:
        row = next((line for line in page.splitlines()
                    if line.startswith(f"| {train.kubernetes_minor} |")), None)
        assert row, f"docs/releases.md has no row for {train.kubernetes_minor}"
        for version in (*train.component_versions().values(), train.end_of_life.isoformat(),
                        train.pause_image.rsplit(":", 1)[1]):
            shown = version.removeprefix("knative-").lstrip("v")
            assert shown in row, f"{train.kubernetes_minor}: {version} not in {row}"


# --- The real program under mocks installs the chosen train

@pytest.fixture(scope="module")
def lab_on_1_34():
    from components.offline.graph import Graph
    from components.offline.program import evaluate
    from components.stack_file import stack_file_config
    config = stack_file_config("lab")
    config["kubernetes"] = {**config.get("kubernetes", {}),
                            "version": versions.TRAINS["1.34"].kubernetes_version}
    evaluation = evaluate(config)
    return evaluation, Graph(evaluation)


def test_program_installs_the_trains_versions(lab_on_1_34):
    evaluation, graph = lab_on_1_34
    train = versions.TRAINS["1.34"]
    charts = {"tigera-operator-chart": train.calico_version,
              "cert-manager-chart": train.cert_manager_version,
              "istiod-chart": train.istio_version, "kserve-crd-chart": train.kserve_version,
              "kserve-chart": train.kserve_version,
              "kserve-runtime-configs-chart": train.kserve_version}
    for name, version in charts.items():
        assert evaluation.named(name).inputs["version"] == version, name
    controller = evaluation.named("kserve-chart").inputs
    assert (controller["chart"], controller["name"]) == (train.kserve_chart, "kserve")
    assert controller["values"]["kserve"]["controller"]["deploymentMode"] == "Knative"
    assert evaluation.named("knative-serving-core").inputs["file"] == train.knative_serving_core_url
    assert evaluation.named("knative-net-istio").inputs["file"] == train.knative_net_istio_url
    # The cluster runtimes' chart is admitted by KServe's webhook, and models wait for it.
    assert graph.waits_for("kserve-runtime-configs-chart", "kserve-webhook-ready")
    assert graph.waits_for("isvc-kserve-test-tf-flower", "kserve-runtime-configs-chart")


def test_node_preparation_takes_the_trains_repository_pause_image_and_containerd():
    from components.cluster.node_preparation import prepare_inputs
    from components.stack_config import parse_stack_config
    from tests.test_stack_config import lab
    config = parse_stack_config(lab(kubernetes={"version": "1.34.2"}), has_secret_private_key=True)
    inputs = prepare_inputs(config.nodes[0], config.kubernetes)
    train = versions.TRAINS["1.34"]
    assert inputs["K8S_APT_REPO"] == "https://pkgs.k8s.io/core:/stable:/v1.34/deb/"
    assert inputs["PAUSE_IMAGE"] == train.pause_image
    assert inputs["CONTAINERD_PACKAGE_VERSION"] == train.containerd_package_version
    assert inputs["K8S_VERSION_TAG"] == "v1.34.2"


def test_preflight_probes_the_trains_package_repository():
    from components.preflight.gate import facts_inputs
    from components.stack_config import parse_stack_config
    from tests.test_stack_config import lab
    config = parse_stack_config(lab(kubernetes={"version": "1.33.2"}), has_secret_private_key=True)
    probed = facts_inputs(config.nodes[0], None, train=config.kubernetes.train)["PROBE_URLS"].split()
    assert versions.TRAINS["1.33"].kubernetes_apt_repo in probed
    assert versions.DEFAULT_TRAIN.kubernetes_apt_repo not in probed
