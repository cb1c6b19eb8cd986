"""OpenVINO (the default engine) and OpenCV's DNN module give the same faces, embeddings, PAD
scores and decisions on real photos, so no threshold moves with the engine (issue 12).

Skips cleanly without ../shared (faces-asia, spoof, the PAD model)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from verification import VerificationError, VerificationSettings, Verifier
from verification.calibrate import load_pairs
from verification.image import decode_image

REPO = Path(__file__).resolve().parents[2]
SPOOF = Path(os.environ.get("ISOCHECK_SPOOF_DIR", REPO.parent / "shared/spoof"))
PAD_MODEL = Path(
    os.environ.get("ISOCHECK_PAD_MODEL_PATH", REPO.parent / "shared/models/minifasnetv2se_128.onnx")
)


def _pair(settings: VerificationSettings, **overrides) -> tuple[Verifier, Verifier]:
    base = {**settings.model_dump(), **overrides}
    return (
        Verifier(VerificationSettings(**{**base, "inference_engine": "opencv"})),
        Verifier(VerificationSettings(**{**base, "inference_engine": "openvino"})),
    )


@pytest.fixture(scope="module")
def engines(settings: VerificationSettings) -> tuple[Verifier, Verifier]:
    return _pair(settings, pad_model_path=None)


def _asia_pairs(asia_dir: Path, n_same: int = 24, n_diff: int = 24):
    """A few dozen faces-asia pairs, same and different people, spread over the file."""
    pairs = load_pairs(asia_dir / "pairs.csv")
    same = [p for p in pairs if p.same]
    diff = [p for p in pairs if not p.same]
    pick = same[:: max(1, len(same) // n_same)][:n_same] + diff[:: max(1, len(diff) // n_diff)]
    return pick[: n_same + n_diff]


def test_the_default_engine_is_openvino_and_status_says_so(settings, engines):
    assert settings.inference_engine == "openvino"
    cv, ov = engines
    assert cv.engine_status()["engine"] == "opencv"
    status = ov.engine_status()
    assert status["engine"] == "openvino" and status["precision"] == "f32"
    assert status["threads"] == 1 and status["openvino"][:4].isdigit()


def test_an_unknown_engine_is_refused_by_the_settings():
    with pytest.raises(ValueError, match="inference_engine"):
        VerificationSettings(inference_engine="tensorrt")


def test_sface_embeddings_and_decisions_are_the_same_on_both_engines(asia_dir, engines):
    cv, ov = engines
    cosines, n, decided = [], 0, {"match": 0, "review": 0, "mismatch": 0}
    for p in _asia_pairs(asia_dir):
        enrol = (asia_dir / p.img1).read_bytes()
        selfie = (asia_dir / p.img2).read_bytes()
        try:
            t_cv, t_ov = cv.enrol(enrol), ov.enrol(enrol)
        except VerificationError as exc:
            with pytest.raises(VerificationError) as again:
                ov.enrol(enrol)
            assert again.value.code == exc.code
            continue
        cosines.append(float(np.dot(t_cv.vector, t_ov.vector)))
        try:
            r_cv = cv.verify([t_cv], selfie)
        except VerificationError as exc:
            with pytest.raises(VerificationError) as again:
                ov.verify([t_ov], selfie)
            assert again.value.code == exc.code
            continue
        r_ov = ov.verify([t_ov], selfie)
        cosines.append(float(np.dot(r_cv.candidate.vector, r_ov.candidate.vector)))
        assert (r_ov.decision, r_ov.code) == (r_cv.decision, r_cv.code), (p, r_cv.distance)
        assert abs(r_ov.distance - r_cv.distance) < 1e-3  # measured <= 2e-4
        decided[r_cv.decision] += 1
        n += 1
    assert n >= 30, f"only {n} pairs verified"
    assert decided["match"] > 0 and decided["mismatch"] > 0, decided  # both kinds were compared
    assert min(cosines) >= 0.9999, min(cosines)


def test_yunet_finds_the_same_faces_within_half_a_pixel(asia_dir, engines):
    cv, ov = engines
    (d_cv, _), (d_ov, _) = cv._opencv(), ov._opencv()
    assert d_ov.engine == "openvino" and d_cv.engine == "opencv"
    files = sorted({p.img1 for p in load_pairs(asia_dir / "pairs.csv")})[::7][:30]
    faces = 0
    for rel in files:
        img = decode_image(
            (asia_dir / rel).read_bytes(), max_bytes=10**8, max_pixels=10**8, max_side=720
        ).bgr
        for side in (640, 320):
            a, b = d_cv._detect_at(img, side), d_ov._detect_at(img, side)
            assert len(a) == len(b), (rel, side)
            for fa, fb in zip(a, b, strict=True):
                assert np.abs(np.subtract(fa.box, fb.box)).max() <= 0.5, (rel, side)
                assert np.abs(fa.landmarks - fb.landmarks).max() <= 0.5, (rel, side)
                assert abs(fa.score - fb.score) < 1e-3
                faces += 1
    assert faces >= 40


def test_yunet_on_a_photo_without_a_face_finds_none_on_both_engines(engines):
    cv, ov = engines
    grey = np.full((480, 640, 3), 127, np.uint8)
    for v in (cv, ov):
        assert v._opencv()[0].detect(grey) == []


def _spoof_files(n: int = 30) -> list[Path]:
    if not (SPOOF / "manifest.csv").is_file():
        pytest.skip(f"spoof set not found at {SPOOF} (set ISOCHECK_SPOOF_DIR)")
    with open(SPOOF / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    live = [r for r in rows if r["label"] == "live"]
    attack = [r for r in rows if r["label"] != "live"]
    half = n // 2
    pick = live[:: max(1, len(live) // half)][:half] + attack[:: max(1, len(attack) // half)][:half]
    return [SPOOF / r["file"] for r in pick]


def test_pad_scores_are_equal_on_both_engines(settings):
    if not PAD_MODEL.is_file():
        pytest.skip(f"PAD model not found at {PAD_MODEL} (set ISOCHECK_PAD_MODEL_PATH)")
    cv, ov = _pair(settings, pad_model_path=PAD_MODEL)
    n, flagged = 0, 0
    for f in _spoof_files():
        data = f.read_bytes()
        try:
            a = cv.analyse(data, apply_gate=False)
        except VerificationError:
            continue
        b = ov.analyse(data, apply_gate=False)
        assert a.pad.state == b.pad.state == "on"
        assert abs(a.pad.score - b.pad.score) <= 1e-4, f
        assert abs(a.pad.cues["model_logit"] - b.pad.cues["model_logit"]) <= 1e-3, f
        assert a.pad.code == b.pad.code
        flagged += a.pad.suspected
        n += 1
    assert n >= 20 and 0 < flagged < n  # live and attack photos both compared


def test_isocheck_verify_json_names_the_engine(asia_dir, monkeypatch):
    from verification.cli import verify_command

    p = next(p for p in _asia_pairs(asia_dir) if p.same)
    monkeypatch.setenv("ISOCHECK_INFERENCE_ENGINE", "opencv")
    out = CliRunner().invoke(
        verify_command, [str(asia_dir / p.img1), str(asia_dir / p.img2), "--json"]
    )
    body = json.loads(out.output)
    assert body["engine"]["engine"] == "opencv", out.output
    monkeypatch.setenv("ISOCHECK_INFERENCE_ENGINE", "openvino")
    out = CliRunner().invoke(
        verify_command, [str(asia_dir / p.img1), str(asia_dir / p.img2), "--json"]
    )
    assert json.loads(out.output)["engine"]["engine"] == "openvino", out.output
