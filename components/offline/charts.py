"""The program's Helm releases against the real charts: values checked against the
chart, the chart rendered with `helm template`, and the rendered objects searched.

Works on a chart's source directory (components/upstream.py finds it) and a helm
binary; needs no cluster. The checks report problems as lines of text, so that a
test can assert on them and a person can read them.
"""
from __future__ import annotations

import difflib
import io
import json
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import jsonschema
import yaml

from components.offline.releases import DeclaredRelease



class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader, reading a plain `=` as the string it is.

    YAML 1.1 reserves `=` for the "value key" type, which PyYAML resolves but has no
    constructor for; helm (YAML 1.2) reads it as a string. Rendered charts have it,
    e.g. kube-prometheus-stack's Prometheus rules (`operator: =`).
    """


_Loader.add_constructor("tag:yaml.org,2002:value",
                        lambda loader, node: loader.construct_scalar(node))
_LOADER = _Loader

# Values under these key paths are free-form by the chart's design, so their keys
# cannot be found in values.yaml or the templates; each says how they are checked instead.
FREE_FORM: dict[str, dict[str, str]] = {
    "tigera-operator": {
        "installation": "the chart passes the whole map (less `enabled`) as the spec of the "
                        "Installation it renders (templates/crs/custom-resources.yaml); the "
                        "rendered Installation is checked against the chart's Installation CRD",
    },
}


class RenderError(RuntimeError):
    pass


# --- values --------------------------------------------------------------------

@dataclass
class ChartValues:
    """A chart's own values.yaml and values.schema.json, the value paths its
    templates read, and its subcharts' the same."""
    name: str
    defaults: dict
    schema: Optional[dict]
    subcharts: dict[str, "ChartValues"]
    # `.Values.a.b` in a template, as a tree {"a": {"b": {}}}: keys a chart reads
    # although its values.yaml only mentions them in a comment.
    read: dict = None


# `.Values.rules.resource`, `$.Values.service.nodePort`: a path of plain names.
_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def template_reads(templates: Iterable[str]) -> dict:
    """The value paths that templates read by name, as a tree of keys.

    Paths reached another way (`index .Values "a-b"`, `with` blocks, variables) are
    not seen: those keys must be in values.yaml or the schema to count.
    """
    tree: dict = {}
    for text in templates:
        for match in _VALUES_PATH.finditer(text):
            node = tree
            for key in match.group(1).split(".")[1:]:
                node = node.setdefault(key, {})
    return tree


def _read_chart(files: Mapping[str, bytes], name: str) -> ChartValues:
    meta = yaml.load(files.get("Chart.yaml", b"") or "{}", Loader=_LOADER) or {}
    defaults = yaml.load(files.get("values.yaml", b"") or "{}", Loader=_LOADER) or {}
    schema = json.loads(files["values.schema.json"]) if "values.schema.json" in files else None
    read = template_reads(data.decode("utf-8", "replace") for path, data in files.items()
                          if path.startswith("templates/"))
    aliases = {d.get("name"): d.get("alias") or d.get("name")
               for d in meta.get("dependencies") or []}
    by_sub: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        parts = path.split("/")
        if parts[0] == "charts" and len(parts) == 2 and parts[1].endswith(".tgz"):
            for sub_name, sub_files in _tgz_charts(data).items():
                by_sub[sub_name] = sub_files
        elif parts[0] == "charts" and len(parts) > 2:
            by_sub.setdefault(parts[1], {})["/".join(parts[2:])] = data
    subcharts = {}
    for sub_name, sub_files in by_sub.items():
        sub = _read_chart(sub_files, sub_name)
        subcharts[aliases.get(sub.name, sub.name)] = sub
    return ChartValues(str(meta.get("name", name)).strip(), defaults, schema, subcharts, read)


def _tgz_charts(data: bytes) -> dict[str, dict[str, bytes]]:
    charts: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            if member.isfile():
                top, _, rest = member.name.partition("/")
                charts.setdefault(top, {})[rest] = archive.extractfile(member).read()
    return charts


def load_chart_values(chart_dir: Path) -> ChartValues:
    """Only the files that define or read values: Chart.yaml, values.yaml,
    values.schema.json and templates/, the chart's and each subchart's."""
    files = {}
    for path in chart_dir.rglob("*"):
        relative = path.relative_to(chart_dir).as_posix()
        if path.is_file() and (path.name in ("Chart.yaml", "values.yaml", "values.schema.json")
                               or "templates/" in relative
                               or (relative.startswith("charts/") and path.suffix == ".tgz")):
            files[relative] = path.read_bytes()
    return _read_chart(files, chart_dir.name)


def _resolve(schema: dict, node: Any) -> dict:
    """Follow local $refs and fold allOf/anyOf/oneOf into one node's properties."""
    if not isinstance(node, dict):
        return {}
    while "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = schema
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
    merged = dict(node)
    for key in ("allOf", "anyOf", "oneOf"):
        for part in node.get(key, []):
            part = _resolve(schema, part)
            merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
            if part.get("additionalProperties") not in (None, False):
                merged.setdefault("additionalProperties", part["additionalProperties"])
    return merged


def _schema_child(schema: Optional[dict], node: Optional[dict], key: str):
    """(declared, child node, open): whether the schema names `key` under `node`,
    the node for it, and whether `node` takes keys it does not name."""
    if schema is None or node is None:
        return False, None, False
    node = _resolve(schema, node)
    properties = node.get("properties", {})
    if key in properties:
        return True, _resolve(schema, properties[key]), False
    extra = node.get("additionalProperties")
    # Open: it says so, or it declares no keys at all (a map). An object that lists
    # its keys and says nothing more counts as closed, as the chart's values.yaml does.
    is_open = extra not in (None, False) or (
        not properties and extra is None and not node.get("patternProperties"))
    return False, (extra if isinstance(extra, dict) else None), is_open


def _union(first: Any, second: Any) -> Any:
    """Two default trees as one, for the keys they name (the second wins a leaf)."""
    if isinstance(first, dict) and isinstance(second, dict):
        return {**first, **{k: _union(first.get(k), v) for k, v in second.items()}}
    return first if second is None else second


def unknown_value_keys(values: dict, chart: ChartValues,
                       free_form: Optional[Mapping[str, str]] = None) -> list[str]:
    """Every key path in `values` that the chart does not have, with a close match.

    A key is the chart's if its values.yaml has it, or its values.schema.json
    declares it, or its templates read it by name (`.Values.rules.resource`, for
    keys whose default is only a comment), or it names a subchart: then the rest is
    checked against the parent's defaults for it and the subchart's own values,
    schema and templates. Below a key whose default is an empty map, or a schema
    object with no declared properties, or a template-read key with no default and
    no deeper reads, or a path in `free_form`, keys are the user's own. Lists are
    values, not key paths: their items are checked by a schema only.
    """
    free_form = FREE_FORM.get(chart.name, {}) if free_form is None else free_form
    problems: list[str] = []

    def walk(given: dict, defaults: Any, node: Optional[dict], read: Optional[dict],
             current: ChartValues, prefix: str):
        for key, value in given.items():
            path = f"{prefix}{key}"
            if path in free_form:
                continue
            if prefix == "" and key in current.subcharts:
                if isinstance(value, dict):
                    sub = current.subcharts[key]
                    parent_defaults = defaults.get(key) if isinstance(defaults, dict) else None
                    walk(value, _union(sub.defaults, parent_defaults), sub.schema,
                         _union(sub.read or {}, (read or {}).get(key)), sub, f"{path}.")
                continue
            in_defaults = isinstance(defaults, dict) and key in defaults
            declared, child_node, is_open = _schema_child(current.schema, node, key)
            is_read = isinstance(read, dict) and key in read
            if not in_defaults and not declared and not is_read:
                if is_open:
                    continue
                if prefix == "" and key == "global":
                    continue  # shared with every subchart: any of them may read it
                known = list(defaults) if isinstance(defaults, dict) else []
                if node is not None:
                    known += list(_resolve(current.schema, node).get("properties", {}))
                known += list(read) if isinstance(read, dict) else []
                if prefix == "":
                    known += list(current.subcharts)
                guess = difflib.get_close_matches(key, sorted(set(known)), n=1)
                problems.append(f"{path}: not a value of chart {chart.name} (not in its "
                                f"values.yaml{' or values.schema.json' if current.schema else ''})"
                                + (f"; did you mean {prefix}{guess[0]}?" if guess else ""))
                continue
            default = defaults.get(key) if in_defaults else None
            child_read = read.get(key) if is_read else None
            if not isinstance(value, dict):
                continue
            if in_defaults and (default == {} or default is None) and not declared:
                continue  # an empty map (or no default) for the user to fill
            if in_defaults and not isinstance(default, dict) and not declared:
                continue  # the type is the schema's business
            if not in_defaults and not declared and not child_read:
                continue  # read whole by a template (toYaml), with no default to hold it to
            walk(value, default if isinstance(default, dict) else None, child_node, child_read,
                 current, f"{path}.")

    walk(values, chart.defaults, chart.schema, chart.read, chart, "")
    return problems


def merged_values(defaults: Any, given: Any) -> Any:
    """What helm hands the templates: maps merged key by key, anything else
    replaced, a null removing the key."""
    if not (isinstance(defaults, dict) and isinstance(given, dict)):
        return given
    merged = dict(defaults)
    for key, value in given.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merged_values(defaults.get(key), value)
    return merged


def schema_errors(values: dict, chart: ChartValues) -> list[str]:
    """The chart's values.schema.json applied to the merged values, as helm does."""
    if chart.schema is None:
        return []
    validator_class = jsonschema.validators.validator_for(chart.schema, default=jsonschema.Draft7Validator)
    validator = validator_class(chart.schema)
    return [f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(merged_values(chart.defaults, values)),
                                key=lambda e: list(map(str, e.absolute_path)))]


def values_problems(values: dict, chart_dir: Path) -> list[str]:
    chart = load_chart_values(chart_dir)
    return unknown_value_keys(values, chart) + schema_errors(values, chart)


# --- rendering -------------------------------------------------------------------

def render(helm: Path, release: DeclaredRelease, chart_dir: Path, kube_version: str,
           values: Optional[dict] = None) -> list[dict]:
    """`helm template` of the release with its values (or `values`), as objects."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(release.values if values is None else values, file)
        file.flush()
        command = [str(helm), "template", release.name, str(chart_dir),
                   "--namespace", release.namespace, "--kube-version", kube_version,
                   "--values", file.name]
        if release.include_crds:
            command.append("--include-crds")
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RenderError(f"helm template {release.name} ({release.chart.label}) failed: "
                          f"{result.stderr.strip()}")
    return parse_documents(result.stdout)


def parse_documents(text: str) -> list[dict]:
    """The non-empty documents of a multi-document YAML text, as helm would read them."""
    return [doc for doc in yaml.load_all(text, Loader=_LOADER) if doc]


def load_yaml_documents(path: Path) -> list[dict]:
    return parse_documents(path.read_text())


def find(objects: Iterable[dict], kind: str, name: Optional[str] = None) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind
            and (name is None or o.get("metadata", {}).get("name") == name)]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _repository(image: str) -> str:
    """The image without its tag (a ':' followed by a '/' is a registry port)."""
    name, _, tag = image.partition("@")[0].rpartition(":")
    return name if name and "/" not in tag else image.partition("@")[0]


def gone_images(objects: Iterable[dict], gone: Iterable[str]) -> list[str]:
    """Every rendered object naming an image of a repository that is gone, anywhere
    in it (image fields, and JSON or YAML held in ConfigMaps). Any tag of a gone
    repository counts: the registries removed whole repositories."""
    repositories = {_repository(image) for image in gone}
    found = []
    for obj in objects:
        for text in _strings(obj):
            for repository in repositories:
                if repository in text:
                    meta = obj.get("metadata", {})
                    found.append(f"{obj.get('kind')} {meta.get('name')}: {repository} "
                                 f"({text.strip()[:120]})")
    return sorted(set(found))


# --- custom resources against their CRDs ---------------------------------------------

def strict(schema: Any) -> Any:
    """Refuse fields a CRD does not know (the API server would silently prune them)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if schema.get("type") == "object" and "properties" in schema \
                and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_validators(objects: Iterable[dict]) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> a strict validator, for every CRD among `objects`."""
    validators = {}
    for crd in find(objects, "CustomResourceDefinition"):
        spec = crd.get("spec", {})
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                validators[key] = jsonschema.Draft7Validator(strict(schema))
    return validators


# The API groups of Kubernetes itself (and aggregated APIs it serves): their kinds
# have no CustomResourceDefinition. Any other group is a custom resource.
BUILTIN_API_GROUPS = frozenset({
    "", "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
    "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "policy",
    "rbac.authorization.k8s.io", "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io",
    "storagemigration.k8s.io",
})


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_custom_resource(obj: Mapping) -> bool:
    return api_group(str(obj.get("apiVersion", ""))) not in BUILTIN_API_GROUPS


def _label(obj: Mapping) -> str:
    return f"{obj.get('apiVersion')} {obj.get('kind')} {obj.get('metadata', {}).get('name')}"


@dataclass
class CustomResourceCheck:
    """What custom_resource_check made of the custom resources among some objects."""
    errors: list[str]       # schema errors, one line each
    validated: list[str]    # "<apiVersion> <kind> <name>" of each resource checked against its CRD
    excused: list[str]      # no CRD loaded, but its kind is listed with the reason there is none
    unchecked: list[str]    # no CRD loaded and not listed: nothing checked it


def custom_resource_check(objects: Iterable[dict], validators: Mapping[tuple[str, str], Any],
                          no_crd: Mapping[tuple[str, str], str] = {}) -> CustomResourceCheck:
    """Validate every custom resource (a kind outside Kubernetes' own API groups) against
    its CRD in `validators`; `no_crd` lists (apiVersion, kind) whose CRD is known to be
    unavailable, with the reason. Anything else without a validator is `unchecked`."""
    check = CustomResourceCheck([], [], [], [])
    for obj in objects:
        if not is_custom_resource(obj):
            continue
        key = (obj.get("apiVersion"), obj.get("kind"))
        validator = validators.get(key)
        if validator is None:
            (check.excused if key in no_crd else check.unchecked).append(_label(obj))
            continue
        check.validated.append(_label(obj))
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        for error in validator.iter_errors(body):
            where = ".".join(str(p) for p in error.absolute_path)
            check.errors.append(f"{obj['kind']} {obj.get('metadata', {}).get('name')}: {where}: "
                                f"{error.message[:200]}")
    return check


def custom_resource_errors(objects: Iterable[dict], validators: Mapping[tuple[str, str], Any],
                           no_crd: Mapping[tuple[str, str], str] = {}) -> list[str]:
    """Schema errors, and a line for each custom resource no CRD checked (unless its kind
    is in `no_crd`): a resource whose CRD was not loaded does not pass silently."""
    check = custom_resource_check(objects, validators, no_crd)
    return check.errors + [f"{label}: no CRD loaded to validate it against" for label in check.unchecked]
