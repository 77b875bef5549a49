"""What KServe's TorchServe runtime needs under a model path, checked on the
operator's machine before anything is uploaded (pure).

The pinned KServe's `kserve-torchserve` runtime (image pytorch/torchserve-kfs
0.9.0) starts TorchServe with `--model-store=/mnt/models/model-store` and
`--ts-config=/mnt/models/config/config.properties`. Its KServe wrapper
(pytorch/serve v0.9.0, kubernetes/kserve/kserve_wrapper/__main__.py) reads that
file one line at a time, splitting each line at its first `=`; it needs
`inference_address`, `management_address`, `grpc_inference_port` and
`model_store`, parses `model_snapshot` as JSON and serves each key of its
`models` under `/v1/models/<key>`. It then looks for `*.mar` files in
`model_store`. This module reads the file the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

CONFIG_FILE = "config/config.properties"
MODEL_STORE_DIR = "model-store"
MODEL_STORE_IN_POD = "/mnt/models/model-store"  # where the runtime mounts the model path
WRAPPER_KEYS = ("inference_address", "management_address", "grpc_inference_port", "model_store")
ARCHIVE_SUFFIX = ".mar"  # torch-model-archiver's default format: a zip archive TorchServe unzips


@dataclass
class Layout:
    served_names: list[str] = field(default_factory=list)
    # (what, fix); each `what` a sentence of its own, with its subject.
    problems: list[tuple[str, str]] = field(default_factory=list)


def read_properties(text: str) -> dict[str, str]:
    """key -> value as the KServe wrapper reads config.properties."""
    found = {}
    for line in text.splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            found[name.strip()] = value.strip()
    return found


def archive_problem(names: list[str]) -> tuple[str, str]:
    """(what, fix) for model archives that are not zip archives: TorchServe unzips
    each .mar it loads, so such a model fails only in its pod."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    verb = "is not a zip archive" if len(names) == 1 else "are not zip archives"
    return (f"{shown} {verb}: TorchServe unzips every model archive (.mar) it loads, so the "
            "model would fail to load in its pod.",
            "make the archive with torch-model-archiver (its default format is a zip; "
            "examples/torchserve/build_mar.py shows how); if it is a Git LFS pointer, "
            "run `git lfs pull` first.")


def check_layout(names: set[str], read: Callable[[str], str]) -> Layout:
    """`names`: every file under the model path ("/"-separated); `read(name)`
    returns a file's text. Returns the served model names, or the problems."""
    layout = Layout()
    archives = sorted(n for n in names
                      if n.startswith(f"{MODEL_STORE_DIR}/") and n.endswith(ARCHIVE_SUFFIX))
    if CONFIG_FILE not in names:
        layout.problems.append((
            f"the path has no {CONFIG_FILE}: KServe's TorchServe runtime starts with "
            f"--ts-config=/mnt/models/{CONFIG_FILE}.",
            f"add {CONFIG_FILE} (with model_snapshot) to the uploaded directory."))
    if not archives:
        layout.problems.append((
            f"the path has no {MODEL_STORE_DIR}/*.mar: the runtime loads model archives from "
            f"{MODEL_STORE_IN_POD}.",
            f"put the archive made by torch-model-archiver in {MODEL_STORE_DIR}/."))
    if CONFIG_FILE not in names:
        return layout
    try:
        properties = read_properties(read(CONFIG_FILE))
    except (OSError, UnicodeDecodeError) as error:
        layout.problems.append((f"{CONFIG_FILE} cannot be read ({error}).",
                                "make it a readable UTF-8 text file."))
        return layout
    missing = [k for k in WRAPPER_KEYS if k not in properties]
    if missing:
        layout.problems.append((
            f"{CONFIG_FILE} lacks {', '.join(missing)}: KServe's TorchServe wrapper stops "
            "without them.",
            "set them, e.g. inference_address=http://0.0.0.0:8085, "
            "management_address=http://0.0.0.0:8085, grpc_inference_port=7070, "
            f"model_store={MODEL_STORE_IN_POD}."))
    elif properties["model_store"] != MODEL_STORE_IN_POD:
        layout.problems.append((
            f"{CONFIG_FILE} has model_store={properties['model_store']}, where the KServe "
            "wrapper finds no archive.",
            f"write model_store={MODEL_STORE_IN_POD} (the model path is mounted at /mnt/models)."))
    snapshot_text = properties.get("model_snapshot")
    if snapshot_text is None:
        layout.problems.append((
            f"{CONFIG_FILE} has no model_snapshot: it names the models TorchServe serves.",
            'add one line: model_snapshot={"name":"startup.cfg","modelCount":1,"models":'
            '{"<name>":{"1.0":{"defaultVersion":true,"marName":"<name>.mar",...}}}}.'))
        return layout
    try:
        snapshot = json.loads(snapshot_text)
    except json.JSONDecodeError as error:
        layout.problems.append((
            f"model_snapshot in {CONFIG_FILE} is not JSON on one line ({error.msg}).",
            "write the whole JSON object on the model_snapshot line, without line "
            "continuations or \\: escapes (the KServe wrapper reads one line)."))
        return layout
    models = snapshot.get("models") if isinstance(snapshot, dict) else None
    if not isinstance(models, dict) or not models:
        layout.problems.append((
            f"model_snapshot in {CONFIG_FILE} names no model under \"models\".",
            'give "models": {"<name>": {"1.0": {"marName": "<name>.mar", ...}}}.'))
        return layout
    have = {a.rsplit("/", 1)[-1] for a in archives}
    for name, model_versions in models.items():
        entries = model_versions.values() if isinstance(model_versions, dict) else []
        for entry in entries:
            mar = entry.get("marName") if isinstance(entry, dict) else None
            if isinstance(mar, str) and archives and mar not in have:
                layout.problems.append((
                    f"model_snapshot names {mar} for model {name!r}, which is not in "
                    f"{MODEL_STORE_DIR}/ (found: {', '.join(sorted(have))}).",
                    "fix marName or add the archive."))
    layout.served_names = list(models)
    return layout
