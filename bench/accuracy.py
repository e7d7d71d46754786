"""Issue 4's table: the Teachable-Machine recipe versus each snapclass mode, on every labelled dataset.

Each row is a fresh project on a real server (`python -m app serve`), so its wall time is a cold
job: extraction included. Accuracy is measured through POST /predict on the held-out photos.

    .venv/bin/python -m bench.accuracy [--modes tm,head,auto,finetune] [--datasets hymenoptera,cifar10-mini]
"""

from __future__ import annotations

import argparse
import time

import httpx
import numpy as np

from bench.common import DATASETS, machine, photos, project_with_classes, server, wait_job

SPLITS = {"hymenoptera": ("train", "val"), "cifar10-mini": ("train", "test")}
LABEL = {"tm": "Teachable-Machine recipe (frozen embeddings)", "head": "snapclass head",
         "auto": "snapclass auto", "finetune": "snapclass finetune"}
BODY = {"tm": {"mode": "head", "recipe": "teachable-machine"}, "head": {"mode": "head"}, "auto": {"mode": "auto"},
        "finetune": {"mode": "finetune"}}


def run(client: httpx.Client, dataset: str, mode: str) -> dict:
    train_split, test_split = SPLITS[dataset]
    classes = sorted(p.name for p in (DATASETS / dataset / train_split).iterdir())
    pid, _ = project_with_classes(client, f"{dataset} {mode}", {c: photos(dataset, train_split, c) for c in classes})
    start = time.perf_counter()
    job = wait_job(client, client.post(f"/api/projects/{pid}/train", json=BODY[mode]).json()["job_id"])
    seconds = time.perf_counter() - start
    assert job["status"] == "succeeded", job
    right = []
    for c in classes:
        for path in photos(dataset, test_split, c):
            r = client.post(f"/api/projects/{pid}/predict", files={"file": (path.name, path.read_bytes())})
            right.append(r.json()["predictions"][0]["label"] == c)
    return {"accuracy": float(np.mean(right)), "n": len(right), "seconds": seconds,
            "ran": job["metrics"]["mode"], "val": job["metrics"].get("val_accuracy")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="tm,head,auto,finetune")
    parser.add_argument("--datasets", default="hymenoptera,cifar10-mini")
    args = parser.parse_args()
    rows = []
    with server() as (url, _), httpx.Client(base_url=url, timeout=3600) as client:
        device = client.get("/api/health").json()["device"]
        for dataset in args.datasets.split(","):
            for mode in args.modes.split(","):
                result = run(client, dataset, mode)
                rows.append((dataset, mode, result))
                print(f"  {dataset:13s} {mode:9s} acc {result['accuracy']:.3f} ({result['n']} photos) "
                      f"in {result['seconds']:.0f} s [{result['ran']}]", flush=True)
    print(f"\nmachine: {machine()}; server device: {device}")
    print("| dataset | mode | held-out accuracy | cold job wall time |")
    print("|---|---|---|---|")
    for dataset, mode, r in rows:
        print(f"| {dataset} ({SPLITS[dataset][0]} -> {SPLITS[dataset][1]}) | {LABEL[mode]} | {r['accuracy']:.3f} "
              f"| {r['seconds']:.0f} s |")
    for dataset in dict.fromkeys(d for d, _, _ in rows):
        base = next((r for d, m, r in rows if d == dataset and m == "tm"), None)
        for d, mode, r in rows:
            if d == dataset and base and mode != "tm":
                print(f"{dataset}: {mode} vs TM recipe: accuracy {r['accuracy'] - base['accuracy']:+.3f}, "
                      f"time x{r['seconds'] / base['seconds']:.1f}")


if __name__ == "__main__":
    main()
