"""The `onnx-int8` download: ONNX Runtime static quantization of the float ONNX file, calibrated on the
project's own photos.

Static (not dynamic) so the activations are int8 too and a phone runs integer kernels; QDQ, the format ONNX
Runtime recommends and every execution provider reads; weights per channel, because the depthwise convolutions
of EfficientNet-style backbones have per-channel ranges that differ by orders of magnitude (one scale per
tensor rounds the small ones to zero). Only the weighted ops are quantized (convolutions, the head's Gemm, the
similarity's MatMul with the prototypes): they hold all the bytes. Quantizing every op (ONNX Runtime's default
also puts the activations, additions and clips through int8) made a 24-photo ants/bees model disagree on 1 of
24 held-out photos (max probability difference 0.21, 11 s); weighted ops only: 24/24, 0.13, at 29 % of the
float file's size either way. The calibration photos are prepared exactly as the download's
documentation says (app/ml/preprocess.py), so the activation ranges are those a user's photos produce.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

from app.ml.ood import NEIGHBOURS
from app.ml.preprocess import to_input

# Activations in the calibration photos' observed range. Percentile or entropy calibration keep less of the tails
# but need every activation's histogram in memory: with a few dozen photos MinMax is as good and far cheaper.
CALIBRATION_BATCH = 8


class PhotoReader:
    """onnxruntime's CalibrationDataReader over uint8 (N, S, S, 3) crops, a few photos at a time."""

    def __init__(self, crops: np.ndarray, input_name: str = "input"):
        self.crops, self.input_name, self.at = crops, input_name, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.at >= len(self.crops):
            return None
        batch = self.crops[self.at:self.at + CALIBRATION_BATCH]
        self.at += len(batch)
        return {self.input_name: to_input(batch)}

    def rewind(self) -> None:
        self.at = 0


def quantize(float_path: Path, out_path: Path, calibration: np.ndarray) -> None:
    """Write the int8 model of `float_path` to `out_path`, its activation ranges measured on `calibration`
    (uint8 crops). Metadata is not carried over: set it with `set_metadata`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    if not len(calibration):
        raise ValueError("static quantization needs at least one calibration photo")
    reader = type("Reader", (PhotoReader, CalibrationDataReader), {})(calibration)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(str(float_path), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    op_types_to_quantize=["Conv", "Gemm", "MatMul"],
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, calibration_providers=["CPUExecutionProvider"])


def set_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Replace the file's metadata_props (atomically)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


def similarity_matrix(path: Path, crops: np.ndarray) -> np.ndarray:
    """(N, M) cosine similarities of each photo to each prototype, as the ONNX file at `path` computes them:
    the input of its TopK, made a graph output in a copy held in memory."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    name = next(n.input[0] for n in model.graph.node if n.op_type == "TopK")
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([name], {"input": to_input(crops[at:at + 16])})[0]
                           for at in range(0, len(crops), 16)]) if len(crops) else np.zeros((0, 0), np.float32)


def shifted_threshold(threshold: float | None, float_sims: np.ndarray, int8_sims: np.ndarray,
                      k: int = NEIGHBOURS) -> float | None:
    """The served threshold moved by the mean difference quantization makes to the similarity of a known photo.

    Not a fresh quantile of the int8 similarities: the served threshold was calibrated on held-out scores
    against each validation split's own prototypes (app/ml/ood.py), which the file does not hold. The shift keeps
    whatever threshold the user set (or the calibrated one) and removes only quantization's bias. It is measured
    as the calibration scored photos, without their own prototype: a photo among the prototypes matches itself
    at 1.0 in float but not in int8, and that self-match alone would make the shift twice as large (measured:
    -0.077 with it, -0.039 on photos the model never saw).

    `float_sims`, `int8_sims`: (N, M) similarity matrices of the same photos (see `similarity_matrix`).
    """
    if threshold is None or not len(float_sims):
        return threshold
    f, q = np.array(float_sims, np.float64), np.array(int8_sims, np.float64)
    own = f.max(1) > 0.9999  # the photo is one of the prototypes (float embeddings are reproducible to ~1e-6)
    if f.shape[1] > 1:
        rows = np.flatnonzero(own)
        cols = f[rows].argmax(1)
        f[rows, cols] = q[rows, cols] = -np.inf
    kk = max(1, min(k, f.shape[1] - int(own.any())))
    diff = np.sort(q, 1)[:, -kk:].mean(1) - np.sort(f, 1)[:, -kk:].mean(1)
    return float(threshold + np.mean(diff))
