"""The `onnx-int8` download on a real project: size against the float ONNX file, build time, and top-1 agreement
with the server's /predict on photos the model never saw (all of hymenoptera/train trained, hymenoptera/val
checked), each prepared as documented and run with onnxruntime alone.

    python -m bench.int8      (SNAPCLASS_TEST_DATASETS names the datasets folder when run from a worktree)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from bench.common import DATASETS, documented_input, machine


def main() -> None:
    root = Path(os.environ.get("SNAPCLASS_TEST_DATASETS") or DATASETS) / "hymenoptera"
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(Settings(data_dir=Path(tmp)))) as client:
        pid = client.post("/api/projects", json={"name": "ants vs bees"}).json()["id"]
        for name in ("ants", "bees"):
            cid = client.post(f"/api/projects/{pid}/classes", json={"name": name}).json()["id"]
            files = sorted((root / "train" / name).iterdir())
            for at in range(0, len(files), 32):
                r = client.post(f"/api/classes/{cid}/samples",
                                files=[("files", (p.name, p.read_bytes())) for p in files[at:at + 32]])
                assert r.status_code in (200, 201), r.text
        job_id = client.post(f"/api/projects/{pid}/train", json={"mode": "head"}).json()["job_id"]
        while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("succeeded", "failed"):
            time.sleep(0.5)
        assert job["status"] == "succeeded", job
        files, seconds = {}, {}
        for fmt in ("onnx", "onnx-int8"):
            started = time.perf_counter()
            r = client.get(f"/api/projects/{pid}/model/download", params={"format": fmt})
            seconds[fmt] = time.perf_counter() - started
            assert r.status_code == 200, r.text
            files[fmt] = Path(tmp) / f"model-{fmt}.onnx"
            files[fmt].write_bytes(r.content)
        session = ort.InferenceSession(str(files["onnx-int8"]), providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        size, labels = int(meta["input_size"]), json.loads(meta["labels"])
        val = [p for name in ("ants", "bees") for p in sorted((root / "val" / name).iterdir())]
        agree = 0
        for p in val:
            served = client.post(f"/api/projects/{pid}/predict", files={"file": (p.name, p.read_bytes())}).json()
            probs = session.run(["probabilities"], {"input": documented_input(p, size)})[0][0]
            agree += labels[int(np.argmax(probs))] == served["predictions"][0]["label"]
        model = client.get(f"/api/models/{job['model_id']}").json()
        report = {e["format"]: e for e in model["exports"]}["onnx-int8"]
        int8_mb, float_mb = files["onnx-int8"].stat().st_size / 1e6, files["onnx"].stat().st_size / 1e6
        print(f"machine: {machine()}")
        print(f"float onnx {float_mb:.1f} MB (built and checked in {seconds['onnx']:.1f} s); "
              f"int8 {int8_mb:.1f} MB = {int8_mb / float_mb:.1%} (built and checked in {seconds['onnx-int8']:.1f} s)")
        print(f"int8 vs /predict on hymenoptera/val: {agree}/{len(val)}")
        print(f"server's parity check: agreement {report['agreement']:.3f} on {report['photos']} "
              f"{report['checked_on']}, max prob diff {report['max_prob_diff']:.3f}; unknown_threshold "
              f"{report['unknown_threshold']:.3f} (served {model['unknown_threshold']:.3f})")


if __name__ == "__main__":
    sys.exit(main())
