"""Every Helm release the program declares, rendered with the real pinned chart.

The releases come from the program itself under the mock runtime (the lab stack
and a RawDeployment variant: components/offline/releases.py), with the values
exactly as it passes them. For each one, the values are checked against the
chart's values.yaml and values.schema.json, and `helm template` renders the chart
(helm on PATH, else ../shared/tools/helm). The rendered objects must then show
what the stack asks for. A pin bump that renames a chart value fails here, not on
a user's cluster.

Chart sources come from components/upstream.py (.upstream/ filled by
scripts/fetch_upstream.py, or ../shared/upstream). A release whose chart source
is absent is skipped with a reason naming the chart (failed instead, with
KSERVE_UPSTREAM_REQUIRED=1, if it is one ../shared/upstream holds: tests/upstream_needs.py);
once its source is fetched, it is tested like the others.

Every release train is covered: the same stacks on each train ("lab@1.33", ...:
components/offline/releases.py TRAIN_VARIANTS), rendered for the train's Kubernetes.
The newer trains' chart sources are not in ../shared/upstream: export them from each
project's git tag into a directory laid out the same way and list it first, e.g.
KSERVE_CLUSTER_UPSTREAM=/tmp/upstream-trains:../shared/upstream; where they are absent
those tests skip naming the chart, even with KSERVE_UPSTREAM_REQUIRED=1.
"""
import copy
import json

import pytest
import yaml

from components import upstream, versions
from components.offline import charts
from components.offline.releases import (ALL_VARIANTS, VARIANT_SECRETS, DeclaredRelease,
                                         declared_releases, variant_train)
from components.serving.istio import GATEWAY_RELEASE
from components.serving.istio import NAMESPACE as ISTIO_NAMESPACE
from components.stack_config import parse_stack_config
from upstream_needs import need

RELEASES = declared_releases(ALL_VARIANTS)
VARIANTS = list(ALL_VARIANTS)
KUBE_VERSION = versions.KUBERNETES_VERSION
TRAINS = list(versions.TRAINS)

# Custom kinds the releases render whose CRD no source here holds, with the reason.
# Every other custom resource a release renders must be validated against its CRD;
# a new kind with no CRD loaded fails until it is given a CRD source or listed here.
_CERT_MANAGER_CRDS = (f"cert-manager {versions.CERT_MANAGER_VERSION}'s CRDs are generated at release "
                      "time: its chart source at the tag (cert-manager/cert-manager "
                      "deploy/charts/cert-manager, as ../shared/upstream holds it) has no CRD templates")
# (From v1.19 the chart source carries the CRD templates: those trains validate them.)
NO_CRD_HERE = {
    ("cert-manager.io/v1", "Certificate"): _CERT_MANAGER_CRDS,
    ("cert-manager.io/v1", "Issuer"): _CERT_MANAGER_CRDS,
}


def by_chart(variant: str, chart: str) -> DeclaredRelease:
    [release] = [r for r in RELEASES if r.variant == variant and r.chart.chart == chart]
    return release


def kserve_controller(variant: str) -> DeclaredRelease:
    return by_chart(variant, variant_train(variant).kserve_chart)


def train_releases(minor: str) -> list[DeclaredRelease]:
    return [r for r in RELEASES if variant_train(r.variant).kubernetes_minor == minor]


def expected(variant: str):
    """What the variant's stack config asks for, parsed on its own."""
    secrets = VARIANT_SECRETS.get(variant, {})
    return parse_stack_config({**ALL_VARIANTS[variant](), **secrets}, has_secret_private_key=True,
                              secret_keys=frozenset(secrets))


def source_of(release: DeclaredRelease):
    return need(upstream.chart_source(release.chart))


@pytest.fixture(scope="session")
def helm():
    return need(upstream.helm())


@pytest.fixture(scope="session")
def rendered(helm):
    """Objects of a release; each distinct (chart, values) is rendered once per session."""
    cache = {}

    def get(release: DeclaredRelease) -> list[dict]:
        source = source_of(release)
        key = (source, release.name, release.namespace, release.include_crds,
               json.dumps(release.values, sort_keys=True))
        if key not in cache:
            try:
                cache[key] = charts.render(helm, release, source, release.kube_version)
            except charts.RenderError as error:
                cache[key] = error
        if isinstance(cache[key], Exception):
            pytest.fail(str(cache[key]))
        return cache[key]
    return get


@pytest.fixture(scope="session")
def train_crd_validators(rendered):
    """For a train: validators for every CRD its releases render (and, on the default
    train, KServe's released CRDs); and the sources that were missing (a CRD they hold
    was not loaded). Per train: the trains' CRDs of one kind differ."""
    cache = {}

    def get(minor: str):
        if minor not in cache:
            objects, missing = [], []
            for release in train_releases(minor):
                found = upstream.chart_source(release.chart)
                if not found:
                    missing.append(found)
                    continue
                try:
                    objects += rendered(release)
                except pytest.fail.Exception:
                    pass  # its own render test reports it
            if minor == versions.KUBERNETES_MINOR:
                crds = upstream.kserve_crds_dir()
                if crds:
                    for name in versions.KSERVE_CRD_URLS:
                        objects += charts.load_yaml_documents(crds.path / name)
                else:
                    missing.append(crds)
            cache[minor] = charts.crd_validators(objects), missing
        return cache[minor]
    return get


def test_the_program_declares_the_pinned_releases():
    assert {r.variant for r in RELEASES} == set(VARIANTS)
    assert {variant_train(v).kubernetes_minor for v in VARIANTS} == set(TRAINS)
    for variant in VARIANTS:
        train = variant_train(variant)
        pinned = {(r.chart.chart, r.chart.version) for r in RELEASES if r.variant == variant}
        assert {(versions.CALICO_CHART, train.calico_version),
                ("cert-manager", train.cert_manager_version),
                ("gateway", train.istio_version),
                (versions.KSERVE_CRD_CHART, train.kserve_version),
                (train.kserve_chart, train.kserve_version)} <= pinned
        assert ((train.kserve_runtimes_chart, train.kserve_version) in pinned) == \
            bool(train.kserve_runtimes_chart)
        # Calico v3.32+ installs its CRDs from their own chart.
        assert ((versions.CALICO_CRDS_CHART, train.calico_version) in pinned) == \
            bool(train.calico_crds_chart)


# --- every release ----------------------------------------------------------------------

@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.id)
def test_values_are_the_charts_own(release):
    problems = charts.values_problems(release.values, source_of(release))
    assert not problems, f"{release.id} ({release.chart.label}):\n" + "\n".join(problems)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.id)
def test_release_renders_and_names_no_gone_image(release, rendered):
    objects = rendered(release)
    assert objects, f"{release.id} rendered nothing"
    gone = charts.gone_images(objects, versions.KNOWN_GONE_IMAGES)
    assert not gone, f"{release.id} still names images that are gone:\n" + "\n".join(gone)


@pytest.mark.parametrize("release", RELEASES, ids=lambda r: r.id)
def test_rendered_custom_resources_match_their_crds(release, rendered, train_crd_validators):
    validators, missing = train_crd_validators(variant_train(release.variant).kubernetes_minor)
    objects = rendered(release)
    check = charts.custom_resource_check(objects, validators, NO_CRD_HERE)
    assert not check.errors, "\n".join(check.errors)
    if check.unchecked:
        for found in missing:  # a CRD source was absent: skip (or fail) with its reason
            need(found)
    assert not check.unchecked, (
        f"{release.id}: no CRD was loaded for these custom resources, so nothing checked them "
        "(give the test their CRD's source, or list the kind in NO_CRD_HERE with the reason):\n"
        + "\n".join(check.unchecked))
    custom = [o for o in objects if charts.is_custom_resource(o)]
    assert len(check.validated) + len(check.excused) == len(custom)


@pytest.mark.parametrize("minor", TRAINS)
def test_every_custom_kind_the_releases_render_was_validated(minor, rendered, train_crd_validators):
    """Over a train's releases: each custom kind rendered was checked against its CRD
    (KServe's, Istio's, Calico's, the Prometheus operator's...), apart from NO_CRD_HERE,
    and each entry of NO_CRD_HERE is still rendered."""
    validators, missing = train_crd_validators(minor)
    for found in missing:
        need(found)
    validated, excused = set(), set()
    for release in train_releases(minor):
        check = charts.custom_resource_check(rendered(release), validators, NO_CRD_HERE)
        validated |= {tuple(label.split()[:2]) for label in check.validated}
        excused |= {tuple(label.split()[:2]) for label in check.excused}
        assert not check.unchecked, check.unchecked
    assert {("operator.tigera.io/v1", "Installation"), ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
            ("monitoring.coreos.com/v1", "Prometheus")} <= validated
    # (A chart source that carries cert-manager's CRDs, as the published chart does, moves
    # its kinds from excused to validated.)
    assert set(NO_CRD_HERE) <= validated | excused, "NO_CRD_HERE lists kinds no release renders"


# --- what the stack asks for --------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_service_is_the_configured_node_port(variant, rendered):
    objects = rendered(by_chart(variant, "gateway"))
    [service] = charts.find(objects, "Service", GATEWAY_RELEASE)
    # KServe and net-istio address the gateway as istio-ingressgateway.istio-system.
    assert service["metadata"]["namespace"] == ISTIO_NAMESPACE
    assert service["spec"]["type"] == "NodePort"
    [http] = [p for p in service["spec"]["ports"] if p["port"] == 80]
    assert http["nodePort"] == expected(variant).serving.ingress_node_port
    assert http["targetPort"] == 80
    # HTTPS (serving.httpsNodePort): net-istio's Gateway gets a server on 443.
    [https] = [p for p in service["spec"]["ports"] if p["port"] == 443]
    assert https["nodePort"] == expected(variant).serving.https_node_port
    assert https["targetPort"] == 443 and https["protocol"] == "TCP"


@pytest.mark.parametrize("variant", VARIANTS)
def test_gateway_pods_carry_the_labels_net_istio_selects(variant, rendered):
    objects = rendered(by_chart(variant, "gateway"))
    [deployment] = charts.find(objects, "Deployment", GATEWAY_RELEASE)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "istio-ingressgateway"
    assert labels["istio"] == "ingressgateway"
    [service] = charts.find(objects, "Service", GATEWAY_RELEASE)
    assert service["spec"]["selector"].items() <= labels.items()


def inferenceservice_config(variant, rendered) -> dict:
    objects = rendered(kserve_controller(variant))
    [config_map] = charts.find(objects, "ConfigMap", "inferenceservice-config")
    return config_map["data"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_kserve_deployment_mode_and_domain(variant, rendered):
    data = inferenceservice_config(variant, rendered)
    serving = expected(variant).serving
    # The name this train's KServe knows the mode by (v0.16 renamed them).
    mode = variant_train(variant).kserve_deployment_mode(serving.deployment_mode)
    assert json.loads(data["deploy"])["defaultDeploymentMode"] == mode
    assert json.loads(data["ingress"])["ingressDomain"] == serving.ingress_domain


@pytest.mark.parametrize("variant", VARIANTS)
def test_kserve_images_are_the_ones_the_chart_names(variant, rendered):
    """The images the program writes into the controller chart are the chart's own defaults
    at that tag (its values.yaml; an empty tag means the chart's appVersion), so each is a
    tag KServe published; only the kube-rbac-proxy default is replaced, and only where the
    chart still names the gone image. The rendered controller runs exactly those."""
    release = kserve_controller(variant)
    source = source_of(release)
    chart = yaml.safe_load((source / "Chart.yaml").read_text())
    defaults = charts.load_chart_values(source).defaults["kserve"]
    ours = release.values["kserve"]
    for part in ("controller", "agent", "router", "storage"):
        tag = defaults[part]["tag"] or chart["appVersion"]
        assert (ours[part]["image"], ours[part]["tag"]) == (defaults[part]["image"], tag), part
    default_proxy = defaults["controller"]["rbacProxyImage"]
    if default_proxy in versions.KNOWN_GONE_IMAGES:
        assert ours["controller"]["rbacProxyImage"] == versions.KUBE_RBAC_PROXY_IMAGE
    else:
        assert ours["controller"].get("rbacProxyImage", default_proxy) == default_proxy
    [deployment] = charts.find(rendered(release), "Deployment", "kserve-controller-manager")
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    controller = ours["controller"]
    assert f"{controller['image']}:{controller['tag']}" in images


@pytest.mark.parametrize("variant", VARIANTS)
def test_kserve_hosts_are_name_dot_namespace_in_every_mode(variant, rendered):
    """The chart's default `{{ .Name }}-{{ .Namespace }}...` is ambiguous; helm passes our
    template through untouched (values are not rendered as templates)."""
    ingress = json.loads(inferenceservice_config(variant, rendered)["ingress"])
    assert ingress["domainTemplate"] == "{{ .Name }}.{{ .Namespace }}.{{ .IngressDomain }}"


def test_the_variants_move_every_checked_setting_off_its_chart_default():
    # Otherwise a value the chart ignored would pass the checks above unnoticed.
    lab, raw = expected("lab"), expected("raw-deployment")
    assert raw.serving.deployment_mode != lab.serving.deployment_mode
    assert raw.serving.ingress_domain != "example.com"
    assert raw.kubernetes.pod_cidr != "192.168.0.0/16"
    assert raw.serving.ingress_node_port != lab.serving.ingress_node_port
    assert raw.serving.https_node_port != lab.serving.https_node_port


@pytest.mark.parametrize("variant", VARIANTS)
def test_modelcars_stay_off_as_validation_assumes(variant, rendered):
    # components/serving/config.py refuses oci:// storage URIs because the chart
    # leaves modelcars off; if a values change turns them on, revisit that refusal.
    storage = json.loads(inferenceservice_config(variant, rendered)["storageInitializer"])
    assert storage["enableModelcar"] is False


@pytest.mark.parametrize("variant", VARIANTS)
def test_calico_pool_and_node_address_autodetection(variant, rendered):
    objects = rendered(by_chart(variant, versions.CALICO_CHART))
    [installation] = charts.find(objects, "Installation")
    network = installation["spec"]["calicoNetwork"]
    [pool] = network["ipPools"]
    assert pool["cidr"] == expected(variant).kubernetes.pod_cidr
    assert network["nodeAddressAutodetectionV4"] == {"kubernetes": "NodeInternalIP"}


# --- the checks bite -----------------------------------------------------------------------

def test_a_misspelt_value_key_is_reported():
    release = by_chart("lab", "gateway")
    values = copy.deepcopy(release.values)
    values["service"]["tpye"] = values["service"].pop("type")
    problems = charts.values_problems(values, source_of(release))
    assert any(p.startswith("service.tpye: not a value of chart gateway")
               and "did you mean service.type?" in p for p in problems), problems


def test_a_misspelt_key_deep_in_a_chart_without_schema_is_reported():
    release = by_chart("lab", versions.KSERVE_CHART)
    values = copy.deepcopy(release.values)
    values["kserve"]["controller"]["gateway"]["domian"] = "example.org"
    problems = charts.values_problems(values, source_of(release))
    assert problems == ["kserve.controller.gateway.domian: not a value of chart kserve (not in its "
                        "values.yaml); did you mean kserve.controller.gateway.domain?"]


def test_a_schema_type_error_is_reported():
    release = by_chart("lab", "cert-manager")
    values = copy.deepcopy(release.values)
    values["crds"]["enabled"] = "yes"
    problems = charts.values_problems(values, source_of(release))
    assert any(p.startswith("crds.enabled:") for p in problems), problems


def test_a_misspelt_installation_field_fails_its_crd(helm):
    release = by_chart("lab", versions.CALICO_CHART)
    values = copy.deepcopy(release.values)
    network = values["installation"]["calicoNetwork"]
    network["nodeAddressAutodetectionV5"] = network.pop("nodeAddressAutodetectionV4")
    objects = charts.render(helm, release, source_of(release), KUBE_VERSION, values=values)
    errors = charts.custom_resource_errors(objects, charts.crd_validators(objects))
    assert any("nodeAddressAutodetectionV5" in e for e in errors), errors


def test_a_gone_image_is_found(helm):
    # The chart's own kube-rbac-proxy default is the gone gcr.io image.
    release = by_chart("lab", versions.KSERVE_CHART)
    values = copy.deepcopy(release.values)
    del values["kserve"]["controller"]["rbacProxyImage"]
    objects = charts.render(helm, release, source_of(release), KUBE_VERSION, values=values)
    assert any(found.startswith("Deployment kserve-controller-manager: gcr.io/kubebuilder/kube-rbac-proxy")
               for found in charts.gone_images(objects, versions.KNOWN_GONE_IMAGES))
