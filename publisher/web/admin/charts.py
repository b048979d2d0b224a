"""Bar charts as inline SVG, drawn on the server (no script, no CDN; pure: numbers in,
markup out). Each bar carries its number as text, so the chart never relies on colour;
the pages put the same numbers in a table next to it."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 640, 200, 24, 40, 8


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[int]) -> Markup:
    """One series: a bar per label, the value written above each bar, every few labels
    written below (all of them are in the table fallback)."""
    count = max(len(values), 1)
    step = (WIDTH - 2 * LEFT) / count
    peak = max([*values, 1])
    plot = HEIGHT - TOP - BOTTOM
    every = max(1, count // 8)  # label at most ~8 positions, so the text never overlaps
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - LEFT}" '
        f'y2="{HEIGHT - BOTTOM}" class="axis"/>',
    ]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot * value / peak
        x = LEFT + index * step
        y = HEIGHT - BOTTOM - height
        width = max(step * 0.7, 1)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" data-label="{escape(label)}" data-value="{value}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if value and (count <= 16 or value == peak):
            parts.append(
                f'<text class="value" x="{x + width / 2:.1f}" y="{y - 4:.1f}" '
                f'text-anchor="middle">{value}</text>'
            )
        if index % every == 0:
            parts.append(
                f'<text class="label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}">{escape(label)}</text>'
            )
    parts.append(
        f'<text class="label" x="{WIDTH - LEFT}" y="{TOP - 8}" text-anchor="end">'
        f"highest: {peak if values else 0}</text></svg>"
    )
    return Markup("".join(parts))
