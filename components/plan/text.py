"""The plan as text and as JSON (what scripts/plan.py prints)."""
from __future__ import annotations

from typing import Any

from components.plan.build import Plan, Step


def minutes(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def render_text(plan: Plan) -> str:
    steps = plan.steps
    lines = [f"Plan for stack '{plan.stack}': {len(steps)} resources in "
             f"{len(plan.layers())} layers", *plan.notes, ""]
    lines.append("Nodes:")
    for node in plan.nodes:
        lines.append(f"  {node.get('name')}  {node.get('address')}  {node.get('role')}")
    for layer, groups in plan.layers():
        lines += ["", f"== Layer {layer} =="]
        for group, members in groups:
            lines.append(f"  -- {group}" + (" (directly)" if group == layer else ""))
            for step in members:
                after = ", ".join(sorted(steps[d].name for d in step.deps)) or "nothing"
                mark = " *" if step.critical else ""
                lines.append(f"    + {step.name} [{step.type}]{mark}")
                lines.append(f"        {step.summary}")
                lines.append(f"        after: {after}; starts ~{minutes(step.start)}, "
                             f"takes ~{minutes(step.estimate)}")

    lines += ["", "Commands by node (in order):"]
    by_node: dict[str, list[Step]] = {}
    for step in plan.ordered():
        if step.kind == "command":
            by_node.setdefault(step.node or "?", []).append(step)
    for node in plan.nodes:
        name = node.get("name")
        lines.append(f"  {name} ({node.get('address')}):")
        for step in by_node.pop(name, []):
            lines.append(f"    {step.name}: {step.script}")
    for name, others in by_node.items():  # hosts that are not stack nodes
        lines.append(f"  {name}:")
        lines += [f"    {step.name}: {step.script}" for step in others]

    lines += ["", "Charts and manifests:"]
    installs = [s for s in plan.ordered() if s.kind in ("chart", "manifest")]
    lines += [f"  {s.name}: {s.summary}" for s in installs] or ["  (none)"]
    patches = [s for s in plan.ordered() if s.kind == "kubernetes"]
    if patches:
        lines += ["", "Other Kubernetes objects:"]
        lines += [f"  {s.name}: {s.summary}" for s in patches]

    data = [s for s in plan.ordered() if s.kind == "upload" or "data" in s.details]
    if data:
        copies = [s for s in data if s.kind == "upload"]
        sent = sum(s.details.get("bytes") or 0 for s in copies)
        lines += ["", f"Uploads and data ({len(copies)} file(s), {sent} bytes to send if "
                      "nothing was sent before):"]
        lines += [f"  {s.name}: {s.summary}" for s in data if s.kind != "upload"]

    lines += ["", "Serving runtimes:"]
    lines += [f"  {s.summary}" for s in plan.ordered() if s.kind == "runtime"] or ["  (none)"]
    lines += ["", "Models:"]
    lines += [f"  {s.summary}" for s in plan.ordered() if s.kind == "model"] or ["  (none)"]
    others = sorted({s.type for s in steps.values() if s.kind == "other"})
    if others:
        lines += ["", "Resource types listed without details: " + ", ".join(others)]

    lines += ["", f"Critical path (estimated durations, ~{minutes(plan.total_estimate)} in all; "
                  "marked * above):"]
    lines += [f"  {minutes(steps[u].start):>7}  {steps[u].name} (~{minutes(steps[u].estimate)})"
              for u in plan.critical_path]
    return "\n".join(lines) + "\n"


def to_json(plan: Plan) -> dict[str, Any]:
    def step_json(step: Step) -> dict[str, Any]:
        return {"name": step.name, "type": step.type, "urn": step.urn, "kind": step.kind,
                "summary": step.summary, "node": step.node, "host": step.host,
                "script": step.script, "details": step.details,
                "after": sorted(plan.steps[d].name for d in step.deps),
                "estimatedStartSeconds": step.start, "estimatedSeconds": step.estimate,
                "critical": step.critical}

    return {
        "stack": plan.stack,
        "notes": plan.notes,
        "nodes": plan.nodes,
        "layers": [{"layer": layer,
                    "groups": [{"component": group, "steps": [step_json(s) for s in members]}
                               for group, members in groups]}
                   for layer, groups in plan.layers()],
        "criticalPath": {"steps": [plan.steps[u].name for u in plan.critical_path],
                         "estimatedSeconds": plan.total_estimate,
                         "note": "durations are estimates from scripts/plan.py, not measurements"},
    }
