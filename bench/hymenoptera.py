"""Issue 2's figures, over real HTTP against `python -m app serve`:

cold training job on all 245 hymenoptera/train photos (upload done -> model ready), accuracy of
POST /predict on the 153 val photos, and top-1 agreement of the downloaded ONNX model, prepared as
documented, with the server.

    .venv/bin/python -m bench.hymenoptera [--mode head|auto|finetune]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import httpx
import numpy as np
import onnxruntime as ort

from bench.common import documented_input, machine, photos, project_with_classes, server, wait_job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="head")
    args = parser.parse_args()
    train = {c: photos("hymenoptera", "train", c) for c in ("ants", "bees")}
    val = [(p, c) for c in ("ants", "bees") for p in photos("hymenoptera", "val", c)]
    with server() as (url, _), httpx.Client(base_url=url, timeout=600) as client:
        pid, _ = project_with_classes(client, "ants vs bees", train)
        t0 = time.perf_counter()
        job_id = client.post(f"/api/projects/{pid}/train", json={"mode": args.mode}).json()["job_id"]
        job = wait_job(client, job_id)
        cold = time.perf_counter() - t0
        assert job["status"] == "succeeded", job
        served = {}
        for path, _ in val:
            r = client.post(f"/api/projects/{pid}/predict", files={"file": (path.name, path.read_bytes())})
            served[path] = r.json()["predictions"][0]["label"]
        accuracy = float(np.mean([served[p] == c for p, c in val]))
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(client.get(f"/api/projects/{pid}/model/download?format=onnx").content)
            f.flush()
            sess = ort.InferenceSession(f.name)
            meta = sess.get_modelmeta().custom_metadata_map
            labels, size = json.loads(meta["labels"]), int(meta["input_size"])
            agree = float(np.mean([labels[int(sess.run(None, {"input": documented_input(p, size)})[0].argmax())]
                                   == served[p] for p, _ in val]))
    m = job["metrics"]
    print(f"machine: {machine()}")
    print(f"mode asked: {args.mode}; ran: {m.get('mode')} ({m.get('mode_reason')})")
    print(f"cold training job, 245 photos (upload done -> model ready): {cold:.1f} s")
    print(f"  extraction {m.get('extract_seconds')} s at {m.get('extract_images_per_second')} img/s, "
          f"head {m.get('head_seconds')} s, validation accuracy {m.get('val_accuracy'):.3f}")
    print(f"val accuracy through POST /predict, 153 photos: {accuracy:.3f}")
    print(f"downloaded ONNX top-1 agreement with the server: {agree:.3f}")


if __name__ == "__main__":
    main()
