"""Fit ``verification.face_models.DLIB_BOX_SCALE``: dlib's HOG box from YuNet's 5 landmarks.

    uv run python bench/calib_dlib_box.py

dlib's shape predictors were trained on boxes from its HOG detector. The verifier detects with
YuNet and rebuilds a HOG-like box from YuNet's landmarks: side = scale x mean(eye-to-mouth
distance, eye distance), centred on the midpoint of eyes and mouth. On every third identity photo
where HOG finds exactly one face, this prints the median ratio HOG side / each span and the
centre offsets (fractions of the side).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from verification import face_models as F  # noqa: E402
from verification.image import decode_image  # noqa: E402

SETS = [
    Path(os.environ.get("ISOCHECK_FACES_DIR", REPO.parent / "shared" / "faces")),
    Path(os.environ.get("ISOCHECK_FACES_ASIA_DIR", REPO.parent / "shared" / "faces-asia")),
]


def main() -> None:
    import dlib

    det = F.YuNetDetector(
        F.read_model(F.YUNET_FILE, F.YUNET_SHA256), score_threshold=0.7, max_side=640
    )
    hog = dlib.get_frontal_face_detector()
    for root in SETS:
        files = sorted(p for p in root.glob("*/*.jpg") if not p.parent.name.startswith("_"))
        rows = []
        for p in files[::3]:
            img = decode_image(p.read_bytes(), max_bytes=10**8, max_pixels=10**9, max_side=1600)
            faces = det.detect(img.bgr)
            found = hog(np.ascontiguousarray(img.bgr[:, :, ::-1]), 1)
            if not faces or len(found) != 1:
                continue
            f, r = faces[0], found[0]
            eyes, mouth = f.landmarks[:2].mean(0), f.landmarks[3:5].mean(0)
            span = np.linalg.norm(mouth - eyes)
            eye_dist = np.linalg.norm(f.landmarks[0] - f.landmarks[1])
            centre = (eyes + mouth) / 2
            side = (r.width() + r.height()) / 2
            rows.append(
                (
                    side / ((span + eye_dist) / 2),
                    side / span,
                    side / eye_dist,
                    ((r.left() + r.right()) / 2 - centre[0]) / side,
                    ((r.top() + r.bottom()) / 2 - centre[1]) / side,
                )
            )
        a = np.array(rows)
        print(
            f"{root.name}: {len(a)} photos; median side/mean-span {np.median(a[:, 0]):.3f}, "
            f"side/eye-mouth {np.median(a[:, 1]):.3f}, side/eyes {np.median(a[:, 2]):.3f}, "
            f"dx {np.median(a[:, 3]):+.3f}, dy {np.median(a[:, 4]):+.3f}"
        )


if __name__ == "__main__":
    main()
