"""The statistics table as CSV (``/dashboard/stats.csv``): UTF-8 with a byte-order mark so
that Excel shows the Vietnamese names right; one row per ward and day."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from server.core.enums import AlertKind
from server.dashboard import i18n
from server.dashboard.statistics import Stats


def stats_csv(data: Stats, *, days: int, lang: str) -> tuple[Iterator[bytes], str]:
    """The CSV of ``data`` (headers in ``lang``), streamed a row at a time (issue 18: the body is
    never held whole, once as text and again as bytes; the rows are bounded by wards × days), and
    the download's file name."""
    kinds = list(AlertKind)
    header = (
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

    def lines() -> Iterator[bytes]:
        out = io.StringIO()
        writer = csv.writer(out)

        def take() -> bytes:
            text = out.getvalue()
            out.seek(0)
            out.truncate()
            return text.encode("utf-8")

        writer.writerow(header)
        yield "\ufeff".encode() + take()
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
            yield take()

    name = f"isocheck-thong-ke-{data.days[-1].isoformat()}-{days}d.csv"
    return lines(), name
