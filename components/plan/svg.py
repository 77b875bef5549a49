"""Draw a plan's deployment graph as SVG (pure Python), or PNG through a converter.

Layout: one column per rank (the longest chain of steps before a step), one
horizontal band per kind of component (every PreparedNode in one band, every
WorkerNode in another, ...), bands in the order they start. Edges run left to
right; the critical path is drawn in red.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from components.plan.build import Plan, Step
from components.plan.text import minutes

BOX_WIDTH = 200
BOX_HEIGHT = 40
COLUMN_GAP = 70
ROW_GAP = 12
BAND_PAD = 12
LABEL_WIDTH = 190
TOP = 70
CRITICAL = "#c62828"
EDGE = "#9e9e9e"
BAND_FILLS = ("#f3f6fb", "#fbf7f0")
KIND_FILLS = {"command": "#e3f2fd", "chart": "#e8f5e9", "manifest": "#e8f5e9",
              "model": "#fff3e0", "runtime": "#fff8e1", "kubernetes": "#f3e5f5",
              "provider": "#eceff1", "other": "#ffffff"}


class GraphOutputError(Exception):
    pass


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _subtitle(step: Step) -> str:
    what = {
        "command": f"{step.script} @ {step.node}",
        "chart": f"chart {step.details.get('chart')} {step.details.get('version')}",
        "manifest": "manifest",
        "model": "InferenceService",
        "runtime": step.details.get("kind", "runtime"),
        "kubernetes": step.details.get("kind", "object"),
        "provider": "provider",
    }.get(step.kind, step.type.rsplit(":", 1)[-1])
    return f"{what} · ~{minutes(step.estimate)}"


def layout(plan: Plan) -> tuple[dict[str, tuple[float, float]], list[dict], float, float]:
    """Box positions by URN, bands (label, y, height), and the picture's size."""
    bands: dict[str, list[Step]] = {}
    for step in plan.ordered():
        bands.setdefault(step.group_type, []).append(step)
    # Same order as the text: a band after the bands whose work it waits for.
    bands = dict(sorted(bands.items(), key=lambda item: (max(s.start for s in item[1]), item[0])))
    positions: dict[str, tuple[float, float]] = {}
    band_rows = []
    y = TOP
    max_rank = max((s.rank for s in plan.steps.values()), default=0)
    for index, (band, members) in enumerate(bands.items()):
        per_column: dict[int, int] = {}
        for step in members:
            row = per_column.get(step.rank, 0)
            per_column[step.rank] = row + 1
            x = LABEL_WIDTH + step.rank * (BOX_WIDTH + COLUMN_GAP)
            positions[step.urn] = (x, y + BAND_PAD + row * (BOX_HEIGHT + ROW_GAP))
        rows = max(per_column.values())
        height = 2 * BAND_PAD + rows * BOX_HEIGHT + (rows - 1) * ROW_GAP
        instances = sorted({s.group.split(" ", 1)[-1] for s in members})
        band_rows.append({"label": band, "instances": instances, "y": y, "height": height,
                          "fill": BAND_FILLS[index % 2]})
        y += height
    width = LABEL_WIDTH + (max_rank + 1) * (BOX_WIDTH + COLUMN_GAP)
    return positions, band_rows, width, y + 40


def render_svg(plan: Plan) -> str:
    positions, bands, width, height = layout(plan)
    on_path = set(zip(plan.critical_path, plan.critical_path[1:]))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
           f'<title>Deployment graph of stack {escape(plan.stack)}</title>',
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
           f'<text x="12" y="24" font-size="16" font-weight="bold">'
           f'{escape(plan.stack)}: deployment graph ({len(plan.steps)} steps)</text>',
           f'<text x="12" y="46" fill="{CRITICAL}">Red: critical path, ~'
           f'{minutes(plan.total_estimate)} with estimated step durations '
           f'(scripts/plan.py). Columns: order of start; bands: layers.</text>']
    for band in bands:
        out.append(f'<g class="band"><rect x="0" y="{band["y"]}" width="{width:.0f}" '
                   f'height="{band["height"]}" fill="{band["fill"]}"/>'
                   f'<text x="10" y="{band["y"] + 20}" font-weight="bold">'
                   f'{escape(_clip(band["label"], 28))}</text>'
                   f'<text x="10" y="{band["y"] + 36}" fill="#555">'
                   f'{escape(_clip(", ".join(band["instances"]), 30))}</text></g>')
    # Edges under the boxes: from the right edge of a step to the left edge of the next.
    for urn, step in sorted(plan.steps.items()):
        x2, y2 = positions[urn]
        for dep in sorted(step.deps):
            x1, y1 = positions[dep]
            x1, y1, y2c = x1 + BOX_WIDTH, y1 + BOX_HEIGHT / 2, y2 + BOX_HEIGHT / 2
            bend = (x2 - x1) / 2
            critical = (dep, urn) in on_path
            colour, stroke = (CRITICAL, 3) if critical else (EDGE, 1.2)
            # Every Kubernetes object waits for the provider: dashed, so the other edges stand out.
            dashed = ' stroke-dasharray="4 4" stroke-opacity="0.5"' if (
                plan.steps[dep].kind == "provider" and not critical) else ""
            out.append(f'<path class="{"edge critical" if critical else "edge"}" '
                       f'd="M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2c:.0f} '
                       f'{x2:.0f},{y2c:.0f}" fill="none" stroke="{colour}" stroke-width="{stroke}"{dashed}>'
                       f'<title>{escape(plan.steps[dep].name)} \u2192 {escape(step.name)}</title></path>')
    for urn, step in sorted(plan.steps.items()):
        x, y = positions[urn]
        border, stroke = (CRITICAL, 2.5) if step.critical else ("#607d8b", 1)
        tooltip = f"{step.name} [{step.type}]\n{step.summary}"
        out.append(f'<g class="{"step critical" if step.critical else "step"}" '
                   f'data-urn={quoteattr(urn)}>'
                   f'<title>{escape(tooltip)}</title>'
                   f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="5" '
                   f'fill="{KIND_FILLS.get(step.kind, "#ffffff")}" stroke="{border}" '
                   f'stroke-width="{stroke}"/>'
                   f'<text x="{x + 8:.0f}" y="{y + 16:.0f}" font-weight="bold">'
                   f'{escape(_clip(step.name, 27))}</text>'
                   f'<text x="{x + 8:.0f}" y="{y + 32:.0f}" font-size="10" fill="#444">'
                   f'{escape(_clip(_subtitle(step), 38))}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_to_png(svg: str, target: Path) -> None:
    """PNG needs a rasteriser; this project adds no heavy dependency for one."""
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "graph.svg"
        source.write_text(svg)
        if shutil.which("rsvg-convert"):
            subprocess.run(["rsvg-convert", "-f", "png", "-o", str(target), str(source)], check=True)
            return
        try:
            import cairosvg  # optional, not in requirements
        except ImportError:
            raise GraphOutputError(
                f"Cannot write {target}: PNG output needs rsvg-convert "
                "(apt-get install librsvg2-bin) or the cairosvg Python package, and neither is "
                "installed. Use --graph FILE.svg instead; no file was written.") from None
        cairosvg.svg2png(bytestring=svg.encode(), write_to=str(target))


def write_graph(plan: Plan, target: Path) -> None:
    svg = render_svg(plan)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".png":
        _svg_to_png(svg, target)
    else:
        target.write_text(svg)
