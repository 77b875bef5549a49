#!/usr/bin/env python3
"""Write model/model-store/adder.mar: a TorchServe model archive (a zip with
MAR-INF/MANIFEST.json and the handler), byte for byte the same on every run.

    examples/torchserve/build_mar.py

torch-model-archiver makes the same layout; this keeps the example free of a
torch install.
"""
import json
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE / "model" / "model-store" / "adder.mar"
HANDLER = "adder_handler.py"
MANIFEST = {
    "createdOn": "01/01/2026 00:00:00",
    "runtime": "python",
    "model": {"modelName": "adder", "handler": HANDLER, "modelVersion": "1.0"},
    "archiverVersion": "0.9.0",
}
STAMP = (2026, 1, 1, 0, 0, 0)


def build(target: Path = ARCHIVE) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (("MAR-INF/MANIFEST.json", json.dumps(MANIFEST, indent=2) + "\n"),
                           (HANDLER, (HERE / HANDLER).read_text())):
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return target


if __name__ == "__main__":
    print(build())
