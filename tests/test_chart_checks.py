"""The chart checks of components/offline/charts.py on small made-up charts: they run
everywhere, with no upstream files and no helm."""
import io
import json
import tarfile

from components.offline import charts


def chart(tmp_path, values: str, schema=None, chart_yaml="name: demo\nversion: 1.0.0\n", name="demo"):
    directory = tmp_path / name
    directory.mkdir(parents=True)
    (directory / "Chart.yaml").write_text(chart_yaml)
    (directory / "values.yaml").write_text(values)
    if schema is not None:
        (directory / "values.schema.json").write_text(json.dumps(schema))
    return directory


VALUES = """
service:
  type: ClusterIP
  ports: []
podAnnotations: {}
certs:
  key:
image:
  repository: example/app
  tag: ""
"""


def test_known_keys_pass_and_a_misspelt_one_is_named_with_a_guess(tmp_path):
    directory = chart(tmp_path, VALUES)
    good = {"service": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
            "image": {"tag": "1.0"}}
    assert charts.values_problems(good, directory) == []
    bad = {"service": {"tpye": "NodePort"}, "imgae": {"tag": "1.0"}}
    assert charts.values_problems(bad, directory) == [
        "service.tpye: not a value of chart demo (not in its values.yaml); did you mean service.type?",
        "imgae: not a value of chart demo (not in its values.yaml); did you mean image?",
    ]


def test_under_an_empty_map_or_a_null_default_keys_are_free(tmp_path):
    directory = chart(tmp_path, VALUES)
    values = {"podAnnotations": {"anything": "goes"}, "certs": {"key": {"nested": 1}}}
    assert charts.values_problems(values, directory) == []


def test_a_documented_free_form_path_is_skipped(tmp_path):
    loaded = charts.load_chart_values(chart(tmp_path, "installation:\n  enabled: true\n"))
    values = {"installation": {"calicoNetwork": {"ipPools": []}}}
    assert charts.unknown_value_keys(values, loaded, free_form={}) != []
    assert charts.unknown_value_keys(values, loaded, free_form={"installation": "why"}) == []


def test_keys_the_schema_declares_count_and_open_schema_maps_are_free(tmp_path):
    schema = {"$ref": "#/$defs/values", "$defs": {"values": {"type": "object", "properties": {
        "service": {"type": "object", "properties": {"type": {"type": "string"},
                                                     "externalIPs": {"type": "array"}}},
        "labels": {"type": "object"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
    }}}}
    directory = chart(tmp_path, "service:\n  type: ClusterIP\n", schema=schema)
    assert charts.values_problems({"service": {"externalIPs": ["10.0.0.1"]},
                                   "labels": {"team": "ml"}, "env": {"A": "1"}}, directory) == []
    problems = charts.values_problems({"service": {"tpye": "x"}}, directory)
    assert problems == ["service.tpye: not a value of chart demo (not in its values.yaml or "
                        "values.schema.json); did you mean service.type?"]


def test_schema_errors_are_reported_on_the_merged_values(tmp_path):
    schema = {"type": "object", "required": ["replicas"],
              "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"}}}
    directory = chart(tmp_path, "replicas: 1\nname: demo\n", schema=schema)
    # The default satisfies `required`, as it does for helm.
    assert charts.values_problems({"name": "other"}, directory) == []
    assert charts.values_problems({"replicas": "two"}, directory) == \
        ["replicas: 'two' is not of type 'integer'"]


def test_subchart_values_are_checked_against_the_subchart(tmp_path):
    directory = chart(tmp_path, "enabled: true\n",
                      chart_yaml="name: stack\ndependencies:\n- name: grafana\n  alias: dashboards\n")
    sub = directory / "charts" / "grafana"
    sub.mkdir(parents=True)
    (sub / "Chart.yaml").write_text("name: grafana\n")
    (sub / "values.yaml").write_text("adminUser: admin\npersistence:\n  enabled: false\n")
    assert charts.values_problems({"dashboards": {"persistence": {"enabled": True}},
                                   "global": {"imageRegistry": "x"}}, directory) == []
    assert charts.values_problems({"dashboards": {"adminUsr": "me"}}, directory) == [
        "dashboards.adminUsr: not a value of chart stack (not in its values.yaml); "
        "did you mean dashboards.adminUser?"]


def test_a_subchart_key_set_by_the_parent_or_the_subchart_counts(tmp_path):
    # The parent's values.yaml has a section for the subchart: its keys and the
    # subchart's own both count, and a misspelling of either is still caught.
    directory = chart(tmp_path, "grafana:\n  enabled: true\n  adminPassword: x\n",
                      chart_yaml="name: stack\ndependencies:\n- name: grafana\n")
    sub = directory / "charts" / "grafana"
    sub.mkdir(parents=True)
    (sub / "Chart.yaml").write_text("name: grafana\n")
    (sub / "values.yaml").write_text("resources: {}\nsidecar:\n  dashboards:\n    enabled: false\n")
    good = {"grafana": {"enabled": True, "resources": {"limits": {"cpu": 1}},
                        "sidecar": {"dashboards": {"enabled": True}}}}
    assert charts.values_problems(good, directory) == []
    assert charts.values_problems({"grafana": {"sidecar": {"dashboard": {}}}}, directory) == [
        "grafana.sidecar.dashboard: not a value of chart stack (not in its values.yaml); "
        "did you mean grafana.sidecar.dashboards?"]


def test_keys_a_template_reads_count_though_values_yaml_only_comments_them(tmp_path):
    directory = chart(tmp_path, "rules:\n  default: true\n  # resource: {}\nservice:\n  type: ClusterIP\n")
    (directory / "templates").mkdir()
    (directory / "templates" / "cm.yaml").write_text(
        "{{- if .Values.rules.resource }}\n{{ toYaml .Values.rules.resource }}\n{{- end }}\n"
        "port: {{ $.Values.service.nodePort }}\n")
    good = {"rules": {"resource": {"cpu": {"containerQuery": "q"}}},
            "service": {"type": "NodePort", "nodePort": 30080}}
    assert charts.values_problems(good, directory) == []
    assert charts.values_problems({"rules": {"resorce": {}}, "service": {"nodeport": 1}}, directory) == [
        "rules.resorce: not a value of chart demo (not in its values.yaml); did you mean rules.resource?",
        "service.nodeport: not a value of chart demo (not in its values.yaml); did you mean service.nodePort?",
    ]


def test_template_reads_are_whole_names():
    reads = charts.template_reads(["{{ .Values.sidecar.dashboards.enabled }}",
                                   "{{ index .Values \"a-b\" }} {{ $root.Values.x }}"])
    assert reads == {"sidecar": {"dashboards": {"enabled": {}}}, "x": {}}


def test_a_plain_equals_sign_reads_as_a_string():
    # YAML 1.1's "value" tag: PyYAML's own safe loader cannot construct it.
    [doc] = charts.parse_documents("kind: PrometheusRule\nmatch:\n  operator: =\n  list: [=, '!=']\n")
    assert doc["match"] == {"operator": "=", "list": ["=", "!="]}


def test_a_packed_subchart_is_read_too(tmp_path):
    directory = chart(tmp_path, "enabled: true\n", chart_yaml="name: stack\n")
    (directory / "charts").mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        files = {"redis/Chart.yaml": "name: redis\n", "redis/values.yaml": "auth:\n  enabled: true\n"}
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    (directory / "charts" / "redis-1.0.0.tgz").write_bytes(buffer.getvalue())
    assert charts.values_problems({"redis": {"auth": {"enabled": False}}}, directory) == []
    assert charts.values_problems({"redis": {"auht": {}}}, directory) != []


def test_merged_values_follow_helm():
    defaults = {"a": {"b": 1, "c": [1, 2]}, "d": 4}
    assert charts.merged_values(defaults, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}}


def pod(name, image):
    return {"kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": image}]}}}}


def test_gone_images_are_found_anywhere_with_any_tag():
    objects = [
        pod("ctl", "gcr.io/kubebuilder/kube-rbac-proxy:v0.8.0"),
        {"kind": "ConfigMap", "metadata": {"name": "cfg"},
         "data": {"proxy": '{"image": "gcr.io/kubebuilder/kube-rbac-proxy:v0.13.1"}'}},
        pod("fine", "quay.io/brancz/kube-rbac-proxy:v0.18.0"),
    ]
    found = charts.gone_images(objects, ["gcr.io/kubebuilder/kube-rbac-proxy:v0.13.1"])
    assert [f.split(":")[0] for f in found] == ["ConfigMap cfg", "Deployment ctl"]


def test_custom_resources_are_held_to_their_crd():
    spec = {"type": "object", "properties": {
        "size": {"type": "integer"},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    schema = {"type": "object", "properties": {"spec": spec}}
    crd = {"kind": "CustomResourceDefinition", "spec": {
        "group": "example.org", "names": {"kind": "Widget"},
        "versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]}}
    good = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1, "extra": {"free": True}}}
    bad = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"sise": 1}}
    validators = charts.crd_validators([crd])
    assert charts.custom_resource_errors([good], validators) == []
    [error] = charts.custom_resource_errors([bad], validators)
    assert error.startswith("Widget w: spec: Additional properties are not allowed ('sise'")


def test_a_custom_resource_without_its_crd_is_reported_not_passed():
    crd = {"kind": "CustomResourceDefinition", "spec": {
        "group": "example.org", "names": {"kind": "Widget"},
        "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    widget = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    gadget = {"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    issuer = {"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "i"}}
    core = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
            {"apiVersion": "apiextensions.k8s.io/v1", **crd}]
    validators = charts.crd_validators([crd])
    assert charts.custom_resource_errors([widget, gadget, *core], validators) == \
        ["example.org/v1 Gadget g: no CRD loaded to validate it against"]
    no_crd = {("cert-manager.io/v1", "Issuer"): "its CRD is not in the chart source"}
    check = charts.custom_resource_check([widget, gadget, issuer, *core], validators, no_crd)
    assert check.validated == ["example.org/v1 Widget w"]
    assert check.excused == ["cert-manager.io/v1 Issuer i"]
    assert check.unchecked == ["example.org/v1 Gadget g"]
    assert check.errors == []
