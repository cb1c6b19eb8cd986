"""Downtime is never blamed on the person; release at isolation end; retention purge;
non-reporting alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler_helpers import World, count, notifications, run_until, tick
from sqlalchemy import select

from server.alerts.models import Alert, AlertOccurrence
from server.checkins.models import CheckinPrompt
from server.core.audit import AuditEvent
from server.core.clock import FrozenClock
from server.core.enums import AlertKind, AlertState, ImageKind, PersonStatus, PromptState
from server.declarations.models import Declaration
from server.notify.models import Notification
from server.people.models import Device, FaceTemplate, Person, StoredImage
from server.storage import image_store

#: 00:00 on Tuesday 24 November 2026 in Ho Chi Minh City.
DAY = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def _day_prompts(session, person, stamp):
    return list(session.scalars(select(CheckinPrompt).where(
        CheckinPrompt.person_id == person.id, CheckinPrompt.slot_key.startswith(stamp),
    ).order_by(CheckinPrompt.opens_at)))


def test_downtime_is_missed_system_without_alerts_and_without_duplicates(
    session_factory, settings
):
    clock = FrozenClock(DAY)
    with session_factory() as s:
        person = World(s).person(start=DAY - timedelta(days=1), end=DAY + timedelta(days=5))
    tick(session_factory, clock, settings)
    with session_factory() as s:
        today = _day_prompts(s, person, "2026-11-24")
        tomorrow = _day_prompts(s, person, "2026-11-25")
    assert len(today) == 4
    first, *middle, last = today

    # 1. down from before the first prompt opens until after the third one is due
    run_until(session_factory, clock, settings, first.opens_at - timedelta(minutes=10))
    clock.set(middle[-1].due_at + timedelta(minutes=10))
    for _ in range(2):  # restart, and once more: the backlog is processed once
        tick(session_factory, clock, settings)

    # 2. the last prompt is opened on time, then the scheduler dies before it is due
    run_until(session_factory, clock, settings, last.opens_at + timedelta(minutes=1))
    clock.set(last.due_at + timedelta(hours=1))
    tick(session_factory, clock, settings)

    # 3. tomorrow the scheduler comes back 15 minutes into the first prompt's window
    nxt = tomorrow[0]
    run_until(session_factory, clock, settings, nxt.opens_at - timedelta(minutes=30))
    clock.set(nxt.opens_at + timedelta(minutes=15))
    run_until(session_factory, clock, settings, nxt.due_at + timedelta(minutes=5))
    tick(session_factory, clock, settings)

    with session_factory() as s:
        rows = {p.id: s.get(CheckinPrompt, p.id) for p in [*today, nxt]}
        assert all(r.state is PromptState.missed_system for r in rows.values()), [
            (r.slot_key, r.state) for r in rows.values()]
        assert [rows[p.id].opened_at is None for p in today] == [True, True, True, False]
        assert rows[nxt.id].opened_at == nxt.opens_at + timedelta(minutes=15)
        assert count(s, Alert, Alert.kind == AlertKind.missed_checkin) == 0
        pushes = notifications(s, Notification.payload["kind"].as_string() == "checkin_prompt")
        assert sorted(n.prompt_id for n in pushes) == sorted([last.id, nxt.id])


def test_release_then_retention_purge_keeps_the_record_and_the_audit(session_factory, settings):
    t0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    clock = FrozenClock(t0)
    store = image_store(settings)
    with session_factory() as s:
        person = World(s).person(start=t0 - timedelta(days=13), end=t0 + timedelta(hours=1))
        s.add(Device(person_id=person.id, token_hash="h" * 64, push_token="fcm-token-1"))
        keys = [store.save(b"\xff\xd8 photo %d" % i) for i in range(3)]
        legacy = settings.data_dir / "legacy" / "old.jpg"
        legacy.parent.mkdir(parents=True, exist_ok=True)
        legacy.write_bytes(b"old")
        images = [
            StoredImage(person_id=person.id, kind=kind, storage_key=key, sha256="0" * 64,
                        size_bytes=10, phash="f" * 16, face_phash="e" * 16)
            for kind, key in zip([ImageKind.enrolment, ImageKind.selfie,
                                  ImageKind.challenge_frame, ImageKind.selfie],
                                 [*keys, "legacy/old.jpg"], strict=True)
        ]
        s.add_all(images)
        s.flush()
        s.add(FaceTemplate(person_id=person.id, embedder="sface", model_id="m", data=b"tmpl",
                           image_id=images[0].id))
        s.commit()
    tick(session_factory, clock, settings)
    with session_factory() as s:
        assert count(s, CheckinPrompt, CheckinPrompt.person_id == person.id) == 0  # ends soon
        s.add(CheckinPrompt(person_id=person.id, slot_key="manual", kind="scheduled",
                            opens_at=t0 + timedelta(minutes=50), due_at=t0 + timedelta(hours=2),
                            nonce="n"))
        s.commit()

    clock.set(t0 + timedelta(hours=1))
    tick(session_factory, clock, settings)
    tick(session_factory, clock, settings)
    with session_factory() as s:
        p = s.get(Person, person.id)
        assert p.status is PersonStatus.released and p.released_at == clock.now()
        assert {r.state for r in s.scalars(select(CheckinPrompt))} == {PromptState.cancelled}
        told = notifications(s, Notification.payload["kind"].as_string() == "isolation_ended")
        assert [(n.channel, n.recipient) for n in told] == [("fcm", "fcm-token-1")]

    clock.set(t0 + timedelta(days=14, minutes=59))
    tick(session_factory, clock, settings)
    with session_factory() as s:
        assert s.get(Person, person.id).biometrics_purged_at is None
        assert count(s, FaceTemplate) == 1 and all(store.exists(k) for k in keys)

    clock.set(t0 + timedelta(days=14, hours=1))
    tick(session_factory, clock, settings)
    tick(session_factory, clock, settings)
    with session_factory() as s:
        p = s.get(Person, person.id)
        assert p.biometrics_purged_at == clock.now() and p.full_name == "Nguyễn Văn A"
        assert not any(store.exists(k) for k in keys) and not legacy.exists()
        assert count(s, FaceTemplate) == 0
        rows = list(s.scalars(select(StoredImage)))
        assert len(rows) == 4 and all(r.purged_at == clock.now() for r in rows)
        assert all(r.sha256 == "0" * 64 for r in rows)  # the non-biometric record stays
        # perceptual hashes are derived from the face: purged with it (issue 13, finding 15)
        assert all(r.phash is None and r.face_phash is None for r in rows)
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.target_id == person.id,
                                                         AuditEvent.target_kind == "person")))
        actions = [e.action for e in events]
        assert actions == ["person.release", "biometrics.purge"]
        assert events[1].details["files_deleted"] == 4
        assert events[1].details["templates_deleted"] == 1


def test_non_reporting_once_a_day(session_factory, settings):
    t0 = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    clock = FrozenClock(t0)
    with session_factory() as s:
        world = World(s)
        quiet = world.person(start=t0 - timedelta(days=3), end=t0 + timedelta(days=5))
        talks = world.person(start=t0 - timedelta(days=3), end=t0 + timedelta(days=5))
        new = world.person(start=t0 - timedelta(hours=3), end=t0 + timedelta(days=5))
        s.add_all([
            Declaration(person_id=quiet.id, measured_at=t0 - timedelta(hours=30),
                        received_at=t0 - timedelta(hours=30)),
            Declaration(person_id=talks.id, measured_at=t0 - timedelta(hours=2),
                        received_at=t0 - timedelta(hours=2)),
        ])
        s.commit()

    def alerts():
        with session_factory() as s:
            return [(a.person_id, a.dedupe_key) for a in s.scalars(
                select(Alert).where(Alert.kind == AlertKind.non_reporting).order_by(Alert.id))]

    tick(session_factory, clock, settings, ["non_reporting"])
    tick(session_factory, clock, settings, ["non_reporting"])
    assert alerts() == [(quiet.id, f"non_reporting:{quiet.id}:2026-11-24")]
    clock.advance(hours=20)  # talks declared 22 h ago, new started 23 h ago: not yet
    tick(session_factory, clock, settings, ["non_reporting"])
    assert len(alerts()) == 1
    clock.advance(hours=3)
    tick(session_factory, clock, settings, ["non_reporting"])
    assert sorted(pid for pid, _ in alerts()[1:]) == sorted([talks.id, new.id])
    clock.advance(hours=2)  # a day after quiet's first alert: the next day's silence…
    tick(session_factory, clock, settings, ["non_reporting"])
    tick(session_factory, clock, settings, ["non_reporting"])
    assert len(alerts()) == 3  # …is absorbed by the still-open alert (docs/declarations.md)
    with session_factory() as s:
        key = f"non_reporting:{quiet.id}:2026-11-24"
        first = s.scalar(select(Alert).where(Alert.dedupe_key == key))
        assert first.occurrences == 2
        [repeat] = s.scalars(select(AlertOccurrence)).all()
        assert repeat.dedupe_key == f"non_reporting:{quiet.id}:2026-11-25"
        first.state = AlertState.acknowledged  # taken on: the day after is a new alert
        s.commit()
    clock.advance(hours=24)
    tick(session_factory, clock, settings, ["non_reporting"])
    assert alerts()[-1] == (quiet.id, f"non_reporting:{quiet.id}:2026-11-26")
    assert len(alerts()) == 4
