"""A train move under Pulumi's mock runtime: the layers take one step per run from the
last run's `layerVersions` output, and the nodes wait until every layer allows them."""
import copy

import pytest

from components import versions
from components.offline.graph import Graph
from components.offline.program import ClusterMocks, evaluate
from components.stack_file import stack_file_config
from components.upgrade.layers import KUBERNETES, NET_ISTIO

OLD, NEW = versions.TRAINS["1.31"], versions.TRAINS["1.32"]


def lab(version):
    config = copy.deepcopy(stack_file_config("lab"))
    config.setdefault("kubernetes", {})["version"] = version
    return config


def recorded(train, **changes):
    return {KUBERNETES: train.kubernetes_version, **versions.train_layer_versions(train),
            NET_ISTIO: train.knative_net_istio_version, **changes}


def run(version, previous, preview=False):
    def answers(name, inputs):
        if name == "upgrade-versions":
            running = previous[KUBERNETES] if previous else ""
            return f"api_server={running}\n" + "".join(
                f"node={n} {running} Ready\n" for n in ("cp1", "worker1", "worker2"))
        return ClusterMocks.default_stdout(name, inputs)
    outputs = {"layerVersions": previous} if previous else None
    return evaluate(lab(version), preview=preview,
                    mocks=ClusterMocks(preview=preview, command_stdout=answers,
                                       previous_outputs=outputs))


def move(minor, from_minor):
    """The train of `minor`, and a run to it from a cluster recorded at `from_minor`'s."""
    train = versions.TRAINS[minor]
    return train, run(train.kubernetes_version, recorded(versions.TRAINS[from_minor]))


def chart_version(evaluation, name):
    return evaluation.named(name).inputs["version"]


def test_the_first_run_of_the_1_32_move_steps_the_layers_and_holds_the_nodes():
    evaluation = run(NEW.kubernetes_version, recorded(OLD))
    assert chart_version(evaluation, "istiod-chart") == "1.25.5"
    assert chart_version(evaluation, "istio-base-chart") == "1.25.5"
    assert chart_version(evaluation, "cert-manager-chart") == "v1.17.4"
    assert chart_version(evaluation, "tigera-operator-chart") == NEW.calico_version
    assert chart_version(evaluation, "kserve-chart") == NEW.kserve_version
    assert "knative-v1.18.2/serving-core.yaml" in evaluation.named("knative-serving-core").inputs["file"]
    assert "knative-v1.18.1/net-istio.yaml" in evaluation.named("knative-net-istio").inputs["file"]
    # The nodes stay: the upgrade commands keep the old version as their target.
    assert evaluation.named("cp1-upgrade").inputs["triggers"] == [OLD.kubernetes_version]
    assert evaluation.outputs["layerVersions"][KUBERNETES] == OLD.kubernetes_version
    assert evaluation.outputs["layerVersions"]["Istio"] == "1.25.5"


def test_the_second_run_moves_the_nodes_then_the_layers_after_them():
    previous = recorded(OLD, **{"Istio": "1.25.5", "Knative Serving": "knative-v1.18.2",
                                NET_ISTIO: "knative-v1.18.1", "cert-manager": "v1.17.4",
                                "Calico": NEW.calico_version, "KServe": NEW.kserve_version})
    evaluation = run(NEW.kubernetes_version, previous)
    assert evaluation.named("cp1-upgrade").inputs["triggers"] == [NEW.kubernetes_version]
    assert chart_version(evaluation, "istiod-chart") == NEW.istio_version
    assert chart_version(evaluation, "cert-manager-chart") == "v1.18.6"
    assert evaluation.outputs["layerVersions"][KUBERNETES] == NEW.kubernetes_version


def test_the_preview_shows_the_same_versions():
    evaluation = run(NEW.kubernetes_version, recorded(OLD), preview=True)
    assert chart_version(evaluation, "istiod-chart") == "1.25.5"


def test_a_fresh_stack_takes_the_train_and_records_it():
    evaluation = run(NEW.kubernetes_version, None)
    assert chart_version(evaluation, "istiod-chart") == NEW.istio_version
    assert evaluation.outputs["layerVersions"] == recorded(NEW)


def test_a_layer_ahead_of_the_train_is_refused_before_anything():
    with pytest.raises(Exception, match="newer than the 1.32 train"):
        run(NEW.kubernetes_version, recorded(OLD, Istio="1.29.6"))


def test_kserve_0_16_sets_the_mode_annotations_between_its_webhook_and_the_models():
    train, evaluation = move("1.33", "1.32")
    assert chart_version(evaluation, "kserve-chart") == "v0.16.0"
    command = evaluation.named("kserve-mode-annotations")
    assert "NORMALIZE=false" in command.inputs["create"]
    assert command.inputs["triggers"] == ["v0.16.0"]
    graph = Graph(evaluation)
    assert graph.waits_for("kserve-mode-annotations", "kserve-webhook-ready")
    models = [r.name for r in evaluation.registrations if r.name.startswith("isvc-")]
    assert models and all(graph.waits_for(m, "kserve-mode-annotations") for m in models)


def test_kserve_0_20_writes_the_new_names_and_0_13_needs_no_command():
    evaluation = run(versions.TRAINS["1.35"].kubernetes_version, None)
    assert "NORMALIZE=true" in evaluation.named("kserve-mode-annotations").inputs["create"]
    old = run(OLD.kubernetes_version, None)
    assert not [r for r in old.registrations if r.name == "kserve-mode-annotations"]


def test_calico_crds_are_applied_server_side_before_the_operator_chart():
    evaluation = run(OLD.kubernetes_version, None)
    command = evaluation.named("calico-crds")
    url = (f"https://raw.githubusercontent.com/projectcalico/calico/{OLD.calico_version}"
           "/manifests/operator-crds.yaml")
    assert "CRDS_URL=" + url in command.inputs["create"]
    assert "RELEASE=" not in command.inputs["create"]
    assert command.inputs["triggers"] == [OLD.calico_version]
    graph = Graph(evaluation)
    assert graph.waits_for("tigera-operator-chart", "calico-crds")
    assert graph.waits_for("calico-crds", "cp1-kubeadm-init")


def test_calico_3_32_adopts_the_crds_into_the_crd_release_before_creating_it():
    moving, evaluation = move("1.35", "1.34")
    assert chart_version(evaluation, "tigera-operator-chart") == moving.calico_version
    create = evaluation.named("calico-crds").inputs["create"]
    assert (f"CRDS_URL=https://raw.githubusercontent.com/projectcalico/calico/"
            f"{moving.calico_version}/manifests/v1_crd_projectcalico_org.yaml") in create
    assert "RELEASE=calico-crds" in create and "RELEASE_NAMESPACE=tigera-operator" in create
    assert evaluation.named("calico-crds-chart").inputs["name"] == "calico-crds"
    graph = Graph(evaluation)
    assert graph.waits_for("calico-crds-chart", "calico-crds")
    assert graph.waits_for("tigera-operator-chart", "calico-crds-chart")


def test_kserve_0_17_keeps_crds_and_hands_the_runtimes_over_before_the_charts_move():
    moving, evaluation = move("1.34", "1.33")
    assert chart_version(evaluation, "kserve-chart") == moving.kserve_version
    handover = evaluation.named("kserve-chart-handover")
    assert "RUNTIMES_RELEASE=kserve-runtime-configs" in handover.inputs["create"]
    assert "RELEASE_NAMESPACE=kserve" in handover.inputs["create"]
    assert evaluation.named("kserve-runtime-configs-chart").inputs["name"] == "kserve-runtime-configs"
    graph = Graph(evaluation)
    assert graph.waits_for("kserve-crd-chart", "kserve-chart-handover")
    assert graph.waits_for("kserve-chart", "kserve-chart-handover")
    assert graph.waits_for("kserve-runtime-configs-chart", "kserve-chart")
    # The 0.16 chart layout needs none.
    before = run(versions.TRAINS["1.33"].kubernetes_version, None)
    assert not [r for r in before.registrations if r.name == "kserve-chart-handover"]
