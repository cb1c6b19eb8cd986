"""The statistics table as CSV (``/dashboard/stats.csv``): UTF-8 with a byte-order mark so
that Excel shows the Vietnamese names right; one row per ward and day (the page itself may sum
the wards by district; the CSV keeps them)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from server.core.enums import AlertKind
from server.dashboard import i18n
from server.dashboard.rollup import stream_ward_rows
from server.dashboard.statistics import Frame, StatRow, aggregate_days

#: rows written between two chunks of the response
CHUNK = 500


def _percent(done: int, due: int) -> float | str:
    return round(100.0 * done / due, 1) if due else ""


def live_ward_rows(
    *, session: Session, frame: Frame, now: datetime, zone: ZoneInfo
) -> dict[tuple, StatRow]:
    """The live days' rows of every ward (today, and any day not rolled up yet), by (day, ward
    id): the few rows the rollup does not hold, aggregated in SQL."""
    rows = {(d, w.id): StatRow(d, w) for w in frame.wards for d in frame.live}
    totals = {d: StatRow(d, None) for d in frame.live}
    aggregate_days(
        session=session,
        ward_ids=[w.id for w in frame.wards],
        day_list=frame.live,
        now=now,
        zone=zone,
        rows=rows,
        totals=totals,
        median_in_sql=session.get_bind().dialect.name == "postgresql",
    )
    return rows


def stats_csv(
    *,
    frame: Frame,
    live: dict[tuple, StatRow],
    open_session: Callable[[], Session],
    zone: ZoneInfo,
    days: int,
    lang: str,
    as_of: datetime,
) -> tuple[Iterator[bytes], str]:
    """The CSV of ``frame`` (headers in ``lang``) and the download's file name, which carries
    ``as_of`` (local time): when the unfinished days' rows were counted. Streamed (issue
    18): the rolled-up days come as plain tuples from a server-side cursor of a session of its
    own (``open_session``: the request's is closed before the body is sent), straight into
    ``csv.writer``, :data:`CHUNK` rows at a time; ``live`` holds the rest (the live days)."""
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
        write = writer.writerow

        def take() -> bytes:
            text = out.getvalue()
            out.seek(0)
            out.truncate()
            return text.encode("utf-8")

        write(header)
        yield "\ufeff".encode() + take()
        session = open_session()
        try:
            stream = stream_ward_rows(session=session, wards=frame.wards, days=frame.rolled,
                                      zone=zone)  # fmt: skip
            pending = next(stream, None)
            written = 0
            iso = {d: d.isoformat() for d in frame.days}
            for ward in frame.wards:
                ward_id, code, name = ward.id, ward.code, ward.name
                while pending is not None and pending[0] == ward_id:
                    _, day, monitored, due, done, *rest = pending
                    median = rest.pop()
                    write((iso[day], code, name, monitored, due, done,
                           _percent(done, due), *rest,
                           "" if median is None else round(median, 1)))  # fmt: skip
                    pending = next(stream, None)
                    written += 1
                    if written % CHUNK == 0:
                        yield take()
                for day in frame.live:
                    r = live[(day, ward.id)]
                    write((iso[day], code, name, r.monitored, r.due, r.completed,
                           _percent(r.completed, r.due), *[r.alerts.get(k.value, 0) for k in kinds],
                           "" if r.ack_median is None else r.ack_median))  # fmt: skip
            yield take()
        finally:
            session.close()

    taken = as_of.astimezone(zone).strftime("%Hh%M")
    name = f"isocheck-thong-ke-{frame.days[-1].isoformat()}-{days}d-{taken}.csv"
    return lines(), name
