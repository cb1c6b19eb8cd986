"""A person's monitoring life driven by time: start, release (kết thúc cách ly), and the
deletion of their biometric data once the retention period after release is over.

::

    enrolled ──activate_started (isolation_start ≤ now)──► active
    enrolled | active ──release_ended (isolation_end ≤ now)──► released
    released ──purge_biometrics (released_at + retention ≤ now)──► biometrics_purged_at set

Each function handles one batch, moves rows with a compare-and-swap ``UPDATE … RETURNING`` and
returns how many it moved; the scheduler's jobs loop and commit between batches.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from server.checkins import lifecycle as prompts
from server.checkins import messaging
from server.core import audit, sql
from server.core.enums import PersonStatus
from server.notify import persons
from server.people.models import FaceTemplate, Person, StoredImage
from server.schedule.policy import PolicyResolver

log = logging.getLogger("isocheck.people")
_AUDIT = audit.AuditEvent.__table__


def _audit_rows(rows, *, action: str, now: datetime, details: dict | None = None) -> list[dict]:
    return [
        {"at": now, "actor_kind": "system", "actor_id": None, "action": action,
         "target_kind": "person", "target_id": pid, "area_id": ward_id, "ip": None,
         "details": (details or {}).get(pid)}
        for pid, ward_id in rows
    ]  # fmt: skip


def activate_started(*, session: Session, now: datetime, limit: int) -> int:
    """``enrolled → active`` for people whose isolation has started (and not ended)."""
    moved = sql.claim(
        session,
        Person,
        where=[
            Person.status == PersonStatus.enrolled,
            Person.isolation_start <= now,
            Person.isolation_end > now,
        ],  # fmt: skip
        values={"status": PersonStatus.active, "updated_at": now},
        returning=[Person.id, Person.ward_id],
        limit=limit,
        order_by=[Person.id],
    )
    if moved:
        session.execute(insert(_AUDIT), _audit_rows(moved, action="person.activate", now=now))
    return len(moved)


def release_ended(
    *, session: Session, now: datetime, limit: int, resolver: PolicyResolver | None = None
) -> int:
    """Release people whose isolation has ended.

    1. ``enrolled | active → released`` with ``released_at = now`` (compare-and-swap).
    2. Cancel their planned and open prompts.
    3. Tell their phone (outbox, key ``person:<id>:released``; with ``resolver`` not before
       their quiet hours end) and audit ``person.release``.
    """
    moved = sql.claim(
        session,
        Person,
        where=[
            Person.status.in_((PersonStatus.enrolled, PersonStatus.active)),
            Person.isolation_end <= now,
        ],  # fmt: skip
        values={"status": PersonStatus.released, "released_at": now, "updated_at": now},
        returning=[Person.id, Person.ward_id],
        limit=limit,
        order_by=[Person.isolation_end],
    )
    if not moved:
        return 0
    ids = [pid for pid, _ in moved]
    cancelled = prompts.cancel_for_persons(session=session, person_ids=ids, now=now)
    persons.send_to_persons(
        session=session,
        messages=[messaging.isolation_ended(pid, now) for pid in ids],
        now=now,
        resolver=resolver,
    )
    session.execute(insert(_AUDIT), _audit_rows(moved, action="person.release", now=now))
    log.info("released %d people, cancelled %d prompts", len(ids), cancelled)
    return len(moved)


def _delete_file(*, data_dir: Path, storage_key: str) -> bool:
    """Delete an image file wherever the store keeps it; True if one was there."""
    from server.storage import ImageStore

    try:
        if ImageStore(data_dir / "media", keys="").delete(storage_key):
            return True
    except ValueError:
        pass  # not a key the store would write; try the plain path below
    root = data_dir.resolve()
    path = (root / storage_key).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return False
    path.unlink()
    return True


def purge_biometrics(
    *, session: Session, now: datetime, retention: timedelta, data_dir: Path, limit: int
) -> int:
    """Delete the biometric data of people released more than ``retention`` ago.

    1. Compare-and-swap ``biometrics_purged_at`` from NULL to now on a batch of released
       people (so two schedulers never purge the same person twice).
    2. Delete every image file of theirs (enrolment photos, selfies, challenge frames) and set
       ``StoredImage.purged_at``; the row (hashes, size, time) stays as the non-biometric record.
    3. Delete their face templates.
    4. Audit ``biometrics.purge`` with the counts. The person row, check-in attempts,
       declarations, alerts and the audit trail are kept.

    Files are deleted before the transaction commits: if it then fails, the next run finds the
    person unpurged, finds the files gone, and completes the rows."""
    moved = sql.claim(
        session,
        Person,
        where=[
            Person.status == PersonStatus.released,
            Person.biometrics_purged_at.is_(None),
            Person.released_at <= now - retention,
        ],  # fmt: skip
        values={"biometrics_purged_at": now, "updated_at": now},
        returning=[Person.id, Person.ward_id],
        limit=limit,
        order_by=[Person.released_at],
    )
    if not moved:
        return 0
    ids = [pid for pid, _ in moved]
    images = session.execute(
        select(StoredImage.id, StoredImage.person_id, StoredImage.storage_key).where(
            StoredImage.person_id.in_(ids), StoredImage.purged_at.is_(None)
        )
    ).all()
    files: dict[int, int] = {}
    for _image_id, person_id, key in images:
        if _delete_file(data_dir=data_dir, storage_key=key):
            files[person_id] = files.get(person_id, 0) + 1
    if images:
        session.execute(
            update(StoredImage)
            .where(StoredImage.id.in_([i for i, _, _ in images]))
            # perceptual hashes are derived from the face (biometric data): purged with it;
            # the byte hash (sha256) stays, it says nothing about the face
            .values(purged_at=now, phash=None, face_phash=None)
            .execution_options(synchronize_session=False)
        )
    templates: dict[int, int] = {}
    for (person_id,) in session.execute(
        delete(FaceTemplate)
        .where(FaceTemplate.person_id.in_(ids))
        .returning(FaceTemplate.person_id)
        .execution_options(synchronize_session=False)
    ):
        templates[person_id] = templates.get(person_id, 0) + 1
    per_person = {pid: 0 for pid in ids}
    for _i, person_id, _k in images:
        per_person[person_id] += 1
    details = {
        pid: {"images": per_person[pid], "files_deleted": files.get(pid, 0),
              "templates_deleted": templates.get(pid, 0),
              "retention_days": retention.total_seconds() / 86400}
        for pid in ids
    }  # fmt: skip
    session.execute(
        insert(_AUDIT),
        _audit_rows(moved, action="biometrics.purge", now=now, details=details),
    )
    return len(moved)


def purge_orphan_files(
    *, session: Session, data_dir: Path, now: datetime, grace: timedelta, limit: int = 1000
) -> int:
    """Delete image files that no ``stored_images`` row names and that are older than ``grace``.

    An upload's file is written (encrypted) before its row is committed, so a worker killed
    between the two, or a commit that fails, leaves a file nobody can reach or purge: biometric
    data outside the retention rule. No transaction lives longer than a request (gunicorn's
    timeout), so a file older than ``grace`` without a row will never get one. Temporary files
    of interrupted writes (``*.tmp``) older than ``grace`` go too. Returns files deleted."""
    from server.storage import ImageStore

    store = ImageStore(data_dir / "media", keys="")
    cutoff = (now - grace).timestamp()
    deleted = 0
    batch: dict[str, Path] = {}

    def flush() -> int:
        known = set(
            session.scalars(select(StoredImage.storage_key).where(
                StoredImage.storage_key.in_(list(batch))
            ))
        )  # fmt: skip
        gone = 0
        for key, path in batch.items():
            if key not in known:
                path.unlink(missing_ok=True)
                gone += 1
        batch.clear()
        return gone

    for key, mtime, path in store.entries():
        if mtime > cutoff:
            continue
        if key.endswith(".tmp"):
            path.unlink(missing_ok=True)
            deleted += 1
            continue
        batch[key] = path
        if len(batch) >= limit:
            deleted += flush()
    if batch:
        deleted += flush()
    if deleted:
        log.warning("deleted %d orphan image files (written, never committed)", deleted)
    return deleted
