"""Set-based SQL the sweeps share, the same on SQLite and PostgreSQL.

- :func:`insert_ignore` — ``INSERT … ON CONFLICT DO NOTHING`` for many rows in few statements.
- :func:`upsert` — ``INSERT … ON CONFLICT (…) DO UPDATE``.
- :func:`claim` — a batched compare-and-swap: ``SELECT id … LIMIT n [FOR NO KEY UPDATE SKIP
  LOCKED]`` then ``UPDATE t SET … WHERE id IN (…) AND <old state> RETURNING …``: two statements
  move up to ``n`` rows and say exactly which ones this transaction moved, so any number of
  sweeps may run at once.
- :func:`lock_batch` — the ``SELECT … LIMIT n FOR NO KEY UPDATE SKIP LOCKED`` part on its own,
  for sweeps that must look at rows before deciding how to move them.

SQLite has no row locks (one writer at a time); the ``state`` condition of every ``UPDATE`` is
what keeps two sweeps from moving the same row there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(session: Session, model):
    return (postgresql.insert if dialect(session) == "postgresql" else sqlite.insert)(model)


def insert_ignore(
    session: Session,
    model,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    returning: Iterable[Any] = (),
) -> list[Any]:
    """Insert ``rows`` into ``model``'s table, skipping those that clash on ``conflict``.

    Returns the ``returning`` columns of the rows actually inserted (empty when none asked).
    With ``RETURNING`` SQLAlchemy sends the rows as multi-row ``VALUES`` pages
    ("insertmanyvalues": 10,000 rows are ~10 statements); without, one ``executemany``, which
    psycopg 3 pipelines with a single parse of the statement (much cheaper for big batches
    than parsing a 10,000-placeholder ``VALUES`` text). See :func:`insert_ignore_many`."""
    if not rows:
        return []
    stmt = _insert(session, model).on_conflict_do_nothing(index_elements=list(conflict))
    returning = list(returning)
    if returning:
        return list(session.execute(stmt.returning(*returning), list(rows)))
    session.execute(stmt, list(rows))
    return []


def insert_ignore_many(
    session: Session, model, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str]
) -> None:
    """:func:`insert_ignore` for big batches, without ``RETURNING`` (one ``executemany``; the
    driver's row count is not reliable for it, so callers count what they need)."""
    if rows:
        stmt = _insert(session, model).on_conflict_do_nothing(index_elements=list(conflict))
        session.execute(stmt, list(rows))


def upsert(
    session: Session,
    model,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """Insert ``rows``; on a clash of ``conflict`` overwrite ``update_columns``."""
    if not rows:
        return
    stmt = _insert(session, model)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(conflict),
        set_={c: getattr(stmt.excluded, c) for c in update_columns},
    )
    session.execute(stmt, list(rows))


def lock_batch(session: Session, query: Select, *, limit: int, of: Any = None) -> Select:
    """``query`` limited to ``limit`` rows and, on PostgreSQL, locked ``FOR NO KEY UPDATE SKIP
    LOCKED`` (no-key so inserts that reference the rows by foreign key are not blocked; ``of``
    names the table to lock when ``query`` joins others)."""
    query = query.limit(limit)
    if dialect(session) == "postgresql":
        query = query.with_for_update(skip_locked=True, key_share=True, of=of)
    return query


def claim(
    session: Session,
    model,
    *,
    where: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
    returning: Sequence[Any],
    limit: int,
    order_by: Sequence[Any] = (),
) -> list[Any]:
    """Move up to ``limit`` rows matching ``where`` to ``values``; returns the ``returning``
    columns of the rows moved by this call.

    Two statements per batch: ``SELECT id … LIMIT n [FOR NO KEY UPDATE SKIP LOCKED]``, then
    ``UPDATE … WHERE id IN (…) AND <where> RETURNING …`` (compare-and-swap: ``where`` is checked
    again by the ``UPDATE`` itself). Not one ``UPDATE … WHERE id IN (SELECT … LIMIT n)``: on
    PostgreSQL the planner may re-run that sub-select per row (a nested-loop semi-join), and
    the ``LIMIT`` no longer bounds the batch."""
    query = select(model.id).where(*where).order_by(*order_by)
    ids = list(session.scalars(lock_batch(session, query, limit=limit)))
    return update_ids(session, model, ids, where=where, values=values, returning=returning)


def update_ids(
    session: Session,
    model,
    ids: Sequence[int],
    *,
    where: Sequence[ColumnElement[bool]],
    values: dict[str, Any],
    returning: Sequence[Any],
    synchronize: bool | str = False,
) -> list[Any]:
    """Compare-and-swap ``ids`` (already chosen, e.g. by :func:`lock_batch`) to ``values`` where
    ``where`` still holds; returns the ``returning`` columns of the rows moved.

    ``synchronize="auto"`` also updates objects of ``model`` loaded in the session (for callers
    that keep using them); sweeps leave it off."""
    if not ids:
        return []
    stmt = (
        update(model)
        .where(model.id.in_(list(ids)), *where)
        .values(**values)
        .returning(*returning)
        .execution_options(synchronize_session=synchronize)
    )
    return list(session.execute(stmt))
