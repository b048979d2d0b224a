"""Bar charts as inline SVG, drawn on the server (no script, no CDN; pure: numbers in,
markup out). Each bar carries its number as text, so the chart never relies on colour;
the pages put the same numbers in a table next to it.

Text is placed by its box: every label's box is estimated from its length at the chart's
font size (FONT, the stylesheet's 12px in the viewBox's units, CHAR em per character: wide
enough for digits and most letters), and a label whose box would meet one already drawn is
left out (the table has every number). An empty chart (no values, or all zero) draws no
scale at all: it says "No data yet"."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 640, 200, 24, 40, 8
FONT = 12.0  # svg.chart text { font-size: 12px } in admin.css: one unit of the viewBox a px
CHAR = 0.62  # the width of a character in em (digits are 0.55-0.6 in common sans faces)
GAP = 2.0  # clear space kept around every label
EMPTY = "No data yet"


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def meets(self, other: Box, gap: float = GAP) -> bool:
        return not (
            self.right + gap <= other.left
            or other.right + gap <= self.left
            or self.bottom + gap <= other.top
            or other.bottom + gap <= self.top
        )


def text_box(x: float, y: float, text: str, anchor: str = "start") -> Box:
    """The box a label drawn at (x, y) (its baseline) takes, by the estimate above."""
    width = len(text) * CHAR * FONT
    left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
    return Box(left, y - FONT, left + width, y + FONT * 0.25)  # descenders below the line


def _open(chart_id: str, title: str) -> list[str]:
    return [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - LEFT}" '
        f'y2="{HEIGHT - BOTTOM}" class="axis"/>',
    ]


def _text(cls: str, x: float, y: float, text: str, anchor: str) -> str:
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _labels(
    labels: Sequence[str], values: Sequence[int], step: float, width: float, plot: float
) -> list[str]:
    """The value above each bar and the label under it, each drawn only where its box
    meets no other: the highest bar's value first, then left to right."""
    peak = max(values)
    placed: list[Box] = []
    parts: list[str] = []
    below = HEIGHT - BOTTOM + 16
    bars = [
        Box(LEFT + i * step, HEIGHT - BOTTOM - plot * v / peak, LEFT + i * step + width, HEIGHT)
        for i, v in enumerate(values)
    ]
    order = sorted(range(len(values)), key=lambda i: (values[i] != peak, i))
    for index in order:
        value = values[index]
        half = len(str(value)) * CHAR * FONT / 2 + 1  # inside the chart at either end
        centre = min(max(LEFT + index * step + width / 2, half), WIDTH - half)
        y = HEIGHT - BOTTOM - plot * value / peak - 4
        box = text_box(centre, y, str(value), "middle")
        # a number may come close to a bar (it sits just above its own), never onto one
        on_bar = any(box.meets(b, 0) for i, b in enumerate(bars) if i != index and values[i])
        fits = box.left >= 0 and box.right <= WIDTH and not on_bar
        if value and fits and not any(box.meets(b) for b in placed):
            placed.append(box)
            parts.append(_text("value", centre, y, str(value), "middle"))
    for index, label in enumerate(labels):
        x = LEFT + index * step
        box = text_box(x, below, label)
        if box.right <= WIDTH and not any(box.meets(b) for b in placed):
            placed.append(box)
            parts.append(_text("label", x, below, label, "start"))
    return parts


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[int]) -> Markup:
    """One series: a bar per label, the value written above each bar, the labels under
    them where they fit (all of them are in the table fallback)."""
    parts = _open(chart_id, title)
    if not values or max(values) <= 0:
        parts.append(_text("empty", WIDTH / 2, HEIGHT / 2, EMPTY, "middle") + "</svg>")
        return Markup("".join(parts))
    step = (WIDTH - 2 * LEFT) / len(values)
    peak, plot = max(values), HEIGHT - TOP - BOTTOM
    width = max(step * 0.7, 1)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot * value / peak
        parts.append(
            f'<rect class="bar" x="{LEFT + index * step:.1f}" y="{HEIGHT - BOTTOM - height:.1f}" '
            f'width="{width:.1f}" height="{height:.1f}" data-label="{escape(label)}" '
            f'data-value="{value}"><title>{escape(label)}: {value}</title></rect>'
        )
    parts += _labels(labels, values, step, width, plot)
    parts.append("</svg>")
    return Markup("".join(parts))
