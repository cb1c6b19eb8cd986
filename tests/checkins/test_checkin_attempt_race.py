"""Finding 1 of issue 13: the attempt cap under parallel uploads. Twenty impostor selfies for one
prompt, each with its own Idempotency-Key, sent at once: at most ``max_attempts`` are judged as
counted refusals, and the prompt gets exactly one verdict (one ``failed``, one alert); with
genuine selfies exactly one attempt is ``verified``."""

from __future__ import annotations

import io
import secrets
import threading

from sqlalchemy import select

from server.alerts.models import Alert
from server.checkins.models import CheckinAttempt, CheckinPrompt
from server.core.enums import AttemptDecision, PromptState
from tests.checkins.test_checkin_e2e import A_SELFIES, B_PHOTO, HOME, world  # noqa: F401
from tests.photo_sets import photo

N = 20


def _parallel_uploads(world, prompt, images):  # noqa: F811
    barrier = threading.Barrier(len(images))
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send(image: bytes) -> None:
        client = world.client.application.test_client()
        headers = {**world.device, "Idempotency-Key": secrets.token_hex(8)}
        data = {
            "selfie": (io.BytesIO(image), "selfie.jpg", "image/jpeg"),
            "nonce": prompt.nonce,
            "latitude": str(HOME[0]),
            "longitude": str(HOME[1]),
            "accuracy_m": "15",
        }
        barrier.wait()
        r = client.post(
            "/api/v1/me/checkins", headers=headers, data=data, content_type="multipart/form-data"
        )
        with lock:
            answers.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=send, args=(img,)) for img in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(status < 500 for status, _ in answers), answers
    world.session.expire_all()
    attempts = world.session.scalars(
        select(CheckinAttempt).where(CheckinAttempt.prompt_id == prompt.id)
    ).all()
    return answers, attempts, world.session.get(CheckinPrompt, prompt.id)


def test_parallel_impostor_selfies_judge_at_most_max_attempts(world):  # noqa: F811
    prompt = world.new_prompt()
    impostor = photo(B_PHOTO)
    # each copy differs in its trailing bytes, so none is a replay of another
    images = [impostor + secrets.token_bytes(i + 1) for i in range(N)]

    answers, attempts, after = _parallel_uploads(world, prompt, images)

    counted = [a for a in attempts if (a.details or {}).get("counted")]
    assert len(counted) <= after.max_attempts
    assert after.attempts_used == after.max_attempts
    assert after.state is PromptState.failed
    mismatches = [b for s, b in answers if s == 200 and b.get("code") == "face_mismatch"]
    assert len(mismatches) <= after.max_attempts
    assert all(a.decision is not None for a in attempts)  # none left undecided
    alerts = world.session.scalars(
        select(Alert).where(Alert.prompt_id == prompt.id, Alert.kind == "failed_verification")
    ).all()
    assert len(alerts) == 1


def test_parallel_genuine_selfies_give_one_verified_attempt(world):  # noqa: F811
    prompt = world.new_prompt()
    genuine = photo(A_SELFIES[0])
    images = [genuine + secrets.token_bytes(i + 1) for i in range(8)]

    answers, attempts, after = _parallel_uploads(world, prompt, images)

    verified = [a for a in attempts if a.decision is AttemptDecision.verified]
    assert len(verified) == 1
    assert after.state is PromptState.completed
    assert sum(1 for s, b in answers if s == 200 and b.get("result") == "verified") == 1
    assert all(a.decision is not None for a in attempts)
