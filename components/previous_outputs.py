"""The stack's own outputs of the last successful `pulumi up`, read back in this run.

Some refusals need what the stack was before this run: a project dropped while its
models stay (components/access/project_removal.py), a control-plane change that
removes two members at once or leaves an even count that is no one-step shrink
(components/cluster/control_plane_change.py). They read it through one
StackReference to this very stack, because:
- it is read in `pulumi preview` too, so the preview already refuses;
- a failed `pulumi up` leaves the outputs of the last successful one;
- it works under the mock runtime like any stack output
  (components/offline/program.py `ClusterMocks(previous_outputs=...)`);
- a first `up` (no outputs yet) reads nothing: there is nothing to compare with.

One StackReference per program (a second one with the same name would collide):
__main__.py makes one `PreviousOutputs` and hands it to every check.
"""
from __future__ import annotations

from typing import Any, Optional

import pulumi

REFERENCE_NAME = "previous-run"


def self_reference_name() -> str:
    """This stack's fully qualified name; a DIY backend's organization is `organization`."""
    organization = pulumi.get_organization() or "organization"
    return f"{organization}/{pulumi.get_project()}/{pulumi.get_stack()}"


class PreviousOutputs:
    """Named outputs of the last successful `pulumi up` (None where there is none)."""

    def __init__(self, reference: Optional[pulumi.StackReference] = None):
        self._reference = reference

    @property
    def reference(self) -> pulumi.StackReference:
        # Made on first use, so a program that reads nothing registers nothing.
        if self._reference is None:
            self._reference = pulumi.StackReference(REFERENCE_NAME,
                                                    stack_name=self_reference_name())
        return self._reference

    def read(self, *names: str) -> pulumi.Output[dict[str, Any]]:
        """{name: value} of the given outputs. Only outputs that are not secret are
        read here, so the result stays a plain value that gates can wait on."""
        values = pulumi.Output.all(*[self.reference.get_output(name) for name in names])
        return pulumi.Output.unsecret(values.apply(lambda got: dict(zip(names, got))))
