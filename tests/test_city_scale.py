"""Issue 18: what keeps the dashboard and the phone API fast when the tables are large, checked
for behaviour (the same answers) and for the number of statements (constant, not per row)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from server.enums import AttemptDecision, PromptState
from server.security import token_digest
from tests.minimal_world import MiniWorld


class StatementCounter:
    def __init__(self, engine) -> None:
        self.engine, self.count = engine, 0

    def _count(self, *_args) -> None:
        self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def _phone(world: MiniWorld, person) -> dict[str, str]:
    device = world.device(person)
    device.token_hash = token_digest(f"history-token-{person.id}")
    world.session.commit()
    return {"Authorization": f"Bearer history-token-{person.id}"}


def _history(client, engine, headers) -> tuple[list[dict], int]:
    with StatementCounter(engine) as counter:
        r = client.get("/api/v1/me/history?limit=200", headers=headers)
    assert r.status_code == 200
    return r.get_json()["items"], counter.count


def test_phone_history_statements_do_not_grow_with_prompts(app, client, session, clock):
    world = MiniWorld(session, clock.now())
    engine = app.extensions["isocheck"].engine
    few, many = world.person(), world.person()
    for person, n in ((few, 2), (many, 12)):
        for k in range(n):
            opens = world.now - timedelta(hours=8 * (k + 1))
            due = opens + timedelta(hours=2)
            prompt = world.prompt(person, state=PromptState.completed, opens_at=opens, due_at=due)
            # two attempts: a quality refusal, then the verified one; the history shows the last
            world.attempt(prompt, decision=AttemptDecision.rejected, code="too_dark",
                          received_at=opens + timedelta(minutes=5))  # fmt: skip
            if k % 3:
                world.attempt(prompt, decision=AttemptDecision.verified, code="face_match",
                              received_at=opens + timedelta(minutes=9))  # fmt: skip
    unanswered = world.prompt(many, state=PromptState.missed,
                              opens_at=world.now - timedelta(minutes=30))  # fmt: skip
    few_items, few_count = _history(client, engine, _phone(world, few))
    many_items, many_count = _history(client, engine, _phone(world, many))
    assert len(few_items) == 2 and len(many_items) == 13
    assert many_count == few_count  # one statement for every prompt's last attempt, not one each
    by_id = {i["prompt_id"]: i for i in many_items}
    assert by_id[unanswered.id]["last_result"] is None and by_id[unanswered.id]["last_code"] is None
    answered = [i for i in many_items if i["prompt_id"] != unanswered.id]
    results = [(i["last_result"], i["last_code"]) for i in answered]
    # newest first: k = 0 (one refusal only), k = 1, 2 (verified after the refusal), k = 3 …
    assert results[:4] == [("rejected", "too_dark"), ("verified", "face_match"),
                           ("verified", "face_match"), ("rejected", "too_dark")]  # fmt: skip
