"""A small SVG timeline of the HPA demo, pure Python: one <path> per series.

Three stacked panels sharing the time axis:
  replicas (current, desired) · CPU % (current, target) · load (req/s, p99 ms)
Each panel has its own y scale; the load panel scales req/s on the left axis and
p99 on the right one. A series with no values (e.g. req/s under hey) is left out.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

WIDTH, PANEL_H, TOP, LEFT, RIGHT, GAP = 760, 150, 56, 60, 60, 44
COLOURS = {"replicas": "#1f77b4", "desired": "#ff7f0e", "cpu": "#2ca02c", "target": "#d62728",
           "rps": "#9467bd", "p99": "#8c564b"}
LABELS = {"replicas": "replicas", "desired": "desired replicas", "cpu": "CPU %", "target": "CPU target %",
          "rps": "req/s", "p99": "p99 ms"}


def _nice_max(v: float) -> float:
    """The smallest 1/2/2.5/5 x 10^n at or above v (axis top)."""
    if v <= 0:
        return 1.0
    for mag in range(-3, 10):
        for step in (1, 2, 2.5, 5):
            if step * 10 ** mag >= v:
                return step * 10 ** mag
    return v


def _fmt(v: float) -> str:
    return f"{v:g}" if v < 1000 else f"{v:,.0f}"


def series(samples, name: str) -> list[tuple[float, float]]:
    key = {"replicas": "replicas", "desired": "desired", "cpu": "cpu", "target": "cpu_target",
           "rps": "rps", "p99": "p99"}[name]
    out = []
    for s in samples:
        v = getattr(s, key)
        if v is None:
            continue
        out.append((float(s.t), float(v) * (1000 if name == "p99" else 1)))
    return out


def path_d(points, x, y) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x(px):.1f},{y(py):.1f}" for i, (px, py) in enumerate(points))


def render(samples, title: str = "HPA timeline") -> str:
    t_max = max((float(s.t) for s in samples), default=1.0) or 1.0
    plot_w = WIDTH - LEFT - RIGHT
    panels = [("replicas", ["replicas", "desired"], None), ("CPU %", ["cpu", "target"], None),
              ("load", ["rps"], ["p99"])]
    height = TOP + len(panels) * (PANEL_H + GAP) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']

    def x(v: float) -> float:
        return LEFT + plot_w * v / t_max

    for n, (name, left, right) in enumerate(panels):
        top = TOP + n * (PANEL_H + GAP)
        bottom = top + PANEL_H
        out.append(f'<g class="panel" data-panel="{escape(name)}">')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#bbb"/>')
        out.append(f'<text x="{LEFT}" y="{top - 7}" fill="#555" font-weight="bold">{escape(name)}</text>')
        legend_x = LEFT + 80
        for side, names in (("left", left), ("right", right or [])):
            data = {k: series(samples, k) for k in names}
            data = {k: v for k, v in data.items() if v}
            if not data:
                continue
            top_v = _nice_max(max(py for pts in data.values() for _, py in pts) * (1.1 if name != 'replicas' else 1.0))

            def y(v: float, top_v=top_v, bottom=bottom) -> float:
                return bottom - PANEL_H * v / top_v

            ax = LEFT - 6 if side == "left" else LEFT + plot_w + 6
            anchor = "end" if side == "left" else "start"
            for frac in (0, 0.5, 1):
                out.append(f'<text x="{ax}" y="{y(top_v * frac) + 4:.1f}" text-anchor="{anchor}" '
                           f'fill="#555">{_fmt(top_v * frac)}</text>')
            for k, pts in data.items():
                out.append(f'<path data-series="{k}" d="{path_d(pts, x, y)}" fill="none" '
                           f'stroke="{COLOURS[k]}" stroke-width="2"/>')
                out.append(f'<rect x="{legend_x}" y="{top - 16}" width="10" height="10" fill="{COLOURS[k]}"/>'
                           f'<text x="{legend_x + 14}" y="{top - 7}">{escape(LABELS[k])}</text>')
                legend_x += 24 + 7 * len(LABELS[k])
        out.append("</g>")
    axis_y = TOP + len(panels) * (PANEL_H + GAP) - GAP + 16
    for frac in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<text x="{x(t_max * frac):.1f}" y="{axis_y}" text-anchor="middle" fill="#555">'
                   f'{t_max * frac:.0f}s</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{axis_y + 16}" text-anchor="middle">seconds since the load '
               f'started</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_timeline(samples, path, title: str = "HPA timeline") -> Path:
    path = Path(path)
    tmp = path.with_suffix(".svg.tmp")
    tmp.write_text(render(samples, title))
    tmp.replace(path)
    return path
