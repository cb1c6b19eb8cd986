"""Charts as inline SVG, drawn on the server (no JavaScript chart library, no CDN).

Every function returns :class:`markupsafe.Markup` with all text escaped. Colours and strokes
are SVG presentation attributes or classes styled by ``static/dashboard.css``: the
Content-Security-Policy allows no inline ``style``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

#: One colour per alert kind (colour-blind-safe Okabe-Ito palette).
KIND_COLOURS = {
    "severe_symptoms": "#D55E00",
    "failed_verification": "#CC79A7",
    "outside_home": "#E69F00",
    "missed_checkin": "#0072B2",
    "high_risk": "#009E73",
    "non_reporting": "#999999",
}


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, title: str, body: list[str], css: str = "chart") -> Markup:
    return Markup(  # noqa: S704 - every text inside was escaped
        f'<svg class="{css}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


#: Width of one character of an 11 px label, generously (DejaVu Sans averages ~6.1 px).
_CHAR_W = 6.6


def _empty_mark(text: str, cx: float, baseline: float, slot: float) -> str:
    """The "no data" label of an empty bar slot: across the slot when it fits, else upright
    (rotated a quarter turn, reading upwards from the axis) so neighbouring days never overlap
    (issue 19: seven "Không có dữ liệu" ran into each other)."""
    if len(text) * _CHAR_W <= slot - 4:
        return (
            f'<text x="{_num(cx)}" y="{_num(baseline)}" text-anchor="middle" '
            f'class="muted empty" font-size="11">{escape(text)}</text>'
        )
    x = cx + 4  # the glyphs stand to the left of the rotated baseline: centre them in the slot
    return (
        f'<text x="{_num(x)}" y="{_num(baseline)}" text-anchor="start" '
        f'transform="rotate(-90 {_num(x)} {_num(baseline)})" '
        f'class="muted empty" font-size="11">{escape(text)}</text>'
    )


def bar_chart(
    values: Sequence[tuple[str, float | None]],
    *,
    title: str,
    y_max: float = 100.0,
    unit: str = "%",
    width: int = 640,
    height: int = 220,
    empty: str = "—",
) -> Markup:
    """Vertical bars, one per ``(label, value)``; ``None`` draws an empty slot marked ``empty``.
    The y axis runs 0 … ``y_max`` with grid lines at quarters."""
    left, right, top, bottom = 40, 10, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    body = _grid(left, top, plot_w, plot_h, 0.0, y_max, unit)
    n = max(len(values), 1)
    slot = plot_w / n
    bar_w = max(min(slot * 0.6, 48), 2)
    for i, (label, value) in enumerate(values):
        x = left + i * slot + (slot - bar_w) / 2
        cx = left + i * slot + slot / 2
        if value is None:
            body.append(_empty_mark(empty, cx, top + plot_h - 4, slot))
        else:
            h = plot_h * max(0.0, min(value, y_max)) / y_max
            y = top + plot_h - h
            body.append(
                f'<rect class="bar" x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" '
                f'height="{_num(h)}"><title>{escape(label)}: {_num(value)}{escape(unit)}</title>'
                "</rect>"
                f'<text x="{_num(cx)}" y="{_num(max(y - 3, top + 9))}" text-anchor="middle" '
                f'font-size="10">{_num(value)}</text>'
            )
        body.append(
            f'<text x="{_num(cx)}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11">{escape(label)}</text>'
        )
    return _svg(width, height, title, body)


def stacked_bars(
    labels: Sequence[str],
    series: dict[str, Sequence[int]],
    *,
    title: str,
    names: dict[str, str],
    width: int = 640,
    height: int = 250,
) -> Markup:
    """Stacked counts per label (e.g. alerts per day, one colour per kind), with a legend."""
    left, right, top, bottom = 40, 10, 12, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    y_max = max([*totals, 1])
    y_max = max(4, math.ceil(y_max / 4) * 4)
    body = _grid(left, top, plot_w, plot_h, 0.0, float(y_max), "")
    n = max(len(labels), 1)
    slot = plot_w / n
    bar_w = max(min(slot * 0.6, 48), 2)
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for kind, values in series.items():
            count = values[i]
            if not count:
                continue
            h = plot_h * count / y_max
            y -= h
            body.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}" '
                f'fill="{KIND_COLOURS.get(kind, "#555")}"><title>{escape(label)} — '
                f"{escape(names.get(kind, kind))}: {count}</title></rect>"
            )
        body.append(
            f'<text x="{_num(left + i * slot + slot / 2)}" y="{top + plot_h + 16}" '
            f'text-anchor="middle" font-size="11">{escape(label)}</text>'
        )
    lx, ly = left, top + plot_h + 26
    for kind in series:
        name = names.get(kind, kind)
        body.append(
            f'<rect x="{lx}" y="{ly}" width="10" height="10" '
            f'fill="{KIND_COLOURS.get(kind, "#555")}"/>'
            f'<text x="{lx + 14}" y="{ly + 9}" font-size="11">{escape(name)}</text>'
        )
        lx += 24 + int(len(name) * 6.2)
        if lx > width - 120:
            lx, ly = left, ly + 14
    return _svg(width, height, title, body)


def line_chart(
    points: Sequence[tuple[datetime, float]],
    *,
    title: str,
    y_min: float,
    y_max: float,
    unit: str,
    threshold: float | None = None,
    threshold_label: str = "",
    danger_below: bool = False,
    labels: Sequence[str] = (),
    width: int = 640,
    height: int = 220,
    empty: str = "—",
) -> Markup:
    """A time series: points joined by a line, x proportional to time. ``threshold`` draws a
    dashed reference line (e.g. SpO2 95 %); points beyond it (below when ``danger_below``)
    are drawn as danger dots. ``labels`` (one per point) become the points' tooltips."""
    left, right, top, bottom = 44, 12, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    body = _grid(left, top, plot_w, plot_h, y_min, y_max, unit)
    if not points:
        body.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'class="muted" font-size="13">{escape(empty)}</text>'
        )
        return _svg(width, height, title, body)
    t0 = points[0][0].timestamp()
    t1 = points[-1][0].timestamp()
    span = max(t1 - t0, 1.0)

    def xy(at: datetime, value: float) -> tuple[float, float]:
        x = left + plot_w * ((at.timestamp() - t0) / span if len(points) > 1 else 0.5)
        v = max(y_min, min(value, y_max))
        return x, top + plot_h - plot_h * (v - y_min) / (y_max - y_min)

    if threshold is not None:
        _, ty = xy(points[0][0], threshold)
        body.append(
            f'<line class="threshold" x1="{left}" y1="{_num(ty)}" x2="{left + plot_w}" '
            f'y2="{_num(ty)}" stroke-dasharray="5 4"/>'
            f'<text x="{left + plot_w - 2}" y="{_num(ty - 4)}" text-anchor="end" '
            f'class="threshold-label" font-size="10">{escape(threshold_label)}</text>'
        )
    coords = [xy(at, v) for at, v in points]
    path = " ".join(f"{_num(x)},{_num(y)}" for x, y in coords)
    body.append(f'<polyline class="series" fill="none" points="{path}"/>')
    for i, ((x, y), (_at, v)) in enumerate(zip(coords, points, strict=True)):
        bad = threshold is not None and (v < threshold if danger_below else v > threshold)
        tip = labels[i] if i < len(labels) else ""
        body.append(
            f'<circle class="{"dot danger" if bad else "dot"}" cx="{_num(x)}" cy="{_num(y)}" '
            f'r="3.5"><title>{escape(tip)} {_num(v)}{escape(unit)}</title></circle>'
        )
    if labels:
        body.append(
            f'<text x="{left}" y="{height - 8}" font-size="11">{escape(labels[0])}</text>'
            f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" font-size="11">'
            f"{escape(labels[-1])}</text>"
        )
    return _svg(width, height, title, body)


def _grid(
    left: float, top: float, w: float, h: float, lo: float, hi: float, unit: str
) -> list[str]:
    out = [
        f'<rect class="plot" x="{left}" y="{top}" width="{_num(w)}" height="{_num(h)}"/>',
    ]
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        y = top + h - h * i / 4
        out.append(
            f'<line class="grid" x1="{left}" y1="{_num(y)}" x2="{_num(left + w)}" y2="{_num(y)}"/>'
            f'<text x="{left - 4}" y="{_num(y + 4)}" text-anchor="end" font-size="10">'
            f"{_num(value)}{escape(unit)}</text>"
        )
    return out


def geofence(
    *,
    home: tuple[float, float],
    fix: tuple[float, float] | None,
    radius_m: float,
    accuracy_m: float | None,
    title: str,
    labels: dict[str, str],
    size: int = 260,
) -> Markup:
    """Home at the centre with the allowed radius; the check-in's fix with its accuracy circle.
    North is up; metres east/north from an equirectangular projection (exact enough over a few
    kilometres). The scale fits the farthest of radius and fix + accuracy (at most 5 km)."""
    c = size / 2
    body = []
    east = north = 0.0
    reach = radius_m
    if fix is not None:
        lat0 = math.radians(home[0])
        north = (fix[0] - home[0]) * 111_320.0
        east = (fix[1] - home[1]) * 111_320.0 * math.cos(lat0)
        reach = max(reach, math.hypot(east, north) + (accuracy_m or 0.0))
    reach = min(max(reach, 1.0), 5000.0) * 1.15
    scale = (c - 8) / reach
    body.append(f'<rect class="plot" x="0" y="0" width="{size}" height="{size}"/>')
    body.append(
        f'<circle class="home-zone" cx="{c}" cy="{c}" r="{_num(radius_m * scale)}">'
        f"<title>{escape(labels.get('radius', ''))}</title></circle>"
        f'<circle class="home" cx="{c}" cy="{c}" r="4"/>'
        f'<text x="{c + 6}" y="{c - 6}" font-size="11">{escape(labels.get("home", ""))}</text>'
    )
    if fix is not None:
        fx = c + max(min(east * scale, c), -c)
        fy = c - max(min(north * scale, c), -c)
        if accuracy_m:
            body.append(
                f'<circle class="fix-accuracy" cx="{_num(fx)}" cy="{_num(fy)}" '
                f'r="{_num(max(accuracy_m * scale, 2))}"/>'
            )
        body.append(
            f'<line class="fix-line" x1="{c}" y1="{c}" x2="{_num(fx)}" y2="{_num(fy)}" '
            'stroke-dasharray="3 3"/>'
            f'<circle class="fix" cx="{_num(fx)}" cy="{_num(fy)}" r="4">'
            f"<title>{escape(labels.get('fix', ''))}</title></circle>"
        )
    bar_m = _nice(reach / 3)
    bar_px = bar_m * scale
    body.append(
        f'<line class="scale" x1="8" y1="{size - 10}" x2="{_num(8 + bar_px)}" y2="{size - 10}"/>'
        f'<text x="8" y="{size - 14}" font-size="10">{_num(bar_m)} m</text>'
        f'<text x="{size - 10}" y="16" text-anchor="end" font-size="11">N ↑</text>'
    )
    return _svg(size, size, title, body, css="chart geofence")


def _nice(value: float) -> float:
    """1, 2 or 5 × a power of ten, not above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (5, 2, 1):
        if step * power <= value:
            return float(step * power)
    return float(power)
