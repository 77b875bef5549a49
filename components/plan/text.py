"""The plan as text and as JSON (what scripts/plan.py prints)."""
from __future__ import annotations

from typing import Any, Optional

from components.plan.build import Plan, Step
from components.plan.outputs import scaling_words
from components.upgrade.report import report_lines


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

    lines += upgrade_lines(plan.upgrade)

    lines += ["", "Charts and manifests:"]
    installs = [s for s in plan.ordered() if s.kind in ("chart", "manifest")]
    lines += [f"  {s.name}: {s.summary}" for s in installs] or ["  (none)"]
    patches = [s for s in plan.ordered() if s.kind == "kubernetes"]
    if patches:
        lines += ["", "Other Kubernetes objects:"]
        lines += [f"  {s.name}: {s.summary}" for s in patches]

    data = uploads_and_data(plan)
    if data:
        copies = [c for _, files in data for c in files]
        sent = sum(c.details.get("bytes") or 0 for c in copies)
        lines += ["", f"Uploads and data ({len(copies)} file(s), {sent} bytes to send if "
                      "nothing was sent before):"]
        for step, files in data:
            if step is not None:
                lines.append(f"  {step.name}: {step.summary}")
            lines += [f"    file {_file_line(c)}" for c in files]

    lines += ["", "Serving runtimes:"]
    lines += [f"  {s.summary}" for s in plan.ordered() if s.kind == "runtime"] or ["  (none)"]
    lines += ["", "Models:"]
    lines += [f"  {s.summary}" for s in plan.ordered() if s.kind == "model"] or ["  (none)"]
    lines += ["", "What clients get (through the ingress gateway, from the program's outputs):"]
    lines += [line for endpoint in plan.endpoints for line in endpoint_lines(endpoint)] \
        or ["  (no model)"]
    if plan.grafana_url:
        lines += ["", f"Grafana: {plan.grafana_url}"]
    lines += ["", "Stack outputs (`pulumi stack output NAME`; secret ones need --show-secrets):"]
    lines += [f"  {output_line(o)}" for o in plan.outputs] or ["  (none)"]
    others = sorted({s.type for s in steps.values() if s.kind == "other"})
    if others:
        lines += ["", "Resource types listed without details: " + ", ".join(others)]

    lines += ["", f"Critical path (estimated durations, ~{minutes(plan.total_estimate)} in all; "
                  "marked * above):"]
    lines += [f"  {minutes(steps[u].start):>7}  {steps[u].name} (~{minutes(steps[u].estimate)})"
              for u in plan.critical_path]
    return "\n".join(lines) + "\n"


def upgrade_lines(upgrade: dict[str, Any]) -> list[str]:
    """A raised kubernetes.version: numbered steps per node, or why there are none."""
    if not upgrade:
        return []
    if "note" in upgrade:
        return ["", upgrade["note"]]
    if "refused" in upgrade:
        return ["", f"Upgrade {upgrade['current']} -> {upgrade['target']}: `pulumi up` refuses it "
                    "before any node changes:", *(f"  - {p}" for p in upgrade["refused"])]
    return ["", *report_lines(upgrade)]


def uploads_and_data(plan: Plan) -> list[tuple[Optional[Step], list[Step]]]:
    """The steps that put data in the cluster or decide its fate (claims, uploads),
    each with the files it sends (the staged copies an upload waits for); copies no
    upload waits for come last, under None."""
    ordered = plan.ordered()
    copies = {s.urn for s in ordered if s.kind == "upload"}
    data = [(s, [plan.steps[d] for d in sorted(s.deps & copies, key=lambda u: plan.steps[u].name)])
            for s in ordered if s.kind != "upload" and "data" in s.details]
    claimed = {c.urn for _, files in data for c in files}
    loose = [s for s in ordered if s.urn in copies - claimed]
    return data + ([(None, loose)] if loose else [])


def _file_line(copy: Step) -> str:
    size = copy.details.get("bytes")
    return f"{copy.details.get('source')} ({size if size is not None else '?'} bytes)"


def endpoint_lines(endpoint: dict[str, Any]) -> list[str]:
    tokens = ", ".join(f"{t['name']} (expires {t['expires'] or '?'})" for t in endpoint["tokens"])
    if not endpoint["needsToken"]:
        token = "none needed" + (f" (public in project {endpoint['project']})"
                                 if endpoint["project"] else "")
    elif tokens:
        token = f"needed, one of project {endpoint['project']}'s: {tokens}"
    else:
        token = f"needed, but project {endpoint['project']} has no token: nobody can call it"
    openai = endpoint.get("openai")
    return [f"  {endpoint['model']}",
            f"    url:       {endpoint['url']}",
            *([f"    openai:    {openai['completions']}",
               f"               {openai['chatCompletions']} (model {openai['model']!r})"]
              if openai else []),
            f"    host:      {endpoint['host']} (the Host header)",
            f"    served as: {endpoint['servedName']}",
            f"    token:     {token}",
            f"    scaling:   {scaling_words(endpoint['scaling'])}"]


def output_line(output: dict[str, Any]) -> str:
    if output["secretParts"]:
        return f"{output['name']} (secret values: {', '.join(output['secretParts'])})"
    return output["name"] + (" (secret)" if output["secret"] else "")


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
        "endpoints": plan.endpoints,
        "grafanaUrl": plan.grafana_url,
        "outputs": plan.outputs,
        "upgrade": plan.upgrade,
        "uploadsAndData": [{"step": step.name if step else None,
                            "summary": step.summary if step else None,
                            "files": [{"step": c.name, "source": c.details.get("source"),
                                       "bytes": c.details.get("bytes")} for c in files]}
                           for step, files in uploads_and_data(plan)],
        "criticalPath": {"steps": [plan.steps[u].name for u in plan.critical_path],
                         "estimatedSeconds": plan.total_estimate,
                         "note": "durations are estimates from scripts/plan.py, not measurements"},
    }
