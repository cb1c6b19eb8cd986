"""The coarse detection pass (``verify_detect_coarse_side``) on real photos: it may answer only
for a large face; a small face in a large photo, and every group photo, still get the full pass
(``-m faces``; skipped without ../shared/faces)."""

from __future__ import annotations

import numpy as np
import pytest

from verification import Verifier
from verification.face_models import COARSE_MIN_FACE
from verification.image import decode_image

pytestmark = pytest.mark.faces


@pytest.fixture(scope="module")
def detectors(settings):
    """(default detector with the coarse pass, the same without it)."""
    on = Verifier(settings)
    off = Verifier(settings, verify_detect_coarse_side=0)
    assert on.settings.verify_detect_coarse_side > 0
    return on._opencv()[0], off._opencv()[0], settings


def _bgr(path, settings):
    s = settings
    return decode_image(
        path.read_bytes(),
        max_bytes=s.max_image_bytes,
        max_pixels=s.max_image_pixels,
        max_side=s.verify_decode_max_side,
    ).bgr


def _centre(face):
    x, y, w, h = face.box
    return np.array([x + w / 2, y + h / 2])


def test_a_small_face_in_a_large_photo_is_still_found(faces_dir, detectors):
    """Photos larger than the 640 px pass whose face would be small in the 320 px copy (identity
    photos of 1000-2800 px with a 100-300 px face, and the `_tiny_blur` 64 px faces in a
    1600 px scene, which the 640 px pass does not find either): the same faces, at the very same
    boxes, as without the coarse pass."""
    on, off, settings = detectors
    photos = sorted((faces_dir / "_tiny_blur").glob("*__inscene64.jpg"))
    photos += sorted(p for p in faces_dir.glob("*/*.jpg") if not p.parent.name.startswith("_"))
    small_found = 0
    for f in photos:
        bgr = _bgr(f, settings)
        long = max(bgr.shape[:2])
        if long <= on.max_side:
            continue
        without = off.detect(bgr)
        if without and without[0].size * on.coarse_side / long >= COARSE_MIN_FACE:
            continue  # a large face: the coarse pass may answer (next tests)
        with_coarse = on.detect(bgr)
        assert [x.box for x in with_coarse] == [x.box for x in without], f.name
        small_found += bool(without)
    assert small_found >= 30, small_found


def test_group_photos_keep_every_face_that_counts(faces_dir, detectors):
    """Every `_multi` photo: the faces that count as a second person (>= 0.6 of the largest)
    are the same number with and without the coarse pass, at the same places."""
    on, off, settings = detectors
    ratio = settings.verify_second_face_ratio
    for f in sorted((faces_dir / "_multi").glob("*.jpg")):
        bgr = _bgr(f, settings)
        a, b = on.detect(bgr), off.detect(bgr)
        big_a = [x for x in a if x.size >= ratio * a[0].size]
        big_b = [x for x in b if x.size >= ratio * b[0].size]
        assert len(big_a) == len(big_b) >= 2, (f.name, len(big_a), len(big_b))
        for fa, fb in zip(big_a, big_b, strict=True):
            assert np.abs(_centre(fa) - _centre(fb)).max() <= 0.25 * fb.size, f.name


def test_the_coarse_pass_answers_only_for_a_large_face(faces_dir, detectors):
    """Where the coarse pass answered, the main face is >= COARSE_MIN_FACE px in the coarse copy
    and it is the face of the full pass (centre within 10 % of its size)."""
    on, off, settings = detectors
    answered = 0
    photos = sorted(p for p in faces_dir.glob("*/*.jpg") if not p.parent.name.startswith("_"))
    for f in photos[::3]:
        bgr = _bgr(f, settings)
        long = max(bgr.shape[:2])
        if long <= on.max_side:
            continue
        a, b = on.detect(bgr), off.detect(bgr)
        if not a or not b or a[0].box == b[0].box:
            continue
        answered += 1
        assert a[0].size * on.coarse_side / long >= COARSE_MIN_FACE, f.name
        assert np.abs(_centre(a[0]) - _centre(b[0])).max() <= 0.1 * b[0].size, f.name
    assert answered >= 1
