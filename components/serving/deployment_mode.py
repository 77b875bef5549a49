"""KServe's deployment-mode names across the 0.16 rename, as its webhook judges them (pure).

v0.16 renamed Serverless to Knative and RawDeployment to Standard (kserve/kserve#4608).
Up to v0.15 the defaulting webhook writes `serving.kserve.io/deploymentMode: RawDeployment`
on every InferenceService when the default mode is RawDeployment, and the controller records
the mode in `status.deploymentMode`. The validating webhook then refuses every update whose
annotation differs from the recorded mode (`validateDeploymentMode`,
pkg/apis/serving/v1beta1/inference_service_validation.go at each tag):
- v0.16 .. v0.18 compare the raw annotation with the raw status;
- v0.19 and later (up to the pinned 0.20 at least) compare the raw annotation with the status *normalized* to the new
  name (constants.ParseDeploymentMode), so an unchanged legacy annotation is refused
  (kserve/kserve#5885; the fix, commit db25ef9b9, is in no tag).
Which name the status holds after the move is not something the program can know from
its stack (v0.16-v0.18 keep the recorded name as it was, yet #4798 reports the new one),
so the program reads it per InferenceService: scripts/node/kserve-mode-annotations.sh sets
each annotation to the one value the running webhook accepts, right after that webhook
is up and before the program's own updates of the models.
"""
from __future__ import annotations

from typing import Optional

from components.versions import release_key

ANNOTATION = "serving.kserve.io/deploymentMode"
LEGACY = {"Serverless": "Knative", "RawDeployment": "Standard"}


def normalized(mode: str) -> str:
    return LEGACY.get(mode, mode)


def normalizes_status(kserve_version: str) -> bool:
    """The webhook compares against the status normalized to the new name (v0.19+)."""
    return release_key(kserve_version) >= (0, 19)


def refuses(kserve_version: str, status: str, annotation: Optional[str]) -> bool:
    """The validating webhook of `kserve_version` refuses an update of an InferenceService
    whose recorded mode is `status` and whose new annotation is `annotation` (None: absent)."""
    accepted = accepted_annotation(kserve_version, status)
    return accepted is not None and annotation is not None and annotation != accepted


def accepted_annotation(kserve_version: str, status: str) -> Optional[str]:
    """The annotation this KServe accepts with this recorded mode (None: any, no status yet)."""
    if not status:
        return None
    return normalized(status) if normalizes_status(kserve_version) else status


def renames(kserve_version: str) -> bool:
    """KServe with the new names (v0.16+): the annotations may need the command."""
    return release_key(kserve_version) >= (0, 16)
