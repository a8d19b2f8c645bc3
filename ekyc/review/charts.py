"""Bar charts rendered on the server as inline SVG: no script, no external asset, no inline style
(the CSP forbids it; SVG presentation attributes are not styles).

Each chart is an `<svg role="img">` labelled by its `<title>` and described by its `<desc>`;
the page shows the same data in a table next to it (the text alternative). Colours keep WCAG
2.2 AA contrast on white: text #1f2328 (15:1), bars #1a5fb4 (6.4:1, above the 3:1 that
graphics need), the axis #595959 (7:1).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from markupsafe import Markup, escape

TEXT = "#1f2328"
BAR = "#1a5fb4"
AXIS = "#595959"
ROW = 28  # px per bar
LABEL_W = 190  # the label column
BAR_W = 300  # the longest bar
VALUE_W = 90  # the value after the bar
PAD = 8

_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # what the bar's length shows
    text: str  # the value as the reader sees it ("42", "87.5 %")


def bar_chart(title: str, desc: str, bars: list[Bar], *, max_value: float | None = None,
              chart_id: str | None = None) -> Markup:
    """A horizontal bar chart; `max_value` fixes the scale (100 for percentages)."""
    ident = chart_id or f"chart-{next(_ids)}"
    top = max_value if max_value else max((b.value for b in bars), default=0) or 1
    height = PAD * 2 + ROW * max(len(bars), 1)
    width = LABEL_W + BAR_W + VALUE_W
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-labelledby="{ident}-t {ident}-d" font-family="system-ui, sans-serif" '
            f'font-size="14">'),
           f'<title id="{ident}-t">{escape(title)}</title>',
           f'<desc id="{ident}-d">{escape(desc)}</desc>']
    for i, bar in enumerate(bars):
        y = PAD + i * ROW
        length = 0 if bar.value <= 0 else max(1.0, BAR_W * min(bar.value / top, 1.0))
        middle = y + ROW / 2 + 5
        out.append(f'<text x="{LABEL_W - 6}" y="{middle:.1f}" text-anchor="end" '
                   f'fill="{TEXT}">{escape(_clip(bar.label))}</text>')
        if length:
            out.append(f'<rect x="{LABEL_W}" y="{y + 4}" width="{length:.1f}" '
                       f'height="{ROW - 8}" fill="{BAR}"/>')
        out.append(f'<text x="{LABEL_W + length + 6:.1f}" y="{middle:.1f}" fill="{TEXT}">'
                   f'{escape(bar.text)}</text>')
    if not bars:
        out.append(f'<text x="{LABEL_W}" y="{PAD + ROW / 2 + 5}" fill="{TEXT}">–</text>')
    out.append(f'<line x1="{LABEL_W}" y1="{PAD}" x2="{LABEL_W}" y2="{height - PAD}" '
               f'stroke="{AXIS}" stroke-width="1"/>')
    out.append("</svg>")
    return Markup("".join(out))


def _clip(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"
