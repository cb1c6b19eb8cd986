"""Offline liveness challenge: blink, or turn the head left or right, seen in a burst of frames.

The server issues a random challenge with :func:`new_challenge`; the phone records a short burst
(2-12 frames, first frame looking straight at the camera) while the person performs it;
:meth:`verification.Verifier.check_liveness` checks that every frame shows the enrolled person and
that the requested motion happened, using landmarks only (no extra model, no download):

* ``turn_left`` / ``turn_right``: the yaw ratio of YuNet's 5 landmarks
  (:func:`verification.quality.yaw_ratio`) moves from the first frame by at least
  ``liveness_min_turn`` in the requested direction. Directions are the *person's*: turning to their
  left moves the nose towards the right of an un-mirrored camera frame (positive yaw). The phone
  must send frames as the camera captured them, not the mirrored preview.
* ``blink``: dlib's 68-landmark eye aspect ratio is open (>= ``liveness_ear_open``) in some frame
  and, in a later frame, at most ``liveness_blink_ratio`` times that value (relative, because
  open East-Asian eyes measure lower than the 0.25-0.3 usually quoted).

What it does not stop (see docs/verification.md): a replayed or deep-faked video of the person
performing the motion, a printed photo bent or turned in front of the camera for a turn, a
person present but coerced. It raises the cost of the simplest attack — holding up one photo.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from verification.errors import VerificationError

ChallengeKind = Literal["blink", "turn_left", "turn_right"]
#: The challenges :func:`new_challenge` draws from.
CHALLENGES: tuple[ChallengeKind, ...] = ("blink", "turn_left", "turn_right")


class _Rng(Protocol):
    def choice(self, seq: Sequence[Any]) -> Any: ...

    def getrandbits(self, k: int) -> int: ...


@dataclass(frozen=True)
class Challenge:
    """One liveness challenge: ``kind`` and a random 64-bit ``nonce`` (16 hex) the server keeps
    with the prompt so a burst answers exactly one challenge."""

    kind: ChallengeKind
    nonce: str

    def to_dict(self) -> dict[str, str]:
        """``{"kind": ..., "nonce": ...}``."""
        return {"kind": self.kind, "nonce": self.nonce}

    @classmethod
    def coerce(cls, value: Challenge | dict[str, Any] | str) -> Challenge:
        """A :class:`Challenge` from itself, its dict, or a bare kind; ``invalid_challenge``."""
        if isinstance(value, Challenge):
            kind, nonce = value.kind, value.nonce
        elif isinstance(value, dict):
            kind, nonce = value.get("kind"), str(value.get("nonce", ""))
        elif isinstance(value, str):
            kind, nonce = value, ""
        else:
            raise VerificationError("invalid_challenge", f"not a challenge: {type(value)}")
        if kind not in CHALLENGES:
            raise VerificationError(
                "invalid_challenge", f"unknown challenge {kind!r}", allowed=list(CHALLENGES)
            )
        return cls(kind=kind, nonce=nonce)


def new_challenge(rng: _Rng | None = None) -> Challenge:
    """A random challenge. ``rng``: a ``random.Random``-like object (tests pass a seeded one);
    default: the operating system's CSPRNG (``secrets.SystemRandom``)."""
    rng = rng or secrets.SystemRandom()
    return Challenge(kind=rng.choice(CHALLENGES), nonce=f"{rng.getrandbits(64):016x}")


def turn_observed(yaws: Sequence[float], kind: ChallengeKind, min_turn: float) -> bool:
    """True when the yaw ratio moves from the first frame by >= ``min_turn`` towards the requested
    side (``turn_left`` = positive yaw). ``yaws``: one ratio per frame, in frame order."""
    if len(yaws) < 2:
        return False
    sign = 1.0 if kind == "turn_left" else -1.0
    return max(sign * (y - yaws[0]) for y in yaws[1:]) >= min_turn


def blink_observed(ears: Sequence[float], open_ear: float, ratio: float) -> bool:
    """True when some frame has eyes open (EAR >= ``open_ear``) and a later frame's EAR is at
    most ``ratio`` times the largest open EAR seen before it. ``ears``: mean eye aspect ratio per
    frame, in frame order."""
    best_open = 0.0
    for ear in ears:
        if best_open >= open_ear and ear <= ratio * best_open:
            return True
        best_open = max(best_open, ear)
    return False
