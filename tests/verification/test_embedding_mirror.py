"""The mirror-averaged SFace vector (``verification.embedding.mirror_average``, issue 16): measured
in bench/review_load.py, not the default. What it must be, whatever engine runs SFace: a unit
vector, the same for a face and for its mirror image, close to the plain vector of that face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from verification import face_models as F
from verification.embedding import mirror_average
from verification.image import decode_image


def _aligned(verifier, faces_dir: Path) -> np.ndarray:
    photo = next(p for p in sorted(faces_dir.glob("*/*.jpg")) if not p.parent.name.startswith("_"))
    s = verifier.settings
    img = decode_image(
        photo.read_bytes(),
        max_bytes=s.max_image_bytes,
        max_pixels=s.max_image_pixels,
        max_side=s.verify_decode_max_side,
    )
    detector, sface = verifier._opencv()
    faces = detector.detect(img.bgr)
    if not faces:
        pytest.skip(f"no face in {photo.name}")
    return sface.align(img.bgr, faces[0])


def test_mirror_average_is_a_unit_vector_equal_for_a_face_and_its_mirror(verifier, faces_dir):
    aligned = _aligned(verifier, faces_dir)
    _, sface = verifier._opencv()
    m = mirror_average(sface.embed, aligned)
    assert m.dtype == np.float32 and m.shape == (128,)
    assert abs(float(np.linalg.norm(m)) - 1.0) < 1e-5
    flipped = mirror_average(sface.embed, cv2.flip(aligned, 1))
    assert F.sface_distance(m, flipped) < 1e-5
    plain, plain_flipped = sface.embed(aligned), sface.embed(cv2.flip(aligned, 1))
    # the flip changes the plain vector (so the test above would see a missing flip) ...
    assert F.sface_distance(plain, plain_flipped) > 1e-3
    # ... and the mean sits between the two plain vectors of the same face
    d_mean = F.sface_distance(m, plain)
    assert 0.0 < d_mean < F.sface_distance(plain, plain_flipped)
