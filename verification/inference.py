"""Running the ONNX networks (SFace, the PAD model) on OpenVINO's CPU plugin.

OpenCV's DNN module runs SFace in ~37 ms and MiniFASNet in ~8 ms per selfie on one core;
OpenVINO runs the same networks, built from the same checksummed bytes, in ~17 and ~4 ms
(``bench/pad_bench.py``, docs/performance.md). ``ISOCHECK_INFERENCE_ENGINE=opencv`` keeps the
OpenCV path (the fallback, and the reference of the equality tests).

* The network is read from the verified bytes in memory (``Core.read_model(bytes)``): no file is
  written, nothing is downloaded, no model cache directory is set.
* SFace's int8 "bq" file keeps its weights as blockwise ``DequantizeLinear`` of int8 constants
  (ONNX opset 21 ``block_size``), which OpenVINO's ONNX reader does not convert. A conversion
  extension folds each such node, when all its inputs are constants, into the fp32 constant
  ``(x - zero_point) * scale`` (numpy, from the file's own numbers) — what OpenCV computes when it
  loads the file — so the graph OpenVINO compiles is a plain fp32 network.
* Compiled with ``INFERENCE_NUM_THREADS`` = the settings' thread count (1: one core per worker),
  ``INFERENCE_PRECISION_HINT=f32`` (a bf16/fp16-capable CPU gives the same numbers as any other)
  and ``PERFORMANCE_HINT=LATENCY``, without CPU pinning (:func:`config`). OpenVINO runs the
  network on a thread of its own: measure it with process CPU time (``time.process_time``), not
  the calling thread's.

Thread safety: a compiled network is shared by the whole process (compiled once per model and
thread count); each :class:`OpenVinoNet` owns one infer request and is, like OpenCV's nets, for
one thread at a time (:class:`verification.analysis.Analyser` gives every thread its own).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

Engine = Literal["openvino", "opencv"]
ENGINES: tuple[str, ...] = ("openvino", "opencv")
PRECISION = "f32"

_lock = threading.Lock()
_core: Any = None
_compiled: dict[tuple[bytes, int, tuple[int, ...] | None], Any] = {}


def _fold_dequantize(node: Any) -> list[Any]:
    """``DequantizeLinear`` with constant inputs -> one fp32 constant (per-tensor, per-axis or
    blockwise scales and zero points, ONNX opset 10-21); otherwise OpenVINO's own conversion."""
    import openvino.opset13 as ops

    n = node.get_input_size()
    sources = [node.get_input(i).get_node() for i in range(n)]
    if not all(s.get_type_name() == "Constant" for s in sources):
        raise RuntimeError("DequantizeLinear of a non-constant input: not supported here")
    x = sources[0].get_data().astype(np.float32)
    scale = sources[1].get_data().astype(np.float32)
    zero = sources[2].get_data().astype(np.float32) if n > 2 else np.zeros_like(scale)
    axis = int(node.get_attribute("axis")) if node.has_attribute("axis") else 1
    block = int(node.get_attribute("block_size")) if node.has_attribute("block_size") else 0
    if scale.ndim and x.ndim:
        axis %= x.ndim
        if block > 0:  # blockwise: scale has x's rank, ceil(dim / block) entries along ``axis``
            idx = np.arange(x.shape[axis]) // block
            scale, zero = np.take(scale, idx, axis=axis), np.take(zero, idx, axis=axis)
        else:  # per axis: a 1-D scale along ``axis``
            shape = [1] * x.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
    return [ops.constant(((x - zero) * scale).astype(np.float32)).output(0)]


def _ov_core() -> Any:
    global _core
    if _core is None:
        import openvino as ov
        from openvino.frontend.onnx import ConversionExtension

        core = ov.Core()
        core.add_extension(ConversionExtension("DequantizeLinear", _fold_dequantize))
        _core = core
    return _core


def compile_model(
    model: bytes, *, threads: int = 1, input_shape: Sequence[int] | None = None
) -> Any:
    """The OpenVINO CPU network of the ONNX ``model`` bytes (compiled once per process for each
    model, thread count and input shape). ``input_shape``: fix a dynamic input (e.g. the PAD
    model's batch) to this shape."""
    shape = tuple(int(v) for v in input_shape) if input_shape is not None else None
    key = (hashlib.sha256(model).digest(), int(threads), shape)
    with _lock:
        if key not in _compiled:
            core = _ov_core()
            net = core.read_model(bytes(model))
            if shape is not None:
                net.reshape(list(shape))
            _compiled[key] = core.compile_model(net, "CPU", config(threads))
        return _compiled[key]


def config(threads: int) -> dict[str, Any]:
    """The CPU plugin's settings: ``threads`` inference threads, fp32, latency, one stream, no
    CPU pinning (its default pins the inference thread to a core chosen inside this process:
    two gunicorn workers, each its own process, could pin to the same core; the OS scheduler
    spreads them)."""
    return {
        "INFERENCE_NUM_THREADS": max(1, int(threads)),
        "ENABLE_CPU_PINNING": False,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": PRECISION,
    }


class OpenVinoNet:
    """One infer request on a shared compiled network: for one thread at a time."""

    def __init__(
        self, model: bytes, *, threads: int = 1, input_shape: Sequence[int] | None = None
    ) -> None:
        self._request = compile_model(
            model, threads=threads, input_shape=input_shape
        ).create_infer_request()

    def run(self, blob: np.ndarray) -> np.ndarray:
        """The first output for the float32 NCHW ``blob`` (a copy: the request reuses its
        buffers)."""
        self._request.infer({0: np.ascontiguousarray(blob, np.float32)})
        return np.array(self._request.get_output_tensor(0).data, np.float32)


def status(engine: str, threads: int) -> dict[str, Any]:
    """What runs the networks, for /readyz, ``isocheck verify --json`` and the start-up log."""
    out: dict[str, Any] = {"engine": engine, "threads": max(1, int(threads))}
    if engine == "openvino":
        # the installed version, without importing openvino (0.6 s): the app's start-up log
        # asks before any network is built
        from importlib.metadata import version

        out.update(openvino=version("openvino"), precision=PRECISION)
    else:
        import cv2

        out.update(opencv=cv2.__version__)
    return out


#: YuNet's output strides and its input size divisor (``FaceDetectorYN``'s constants).
YUNET_STRIDES = (8, 16, 32)
YUNET_DIVISOR = 32


class YuNetNet:
    """YuNet on OpenVINO with ``FaceDetectorYN::detect``'s pre- and post-processing in numpy:
    the image padded (zeros, bottom and right) to a multiple of 32, fed as BGR float32 without
    scaling; per stride 8/16/32 the score sqrt(clip(cls) x clip(obj)), the box (centre offset,
    exp of the size) and the five landmarks decoded in float32; then OpenCV's own
    ``dnn.NMSBoxes`` on the same integer boxes. One compiled network of dynamic height and width
    serves every image size. For one thread at a time (one infer request)."""

    def __init__(
        self,
        model: bytes,
        *,
        score_threshold: float,
        nms_threshold: float = 0.3,
        top_k: int = 50,
        threads: int = 1,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self._request = compile_model(
            model, threads=threads, input_shape=(1, 3, -1, -1)
        ).create_infer_request()

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        """Rows of 15 float32 (x, y, w, h, 5 x (x, y) landmarks, score) as
        ``FaceDetectorYN.detect`` returns them (shape (0, 15) when none)."""
        h, w = bgr.shape[:2]
        ph = ((h - 1) // YUNET_DIVISOR + 1) * YUNET_DIVISOR
        pw = ((w - 1) // YUNET_DIVISOR + 1) * YUNET_DIVISOR
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        self._request.infer({0: blob})
        rows = [self._decode(s, pw // s) for s in YUNET_STRIDES]
        faces = np.concatenate(rows) if rows else np.zeros((0, 15), np.float32)
        if len(faces) <= 1:
            return faces
        import cv2

        boxes = [[int(v) for v in f[:4]] for f in faces]
        keep = cv2.dnn.NMSBoxes(
            boxes,
            faces[:, 14].tolist(),
            self.score_threshold,
            self.nms_threshold,
            1.0,
            self.top_k,
        )
        return faces[np.asarray(keep, np.int64).reshape(-1)]

    def _decode(self, stride: int, cols: int) -> np.ndarray:
        out = self._request.get_tensor
        cls = np.clip(out(f"cls_{stride}").data.reshape(-1), 0.0, 1.0)
        obj = np.clip(out(f"obj_{stride}").data.reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj).astype(np.float32)
        idx = np.flatnonzero(score >= self.score_threshold)
        if idx.size == 0:
            return np.zeros((0, 15), np.float32)
        s = np.float32(stride)
        c = (idx % cols).astype(np.float32)
        r = (idx // cols).astype(np.float32)
        box = out(f"bbox_{stride}").data.reshape(-1, 4)[idx].astype(np.float32)
        kps = out(f"kps_{stride}").data.reshape(-1, 10)[idx].astype(np.float32)
        bw = np.exp(box[:, 2]) * s
        bh = np.exp(box[:, 3]) * s
        face = np.empty((idx.size, 15), np.float32)
        face[:, 0] = (c + box[:, 0]) * s - bw / np.float32(2)
        face[:, 1] = (r + box[:, 1]) * s - bh / np.float32(2)
        face[:, 2] = bw
        face[:, 3] = bh
        face[:, 4:14:2] = (kps[:, 0::2] + c[:, None]) * s
        face[:, 5:14:2] = (kps[:, 1::2] + r[:, None]) * s
        face[:, 14] = score[idx]
        return face
