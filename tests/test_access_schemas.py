"""The Istio security resources the program creates validate against Istio 1.24.6's CRDs.

The CRDs are upstream reference data found through components/upstream.py (istio/istio
`manifests/charts/base/files/crd-all.gen.yaml` at 1.24.6), not part of this
repository; these tests are skipped, with the reason, where it is absent. The
CRDs' CEL rules (x-kubernetes-validations) are not run by jsonschema; the ones
that concern these resources are checked by hand below.
"""
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from access_fixtures import access_config, security_manifests
from test_serving_resources import strict
from components import upstream, versions
from components.access.ingress_policies import NETWORKING_API, SECURITY_API
from components.offline.program import evaluate
from upstream_needs import needs

ISTIO_BASE = upstream.ChartRef("base", versions.ISTIO_VERSION, versions.ISTIO_CHART_REPO)
ISTIO_CRDS = upstream.source(upstream.chart_subdir(ISTIO_BASE) / "files" / "crd-all.gen.yaml",
                             f"Istio {versions.ISTIO_VERSION} CRDs (istio/istio "
                             f"manifests/charts/base/files/crd-all.gen.yaml at {versions.ISTIO_VERSION})")
CRDS = ISTIO_CRDS.path or Path("/nonexistent")
pytestmark = needs(ISTIO_CRDS)


@lru_cache(maxsize=None)
def validator(kind: str, version: str, group: str = "security.istio.io") -> jsonschema.Draft7Validator:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for crd in yaml.load_all(CRDS.read_text(), Loader=loader):
        if crd and crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind:
            [entry] = [v for v in crd["spec"]["versions"] if v["name"] == version]
            assert entry["served"], f"{kind} {version} is not served by Istio 1.24.6"
            return jsonschema.Draft7Validator(strict(entry["schema"]["openAPIV3Schema"]["properties"]["spec"]))
    raise AssertionError(f"no {kind} CRD in {CRDS}")


@pytest.fixture(scope="module")
def manifests():
    found = security_manifests(evaluate(access_config()))
    # The EnvoyFilter and the HTTPS server patched onto net-istio's Gateway are
    # networking objects: each is checked against its own CRD below.
    assert {m["kind"] for m in found} == {"RequestAuthentication", "AuthorizationPolicy",
                                          "EnvoyFilter", "Gateway"}
    return [m for m in found if m["kind"] not in ("EnvoyFilter", "Gateway")]


def test_every_security_resource_validates_against_its_crd(manifests):
    group, version = SECURITY_API.split("/")
    for manifest in manifests:
        assert manifest["apiVersion"] == SECURITY_API
        errors = sorted(validator(manifest["kind"], version).iter_errors(manifest["spec"]), key=str)
        assert not errors, (manifest["metadata"]["name"], [e.message for e in errors])


def test_the_gateways_envoy_filters_validate_against_their_crd():
    """The host-port filter and the HTTP listener's https-only reply."""
    found = [m for m in security_manifests(evaluate(access_config())) if m["kind"] == "EnvoyFilter"]
    assert sorted(m["metadata"]["name"] for m in found) == ["kserve-cluster-host-port",
                                                            "kserve-cluster-https-only"]
    group, version = NETWORKING_API.split("/")
    for manifest in found:
        assert manifest["apiVersion"] == NETWORKING_API
        errors = sorted(validator("EnvoyFilter", version, group).iter_errors(manifest["spec"]),
                        key=str)
        assert not errors, [e.message for e in errors]
        assert list(validator("EnvoyFilter", version, group).iter_errors(
            {**manifest["spec"], "workloadSelector": {"matchLabels": {"istio": "ingressgateway"}}}))


def test_the_https_gateway_patch_validates_against_the_gateway_crd():
    """The patch of net-istio's knative-ingress-gateway (the HTTPS server) is a whole
    Gateway spec: it must validate against Istio's Gateway CRD at its apiVersion."""
    [found] = [m for m in security_manifests(evaluate(access_config())) if m["kind"] == "Gateway"]
    group, version = found["apiVersion"].split("/")
    assert group == "networking.istio.io"
    gateway = validator("Gateway", version, group)
    errors = sorted(gateway.iter_errors(found["spec"]), key=str)
    assert not errors, [e.message for e in errors]
    https = [s for s in found["spec"]["servers"] if s["port"]["protocol"] == "HTTPS"]
    assert https and all(s["tls"]["mode"] == "SIMPLE" and s["tls"]["credentialName"] for s in https)
    # Not a rubber stamp: a misspelt TLS field fails.
    typo = {**found["spec"], "servers": [{**https[0], "tls": {"mode": "SIMPLE", "credential": "x"}}]}
    assert list(gateway.iter_errors(typo))


def test_the_crds_cel_rules_that_apply(manifests):
    for manifest in manifests:
        spec = manifest["spec"]
        # "only one of targetRefs or selector can be set"; no wildcard in label keys or values.
        assert sum(k in spec for k in ("selector", "targetRef", "targetRefs")) == 1
        labels = spec["selector"]["matchLabels"]
        assert labels and all(k and "*" not in k and "*" not in v for k, v in labels.items())
        for rule in spec.get("jwtRules", []):
            # "only one of jwks or jwksUri can be set"
            assert sum(k in rule for k in ("jwks", "jwksUri", "jwks_uri")) == 1


def test_a_typo_in_a_field_fails_validation(manifests):
    """The strict schema is not a rubber stamp."""
    policy = next(m for m in manifests if m["kind"] == "AuthorizationPolicy")
    spec = {**policy["spec"], "rules": [{"to": [{"operation": {"host": ["x"]}}]}]}
    assert list(validator("AuthorizationPolicy", "v1").iter_errors(spec))
    assert list(validator("AuthorizationPolicy", "v1").iter_errors({**policy["spec"], "action": "REJECT"}))
