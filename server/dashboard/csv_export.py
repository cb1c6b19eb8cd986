"""The statistics table as CSV (``/dashboard/stats.csv``): UTF-8 with a byte-order mark so
that Excel shows the Vietnamese names right; one row per ward and day."""

from __future__ import annotations

import csv
import io

from server.core.enums import AlertKind
from server.dashboard import i18n
from server.dashboard.statistics import Stats


def stats_csv(data: Stats, *, days: int, lang: str) -> tuple[bytes, str]:
    """The CSV bytes of ``data`` (headers in ``lang``) and the download's file name."""
    kinds = list(AlertKind)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            i18n.text("day", lang),
            "area_code",
            i18n.text("area", lang),
            i18n.text("monitored", lang),
            i18n.text("prompts_due", lang),
            i18n.text("prompts_done", lang),
            i18n.text("compliance", lang) + " (%)",
        ]
        + [i18n.label("alert_kind", k, lang) for k in kinds]
        + [i18n.text("ack_median", lang)]
    )
    for r in data.rows:
        writer.writerow(
            [
                r.day.isoformat(),
                r.area.code,
                r.area.name,
                r.monitored,
                r.due,
                r.completed,
                "" if r.compliance is None else r.compliance,
            ]
            + [r.alerts.get(k.value, 0) for k in kinds]
            + ["" if r.ack_median is None else r.ack_median]
        )
    name = f"isocheck-thong-ke-{data.days[-1].isoformat()}-{days}d.csv"
    return ("\ufeff" + out.getvalue()).encode("utf-8"), name
