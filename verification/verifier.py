"""The :class:`Verifier`: decode -> detect -> quality gate -> embed -> match -> replay/liveness.

One object per process (or per worker); models load on first use (or on :meth:`Verifier.load`),
never at import. Safe to call from many threads: OpenCV's detector and recogniser keep per-call
state, so each thread gets its own instances (built from model bytes read and checksummed once);
dlib's models are shared behind a lock (used only for the second opinion, eye landmarks and
liveness blinks). ``bench/verify_bench.py`` measures the per-thread choice against one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from verification import face_models as F
from verification.errors import VerificationError
from verification.image import decode_image
from verification.liveness import Challenge, blink_observed, turn_observed
from verification.pad import Fusion, PadResult, PresentationAttackDetector, load_pad_model
from verification.quality import (
    Purpose,
    Quality,
    Thresholds,
    brightness,
    gate,
    mean_ear,
    sharpness,
    yaw_ratio,
)
from verification.replay import ImageHashes, find_replay, phash64, sha256_hex
from verification.settings import VerificationSettings
from verification.templates import Template, coerce_all

Decision = Literal["match", "review", "mismatch"]


@dataclass(frozen=True, eq=False)
class FaceAnalysis:
    """Everything measured on one photo.

    ``face``: the face used, in decoded-image px. ``faces_found``: detections above the score
    threshold (including ignored small background faces). ``vectors``: embedder -> float32 (128,).
    ``landmarks68``: dlib's (68, 2) px landmarks, or ``None`` when not needed.
    ``timings_ms``: stage -> milliseconds.
    """

    face: F.Face
    faces_found: int
    quality: Quality
    vectors: dict[str, np.ndarray]
    hashes: ImageHashes
    image_size: tuple[int, int]
    landmarks68: np.ndarray | None
    timings_ms: dict[str, float]
    pad: PadResult | None = None


@dataclass(frozen=True, eq=False)
class Result:
    """The outcome of :meth:`Verifier.verify` or :meth:`Verifier.check_liveness`.

    ``decision``: ``"match"`` (accept), ``"review"`` (a person decides) or ``"mismatch"``.
    ``code``: ``face_match`` / ``face_review`` / ``face_mismatch``, or ``replayed_image`` /
    ``liveness_failed`` (then ``decision`` is ``"mismatch"``). ``distance``: the best (smallest)
    distance to the templates in the embedder's unit (``sface``: 1 - cosine similarity;
    ``dlib``: Euclidean); ``distances``: one per template, in the order given.
    ``accept_threshold`` / ``review_threshold``: the band limits used.
    ``quality``: the selfie's measurements. ``sha256`` / ``phash``: its hashes —
    the server stores :attr:`hashes` of every accepted selfie for later replay checks.
    ``candidate``: the selfie as a ``checkin`` template (see :meth:`Verifier.should_add_template`).
    """

    decision: Decision
    code: str
    distance: float
    accept_threshold: float
    review_threshold: float
    embedder: str
    distances: list[float]
    best_template: int
    quality: Quality
    sha256: str
    phash: str
    replay_of: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    candidate: Template | None = field(default=None, repr=False)
    timings_ms: dict[str, float] = field(default_factory=dict)
    pad: PadResult | None = None

    @property
    def hashes(self) -> list[str]:
        """Tagged hash strings to store (``sha256:…``, ``phash:…``)."""
        return ImageHashes(self.sha256, self.phash).tagged()

    @property
    def accepted(self) -> bool:
        """True only for an automatic match."""
        return self.decision == "match"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the candidate template's vector)."""
        return {
            "decision": self.decision,
            "code": self.code,
            "distance": round(self.distance, 5),
            "accept_threshold": self.accept_threshold,
            "review_threshold": self.review_threshold,
            "embedder": self.embedder,
            "distances": [round(d, 5) for d in self.distances],
            "best_template": self.best_template,
            "quality": self.quality.to_dict(),
            "sha256": self.sha256,
            "phash": self.phash,
            "replay_of": self.replay_of,
            "details": self.details,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "pad": None if self.pad is None else self.pad.to_dict(),
        }


class Verifier:
    """Face verification with the settings of :class:`VerificationSettings`.

    ``settings``: a settings object (default: read from ``ISOCHECK_*`` variables);
    ``overrides``: single fields on top, e.g. ``Verifier(verify_embedder="dlib")``.
    """

    def __init__(self, settings: VerificationSettings | None = None, **overrides: Any) -> None:
        base = settings if settings is not None else VerificationSettings()
        if overrides:
            base = VerificationSettings(**{**base.model_dump(), **overrides})
        self.settings = base
        self._models_lock = threading.Lock()
        self._model_bytes: dict[str, bytes] = {}
        self._local = threading.local()
        self._dlib: F.DlibModels | None = None
        self._dlib_lock = threading.RLock()
        self._pad_loaded: tuple[bytes | None, str, str | None, Fusion] | None = None

    # --- models --------------------------------------------------------------------------------
    @property
    def embedder(self) -> str:
        """The embedder that decides (``settings.verify_embedder``)."""
        return self.settings.verify_embedder

    def model_sha256(self, embedder: str | None = None) -> str:
        """SHA-256 of the model file behind ``embedder`` (default: the deciding one)."""
        return F.EMBEDDER_MODELS[embedder or self.embedder][1]

    def load(self) -> Verifier:
        """Read and checksum the model files now (the server calls this at start-up so a damaged
        file stops it before the first request). Returns ``self``."""
        self._opencv()
        self._pad()
        if self.embedder == "dlib" or self.settings.checkin_min_ear > 0:
            self._dlib_models()
        return self

    def _pad(self) -> PresentationAttackDetector:
        """This thread's presentation-attack detector (model bytes read and checksummed once;
        ``off`` / ``model_invalid`` without a usable file — never an exception)."""
        det = getattr(self._local, "pad", None)
        if det is None:
            with self._models_lock:
                if self._pad_loaded is None:
                    data, state, reason = load_pad_model(self.settings.pad_model_path)
                    fusion = Fusion.load(self.settings.pad_fusion_path)
                    self._pad_loaded = (data, state, reason, fusion)
            data, state, reason, fusion = self._pad_loaded
            det = PresentationAttackDetector(
                data,
                fusion=fusion,
                review_below=self.settings.pad_review_below,
                state=state,  # type: ignore[arg-type]
                reason=reason,
            )
            self._local.pad = det
        return det

    def pad_status(self) -> dict[str, Any]:
        """``{"state": on|off|model_invalid, "reason": …, "threshold": …}`` for /readyz, the CLI
        and the start-up log."""
        det = self._pad()
        return {"state": det.state, "reason": det.reason, "threshold": det.review_below}

    def _bytes(self, name: str, sha: str, path: Any) -> bytes:
        with self._models_lock:
            if name not in self._model_bytes:
                if self.settings.verify_cv_threads is not None:
                    cv2.setNumThreads(self.settings.verify_cv_threads)
                self._model_bytes[name] = F.read_model(name, sha, path)
            return self._model_bytes[name]

    def _opencv(self) -> tuple[F.YuNetDetector, F.SFaceEmbedder]:
        """This thread's YuNet detector and SFace recogniser (built on first use)."""
        pair = getattr(self._local, "cv", None)
        if pair is None:
            s = self.settings
            yunet = self._bytes(F.YUNET_FILE, F.YUNET_SHA256, s.yunet_model_path)
            sface = self._bytes(F.SFACE_FILE, F.SFACE_SHA256, s.sface_model_path)
            pair = (
                F.YuNetDetector(
                    yunet,
                    score_threshold=s.verify_detect_score,
                    max_side=s.verify_detect_max_side,
                    coarse_side=s.verify_detect_coarse_side,
                ),
                F.SFaceEmbedder(sface),
            )
            self._local.cv = pair
        return pair

    def _dlib_models(self) -> F.DlibModels:
        with self._dlib_lock:
            if self._dlib is None:
                self._dlib = F.DlibModels()
            return self._dlib

    # --- measuring one photo ---------------------------------------------------------------------
    def analyse(
        self,
        image_bytes: bytes,
        *,
        purpose: Purpose = "checkin",
        embedders: Sequence[str] | None = None,
        apply_gate: bool = True,
        need_landmarks68: bool = False,
        with_pad: bool = True,
    ) -> FaceAnalysis:
        """Decode, detect exactly one usable face, measure and gate its quality, embed it.

        ``purpose``: which quality thresholds apply (``enrol`` is stricter). ``embedders``: which
        vectors to compute (default: the deciding one). ``apply_gate=False`` measures without
        refusing (calibration). ``with_pad``: run the presentation-attack stage (every check-in
        and enrolment photo does). Raises :class:`VerificationError` for any unusable input.
        """
        s = self.settings
        embedders = tuple(embedders or (self.embedder,))
        t = {"start": time.perf_counter()}
        img = decode_image(
            image_bytes,
            max_bytes=s.max_image_bytes,
            max_pixels=s.max_image_pixels,
            max_side=s.verify_decode_max_side,
        )
        t["decode"] = time.perf_counter()
        detector, sface = self._opencv()
        found = detector.detect(img.bgr)
        t["detect"] = time.perf_counter()
        face = self._one_face(found)
        pad = self._pad().assess(img.bgr, face) if with_pad else None
        t["pad"] = time.perf_counter()
        aligned = sface.align(img.bgr, face)
        thresholds = Thresholds.for_purpose(s, purpose)
        rgb: tuple[np.ndarray, F.Face] | None = None
        landmarks68 = None
        if need_landmarks68 or thresholds.min_ear > 0:
            rgb = F.face_region_rgb(img.bgr, face)
            dl = self._dlib_models()
            with self._dlib_lock:
                landmarks68 = dl.landmarks68(*rgb) + rgb[1].offset
        quality = Quality(
            face_px=face.size / img.scale,
            sharpness=sharpness(aligned),
            brightness=brightness(aligned),
            yaw=yaw_ratio(face.landmarks),
            ear=None if landmarks68 is None else mean_ear(landmarks68),
            detector_score=face.score,
        )
        if apply_gate:
            gate(quality, thresholds)
        t["quality"] = time.perf_counter()
        vectors: dict[str, np.ndarray] = {}
        for name in embedders:
            if name == "sface":
                vectors[name] = sface.embed(aligned)
            elif name == "dlib":
                rgb = rgb if rgb is not None else F.face_region_rgb(img.bgr, face)
                dl = self._dlib_models()
                with self._dlib_lock:
                    vectors[name] = dl.embed(*rgb)
            else:
                raise ValueError(f"unknown embedder {name!r}")
        t["embed"] = time.perf_counter()
        hashes = ImageHashes(
            sha256=sha256_hex(bytes(image_bytes)),
            phash=phash64(img.bgr),
        )
        t["hash"] = time.perf_counter()
        stages = ["start", "decode", "detect", "pad", "quality", "embed", "hash"]
        timings = {b: (t[b] - t[a]) * 1000 for a, b in zip(stages, stages[1:], strict=False)}
        timings["total"] = (t["hash"] - t["start"]) * 1000
        return FaceAnalysis(
            face=face,
            faces_found=len(found),
            quality=quality,
            vectors=vectors,
            hashes=hashes,
            image_size=img.original_size,
            landmarks68=landmarks68,
            timings_ms=timings,
            pad=pad,
        )

    def _one_face(self, found: list[F.Face]) -> F.Face:
        """The single usable face, or ``face_not_found`` / ``multiple_faces``.

        A second face counts only when its box side is >= ``verify_second_face_ratio`` of the
        largest (a person far behind the user is ignored; a second person beside is refused).
        """
        if not found:
            raise VerificationError("face_not_found", "no face detected")
        main = found[0]
        others = [
            f for f in found[1:] if f.size >= self.settings.verify_second_face_ratio * main.size
        ]
        if others:
            raise VerificationError(
                "multiple_faces",
                f"{1 + len(others)} faces of comparable size",
                faces=1 + len(others),
                sizes_px=[round(main.size, 1)] + [round(f.size, 1) for f in others],
            )
        return main

    # --- public operations ---------------------------------------------------------------------
    def enrol(self, image_bytes: bytes) -> Template:
        """An ``enrolment`` template from a reference photo, under the stricter enrolment gate.

        Raises :class:`VerificationError` (decoding, detection or quality code, or
        ``presentation_suspected`` when the photo looks like a print or a screen: staff retake it
        of the person, not of a picture)."""
        a = self.analyse(image_bytes, purpose="enrol")
        if a.pad is not None and a.pad.suspected:
            raise VerificationError(
                "presentation_suspected",
                "the enrolment photo looks like a photo of a print or a screen",
                pad=a.pad.to_dict(),
            )
        return self._template(a, source="enrolment")

    def _template(self, a: FaceAnalysis, *, source: str) -> Template:
        return Template(
            embedder=self.embedder,
            model_sha256=self.model_sha256(),
            vector=a.vectors[self.embedder],
            quality=a.quality.to_dict(),
            source=source,
            image_sha256=a.hashes.sha256,
            image_phash=a.hashes.phash,
        )

    def thresholds(self, embedder: str | None = None, templates: int = 1) -> tuple[float, float]:
        """(accept, review) distances for ``embedder`` (default: the deciding one) when the best of
        ``templates`` comparisons decides: the accept threshold tightens with each extra template
        (``*_accept_shift``) so the false-match rate stays at the calibrated 0.1 %."""
        name = embedder or self.embedder
        s = self.settings
        accept, review, shifts = (
            (s.sface_accept, s.sface_review, s.sface_accept_shift)
            if name == "sface"
            else (s.dlib_accept, s.dlib_review, s.dlib_accept_shift)
        )
        shift = shifts[min(max(templates, 1), len(shifts)) - 1] if shifts else 0.0
        return round(accept + shift, 4), review

    def decide(
        self, distance: float, embedder: str | None = None, templates: int = 1
    ) -> tuple[Decision, str]:
        """(decision, code) for the best distance over ``templates`` templates: <= accept ->
        match, <= review -> review, else mismatch."""
        accept, review = self.thresholds(embedder, templates)
        if distance <= accept:
            return "match", "face_match"
        if distance <= review:
            return "review", "face_review"
        return "mismatch", "face_mismatch"

    def decide_retake(
        self, first: float, second: float, templates: int = 1, embedder: str | None = None
    ) -> tuple[Decision, str]:
        """(decision, code) of a retake: ``first`` is the best distance of a selfie that landed
        in the review band, ``second`` the retake's. The retake matches on its own (<= accept),
        or both together when their mean is <= ``retake_accept`` (calibrated so the two chances
        keep the false-accept rate of the whole policy at 0.1 %). Otherwise a person reviews:
        a first capture in the review band means the face was close, so a retake outside it is
        not a mismatch either."""
        accept, _review = self.thresholds(embedder, templates)
        together = (embedder or self.embedder) == "sface" and (
            (first + second) / 2 <= self.settings.retake_accept
        )  # calibrated for SFace only
        if second <= accept or together:
            return "match", "face_match"
        return "review", "face_review"

    def _compatible(self, templates: Iterable[Any]) -> list[Template]:
        ts = coerce_all(templates)
        kind = (self.embedder, self.model_sha256())
        wrong = [t.kind for t in ts if t.kind != kind]
        if wrong:
            raise VerificationError(
                "template_incompatible",
                f"templates made by {sorted(set(wrong))} cannot be compared with {kind}",
                expected=list(kind),
                found=[list(k) for k in sorted(set(wrong))],
            )
        return ts

    def _distances(self, templates: list[Template], vector: np.ndarray) -> list[float]:
        dist = F.DISTANCES[self.embedder]
        return [dist(t.vector, vector) for t in templates]

    def verify(
        self,
        templates: Iterable[Template | dict[str, Any] | bytes],
        image_bytes: bytes,
        *,
        previous_hashes: Iterable[str] = (),
    ) -> Result:
        """Compare a check-in selfie with a person's templates.

        ``templates``: the person's :class:`Template` objects (or their stored dict/bytes forms),
        all of the verifier's kind. ``previous_hashes``: tagged hash strings of earlier accepted
        selfies (the templates' own source photos are always included).
        The decision uses the best (smallest) distance over the templates.
        Raises :class:`VerificationError` when the selfie is unusable or a template is of another
        kind; returns a :class:`Result` otherwise.
        """
        ts = self._compatible(templates)
        a = self.analyse(image_bytes, purpose="checkin")
        distances = self._distances(ts, a.vectors[self.embedder])
        best = int(np.argmin(distances))
        decision, code = self.decide(distances[best], templates=len(ts))
        old = [h for t in ts for h in t.hashes()] + list(previous_hashes or ())
        replay = find_replay(a.hashes, old, max_hamming=self.settings.replay_max_hamming)
        details: dict[str, Any] = {}
        if replay is not None:
            decision, code = "mismatch", "replayed_image"
            details = {"replay_of": replay[0], "hamming": replay[1]}
        decision, code = self._pad_gate(a.pad, decision, code, details)
        return self._result(a, ts, distances, decision, code, details, replay)

    @staticmethod
    def _pad_gate(
        pad: PadResult | None, decision: Decision, code: str, details: dict[str, Any]
    ) -> tuple[Decision, str]:
        """A likely presentation attack is never ``match``: a face that matched (or was in the
        review band) goes to a person with ``presentation_suspected``. A face mismatch or a replay
        keeps its own code (those are decided without PAD). PAD never makes a ``mismatch``."""
        if pad is not None:
            details["pad"] = pad.to_dict()
            if pad.suspected and decision in ("match", "review"):
                details["face_code"] = code
                return "review", "presentation_suspected"
        return decision, code

    def _result(
        self,
        a: FaceAnalysis,
        ts: list[Template],
        distances: list[float],
        decision: Decision,
        code: str,
        details: dict[str, Any],
        replay: tuple[str, int] | None,
    ) -> Result:
        """Assemble a :class:`Result` for analysis ``a`` against templates ``ts``."""
        best = int(np.argmin(distances))
        accept, review = self.thresholds(templates=len(ts))
        return Result(
            decision=decision,
            code=code,
            distance=float(distances[best]),
            accept_threshold=accept,
            review_threshold=review,
            embedder=self.embedder,
            distances=[float(d) for d in distances],
            best_template=best,
            quality=a.quality,
            sha256=a.hashes.sha256,
            phash=a.hashes.phash,
            replay_of=None if replay is None else replay[0],
            details=details,
            candidate=self._template(a, source="checkin"),
            timings_ms=a.timings_ms,
            pad=a.pad,
        )

    def should_add_template(
        self,
        result: Result,
        templates: Sequence[Template] = (),
        *,
        staff_confirmed: bool = False,
    ) -> bool:
        """Whether ``result.candidate`` should join the person's templates.

        Yes only when augmentation is on (``augment_templates``) and (1) the selfie was a confident
        automatic match (distance <= ``augment_max_distance`` and <= the accept threshold for the
        current number of templates) or staff confirmed it after review, (2) it was not a replay,
        (3) it passes the *enrolment* quality gate, and (4) it is not a near-duplicate of a template
        (distance < 0.1 adds nothing). Store it with :func:`verification.templates.add_template`,
        which bounds the list to ``max_templates``.
        """
        if not self.settings.augment_templates:
            return False
        if result.candidate is None or result.code in (
            "replayed_image",
            "liveness_failed",
            "presentation_suspected",
        ):
            return False
        confident = (
            result.decision == "match"
            and result.distance <= self.settings.augment_max_distance
            and result.distance <= result.accept_threshold
        )
        if not (confident or (staff_confirmed and result.decision in ("match", "review"))):
            return False
        try:
            gate(result.quality, Thresholds.for_purpose(self.settings, "enrol"))
        except VerificationError:
            return False
        return all(
            F.DISTANCES[self.embedder](t.vector, result.candidate.vector) >= 0.1
            for t in templates
            if t.kind == result.candidate.kind
        )

    def check_liveness(
        self,
        templates: Iterable[Template | dict[str, Any] | bytes],
        challenge: Challenge | dict[str, Any] | str,
        frames: Sequence[bytes],
        *,
        previous_hashes: Iterable[str] = (),
    ) -> Result:
        """Check a burst of frames answers ``challenge`` and shows the enrolled person throughout.

        ``frames``: 2..``liveness_max_frames`` photos (bytes) in capture order, the first looking
        straight at the camera. Every frame must hold one face of usable size, sharpness and
        exposure (pose and eyes are not gated: they are what moves) and be within the review
        distance of the templates. The band of the result follows the best frame. Returns a
        :class:`Result` with code ``liveness_failed`` (``details["reason"]``) when the motion was
        not seen or a frame shows someone else; raises for unusable input.
        """
        ch = Challenge.coerce(challenge)
        s = self.settings
        if isinstance(frames, bytes | bytearray) or not (2 <= len(frames) <= s.liveness_max_frames):
            raise VerificationError(
                "invalid_challenge",
                f"need 2 to {s.liveness_max_frames} frames",
                max_frames=s.liveness_max_frames,
            )
        ts = self._compatible(templates)
        loose = Thresholds.for_purpose(s, "checkin")
        loose = Thresholds(
            loose.min_face_px,
            loose.min_sharpness,
            loose.min_brightness,
            loose.max_brightness,
            max_yaw=10.0,
            min_ear=0.0,
        )
        analyses = []
        for i, frame in enumerate(frames):
            try:
                a = self.analyse(
                    frame,
                    apply_gate=False,
                    need_landmarks68=ch.kind == "blink",
                    with_pad=True,
                )
                gate(a.quality, loose)
            except VerificationError as exc:
                exc.details.setdefault("frame", i)
                raise
            analyses.append(a)
        per_frame = [self._distances(ts, a.vectors[self.embedder]) for a in analyses]
        best_per_frame = [min(d) for d in per_frame]
        best_frame = int(np.argmin(best_per_frame))
        accept, review = self.thresholds(templates=len(ts))
        yaws = [a.quality.yaw for a in analyses]
        ears = [a.quality.ear for a in analyses if a.quality.ear is not None]
        details: dict[str, Any] = {
            "challenge": ch.to_dict(),
            "frame_distances": [round(d, 4) for d in best_per_frame],
            "yaws": [round(y, 3) for y in yaws],
            "ears": [round(e, 3) for e in ears],
        }
        if ch.kind == "blink":
            moved = blink_observed(ears, s.liveness_ear_open, s.liveness_blink_ratio)
        else:
            moved = turn_observed(yaws, ch.kind, s.liveness_min_turn)
        old = [h for t in ts for h in t.hashes()] + list(previous_hashes or ())
        replay = None
        for a in analyses:
            replay = replay or find_replay(a.hashes, old, max_hamming=s.replay_max_hamming)
        decision, code = self.decide(best_per_frame[best_frame], templates=len(ts))
        if max(best_per_frame) > review:
            decision, code = "mismatch", "liveness_failed"
            details["reason"] = "different_person"
        elif not moved:
            decision, code = "mismatch", "liveness_failed"
            details["reason"] = "no_blink" if ch.kind == "blink" else "no_turn"
        elif replay is not None:
            decision, code = "mismatch", "replayed_image"
            details.update(replay_of=replay[0], hamming=replay[1])
        pads = [a.pad for a in analyses if a.pad is not None]
        worst = min(pads, key=lambda p: p.score if p.score is not None else 1.0, default=None)
        decision, code = self._pad_gate(worst, decision, code, details)
        return self._result(
            analyses[best_frame], ts, per_frame[best_frame], decision, code, details, replay
        )
