"""Inline SVG charts for the web app: line charts (loss curves) and stacked bars (traffic by variant).

    from tunewise.ui.svg import line_chart, stacked_bars
    line_chart({"loss": [(5, 4.1), (10, 1.4)]}, x_label="step")
    stacked_bars(["10:00", "10:01"], {"baseline": [9, 8], "candidate": [1, 2]}, y_label="requests")

No JavaScript and no files: the SVG is markup placed in the page, every label escaped here.
"""

from __future__ import annotations

from markupsafe import Markup, escape

__all__ = ["line_chart", "stacked_bars", "PALETTE"]

PALETTE = ["#1f5fa8", "#d9730d", "#2e7d32", "#8e24aa", "#c62828", "#00838f", "#6d4c41", "#5b6473"]
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 120, 12, 36


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10 or float(value).is_integer():
        return f"{value:.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.1f}"
    return f"{value:.3g}"


def _frame(title: str, y_low: float, y_high: float, y_label: str, x_label: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for tick in _ticks(y_low, y_high):
        y = TOP + plot_h - (tick - y_low) / ((y_high - y_low) or 1) * plot_h
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#5b6473">{escape(_fmt(tick))}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle" font-size="11" fill="#5b6473">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" font-size="11" fill="#5b6473" '
                 f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})">{escape(y_label)}</text>')
    return parts


def _legend(names: list[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        y = TOP + 8 + i * 16
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{y - 8}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 24}" y="{y + 1}" font-size="11">{escape(name)}</text>')
    return parts


def line_chart(series: dict[str, list[tuple[float, float]]], *, title: str = "", x_label: str = "", y_label: str = "") -> Markup:
    """One polyline per named series of (x, y) points, on shared axes; empty markup when there is no point."""
    points = [p for values in series.values() for p in values]
    if not points:
        return Markup("")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(0.0, min(ys)), max(ys) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> str:
        px = LEFT + ((x - x_low) / ((x_high - x_low) or 1)) * plot_w
        py = TOP + plot_h - (y - y_low) / ((y_high - y_low) or 1) * plot_h
        return f"{px:.1f},{py:.1f}"

    parts = _frame(title, y_low, y_high, y_label, x_label)
    for tick in _ticks(x_low, x_high):
        px = LEFT + ((tick - x_low) / ((x_high - x_low) or 1)) * plot_w
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="11" fill="#5b6473">{escape(_fmt(tick))}</text>')
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(at(x, y) for x, y in sorted(values))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}" data-series="{escape(name)}"/>')
        for x, y in values:
            parts.append(f'<circle cx="{at(x, y).split(",")[0]}" cy="{at(x, y).split(",")[1]}" r="2.5" fill="{color}">'
                         f'<title>{escape(name)} at {escape(_fmt(x))}: {escape(_fmt(y))}</title></circle>')
    parts += _legend(list(series))
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(buckets: list[str], counts: dict[str, list[int]], *, title: str = "", y_label: str = "", x_label: str = "") -> Markup:
    """One bar per bucket, stacked by series (counts[name][i] is bucket i's count of that series)."""
    if not buckets:
        return Markup("")
    totals = [sum(values[i] for values in counts.values()) for i in range(len(buckets))]
    top = max(totals) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(buckets)
    bar = max(slot * 0.8, 1.0)
    parts = _frame(title, 0.0, float(top), y_label, x_label)
    every = max(1, len(buckets) // 6)  # at most about six time labels
    for i, bucket in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar) / 2
        base = TOP + plot_h
        for j, (name, values) in enumerate(counts.items()):
            height = values[i] / top * plot_h
            if height <= 0:
                continue
            base -= height
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{PALETTE[j % len(PALETTE)]}" '
                         f'data-series="{escape(name)}"><title>{escape(bucket)} {escape(name)}: {values[i]}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="10" fill="#5b6473">{escape(bucket)}</text>')
    parts += _legend(list(counts))
    parts.append("</svg>")
    return Markup("".join(parts))
