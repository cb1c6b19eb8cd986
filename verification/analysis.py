"""Measuring one photo: the models (read and checksummed once, instances per thread) and the
pipeline decode -> detect -> PAD -> quality gate -> embed -> hash (:class:`Analyser`).

OpenCV's detector and recogniser keep per-call state, so each thread gets its own instances
(built from model bytes read and checksummed once); dlib's models are shared behind a lock (used
only for the second opinion, eye landmarks and liveness blinks). ``bench/verify_bench.py``
measures the per-thread choice against one lock. :class:`verification.Verifier` builds on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from verification import face_models as F
from verification.errors import VerificationError
from verification.image import decode_image
from verification.pad import Fusion, PresentationAttackDetector, load_pad_model
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
from verification.replay import ImageHashes, phash64, sha256_hex
from verification.results import FaceAnalysis
from verification.settings import VerificationSettings


class Analyser:
    """The models and :meth:`analyse` of :class:`verification.Verifier` (see there).

    ``settings``: a settings object (default: read from ``ISOCHECK_*`` variables);
    ``overrides``: single fields on top, e.g. ``Verifier(verify_embedder="dlib")``.
    Models load on first use (or on :meth:`load`), never at construction.
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
        self._loaded = False

    # --- models --------------------------------------------------------------------------------
    @property
    def embedder(self) -> str:
        """The embedder that decides (``settings.verify_embedder``)."""
        return self.settings.verify_embedder

    def model_sha256(self, embedder: str | None = None) -> str:
        """SHA-256 of the model file behind ``embedder`` (default: the deciding one)."""
        return F.EMBEDDER_MODELS[embedder or self.embedder][1]

    def load(self) -> Analyser:
        """Read and checksum the model files and build the networks now, instead of at the first
        photo. The server does this when a process starts (``server.face_verifier.warm_verifier``
        from gunicorn's ``post_worker_init`` and ``isocheck serve``, unless
        ``ISOCHECK_WARM_VERIFIER=false``): OpenVINO's networks are compiled once per process and
        shared by its threads, so the first check-in after a deploy is not the slow one, and a
        damaged file is logged before any request. Raises ``model_invalid`` for such a file.
        Returns ``self``."""
        self._opencv()
        self._pad()
        if self.embedder == "dlib" or self.settings.checkin_min_ear > 0:
            self._dlib_models()
        self._loaded = True
        return self

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has built the networks (``/readyz`` reports it)."""
        return self._loaded

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
                engine=self.settings.inference_engine,
                threads=self.inference_threads,
            )
            self._local.pad = det
        return det

    @property
    def inference_threads(self) -> int:
        """Threads of each OpenVINO inference: ``verify_cv_threads`` when set (>= 1), else 1."""
        return max(1, self.settings.verify_cv_threads or 1)

    def engine_status(self) -> dict[str, Any]:
        """``{"engine": openvino|opencv, "threads": …, "openvino": version, "precision": f32}``:
        what runs SFace and the PAD network (/readyz, ``isocheck verify --json``, start-up log)."""
        from verification.inference import status

        return status(self.settings.inference_engine, self.inference_threads)

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
                    engine=s.inference_engine,
                    threads=self.inference_threads,
                ),
                F.SFaceEmbedder(sface, engine=s.inference_engine, threads=self.inference_threads),
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
