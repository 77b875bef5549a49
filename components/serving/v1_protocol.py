"""KServe's V1 inference protocol as the tf-flower model speaks it (pure).

Shared by `scripts/predict.py` and the smoke prediction that `pulumi up` runs,
so that both send the same request and read the same answer.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass


# A 32x32 JPEG drawn for this project (a yellow disc on green): small enough to
# ride in the smoke step's input. It only proves that the model answers; send a
# real photograph with scripts/predict.py.
SMOKE_IMAGE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAoHBwgHBgoICAgLCgoLDhgQDg0NDh0VFhEYIx8lJCIfIiEmKzcvJik0KSEiMEEx"
    "NDk7Pj4+JS5ESUM8SDc9Pjv/2wBDAQoLCw4NDhwQEBw7KCIoOzs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7"
    "Ozs7Ozs7Ozs7Ozs7Ozv/wAARCAAgACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
    "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
    "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
    "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
    "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
    "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
    "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDnqKK73RNEh023SSSMNdMMs7AEocdB6dce"
    "9eBicTGhG71bPOw2GlXlZaJHBUV6JqmkW2qQFZVCy4+SUD5l/wARz0rz6WJ4JnikG142KsM5wR1pYbFRxCdlZoeJwsqDV3dM"
    "ZXomkapFqlmsqsPNUASp02t9PT0rzunxSyQSCSKRo3HRkOCPxoxWGWIilezQYXEuhJu10z0i9vYNPtWuLh9qL0A6sfQe9ecX"
    "EzXNxLO4AaVy5A6ZJzRNcTXLh55pJWAwGdixx+NR1OEwiw6et2ysVinXa0skf//Z")


def model_host(mode: str, name: str, namespace: str, domain: str) -> str:
    """The Host header the ingress routes on: `<name>.<namespace>.<domain>` in both modes.

    Serverless: Knative's default domain-template `{{.Name}}.{{.Namespace}}.{{.Domain}}`
    (knative/serving at the pinned tag, vendor/knative.dev/networking/pkg/config/config.go:56)
    with config-domain; RawDeployment: KServe's `ingress.domainTemplate`, which the program
    sets to the same shape (components/serving/kserve.py: KServe's own default,
    `<name>-<namespace>.<domain>`, is ambiguous). `mode` is kept for the callers.
    """
    del mode
    return f"{name}.{namespace}.{domain}"


def predict_path(model: str) -> str:
    return f"/v1/models/{model}:predict"


def predict_url(address: str, port: int, model: str, scheme: str = "http") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}{predict_path(model)}"


def status_url(address: str, port: int, model: str, scheme: str = "http") -> str:
    """`GET /v1/models/<model>`: 200 once the model server has the model ready."""
    return predict_url(address, port, model, scheme).removesuffix(":predict")


def build_request(image: bytes, key: str = "1") -> dict:
    """`{"instances": [{"image_bytes": {"b64": ...}, "key": ...}]}`."""
    return {"instances": [{"image_bytes": {"b64": base64.b64encode(image).decode("ascii")},
                           "key": key}]}


def request_body(image: bytes, key: str = "1") -> str:
    return json.dumps(build_request(image, key), separators=(",", ":"))


@dataclass(frozen=True)
class Prediction:
    key: str
    class_index: int
    scores: tuple[float, ...]

    @property
    def confidence(self) -> float:
        return self.scores[self.class_index] if 0 <= self.class_index < len(self.scores) else 0.0


def parse_predictions(body: dict) -> list[Prediction]:
    """Read `{"predictions": [{"prediction": i, "scores": [...], "key": k}]}`."""
    if not isinstance(body, dict) or not isinstance(body.get("predictions"), list):
        raise ValueError("the answer has no 'predictions' list")
    found = []
    for item in body["predictions"]:
        if not isinstance(item, dict) or "scores" not in item:
            raise ValueError("a prediction has no 'scores'")
        scores = tuple(float(s) for s in item["scores"])
        index = item.get("prediction")
        if not isinstance(index, int):
            index = max(range(len(scores)), key=scores.__getitem__) if scores else -1
        found.append(Prediction(str(item.get("key", "")), index, scores))
    return found
