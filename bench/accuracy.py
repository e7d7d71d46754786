"""Issue 4's table: the Teachable-Machine recipe versus each snapclass mode, on every labelled dataset.

Each row is a fresh project on a real server (`python -m app serve`): its first job is cold (the
wall time shown, extraction included); the repeats retrain the same project with other seeds (so
other validation splits, folds and initialisations) on its cached embeddings. Accuracy is measured
through POST /predict on the held-out photos, as the mean over the repeats, with the range: on 153
photos one photo is 0.65 points, so a single run cannot tell recipes apart.

    .venv/bin/python -m bench.accuracy [--modes tm,head,auto,finetune] [--datasets hymenoptera,cifar10-mini]
                                       [--repeats 3] [--uneven head]

The uneven-classes row (issue 11): every hymenoptera ant against the first 24 bees, trained without
and with class weights in one run (same project, same seeds), judged on all of hymenoptera/val: the
bees' accuracy, the balanced accuracy (mean of the two classes') and the plain accuracy.
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


def run(client: httpx.Client, dataset: str, mode: str, repeats: int) -> dict:
    train_split, test_split = SPLITS[dataset]
    classes = sorted(p.name for p in (DATASETS / dataset / train_split).iterdir())
    pid, _ = project_with_classes(client, f"{dataset} {mode}", {c: photos(dataset, train_split, c) for c in classes})
    test = [(path.name, path.read_bytes(), c) for c in classes for path in photos(dataset, test_split, c)]
    accuracies, seconds, ran = [], [], set()
    for seed in range(repeats):
        start = time.perf_counter()
        job = wait_job(client, client.post(f"/api/projects/{pid}/train", json={**BODY[mode], "seed": seed}
                                           ).json()["job_id"])
        seconds.append(time.perf_counter() - start)
        assert job["status"] == "succeeded", job
        ran.add(job["metrics"]["mode"])
        right = [client.post(f"/api/projects/{pid}/predict", files={"file": (name, data)}
                             ).json()["predictions"][0]["label"] == c for name, data, c in test]
        accuracies.append(float(np.mean(right)))
    return {"accuracy": float(np.mean(accuracies)), "min": min(accuracies), "max": max(accuracies),
            "runs": accuracies, "n": len(test), "seconds": seconds[0], "warm": float(np.mean(seconds[1:] or seconds)),
            "ran": "+".join(sorted(ran))}


UNEVEN_BEES = 24


def uneven(client: httpx.Client, mode: str, repeats: int) -> dict:
    ants, bees = photos("hymenoptera", "train", "ants"), photos("hymenoptera", "train", "bees")[:UNEVEN_BEES]
    pid, _ = project_with_classes(client, f"uneven {mode}", {"ants": ants, "bees": bees})
    test = [(path.name, path.read_bytes(), c) for c in ("ants", "bees") for path in photos("hymenoptera", "val", c)]
    out = {"ants": len(ants), "bees": len(bees), "n": len(test)}
    for weighted in (False, True):
        runs = []
        for seed in range(repeats):
            job = wait_job(client, client.post(f"/api/projects/{pid}/train", json={
                **BODY[mode], "seed": seed, "class_weights": weighted}).json()["job_id"])
            assert job["status"] == "succeeded", job
            answers = [(client.post(f"/api/projects/{pid}/predict", files={"file": (name, data)}
                                    ).json()["predictions"][0]["label"], c) for name, data, c in test]
            per = {k: float(np.mean([a == c for a, c in answers if c == k])) for k in ("ants", "bees")}
            runs.append({"bees": per["bees"], "ants": per["ants"], "balanced": (per["ants"] + per["bees"]) / 2,
                         "accuracy": float(np.mean([a == c for a, c in answers])),
                         "reported": job["metrics"]["balanced_accuracy"]})
        out["weighted" if weighted else "unweighted"] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modes", default="tm,head,auto,finetune")
    parser.add_argument("--datasets", default="hymenoptera,cifar10-mini")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per row (the first job is the cold one)")
    parser.add_argument("--uneven", default="head", help="mode of the uneven-classes row; empty: skip it")
    args = parser.parse_args()
    rows, skewed = [], None
    with server() as (url, _), httpx.Client(base_url=url, timeout=3600) as client:
        device = client.get("/api/health").json()["device"]
        if args.uneven:
            skewed = uneven(client, args.uneven, args.repeats)
            for key in ("unweighted", "weighted"):
                r = skewed[key]
                print(f"  uneven {key:10s} bees {r['bees']:.3f} ants {r['ants']:.3f} balanced {r['balanced']:.3f} "
                      f"accuracy {r['accuracy']:.3f} (reported by the job: {r['reported']:.3f})", flush=True)
        for dataset in [d for d in args.datasets.split(",") if d]:
            for mode in args.modes.split(","):
                result = run(client, dataset, mode, args.repeats)
                rows.append((dataset, mode, result))
                print(f"  {dataset:13s} {mode:9s} acc {result['accuracy']:.3f} "
                      f"({' '.join(f'{a:.3f}' for a in result['runs'])}; {result['n']} photos) "
                      f"cold {result['seconds']:.0f} s, warm {result['warm']:.1f} s [{result['ran']}]", flush=True)
    print(f"\nmachine: {machine()}; server device: {device}; {args.repeats} seeds per row")
    if skewed:
        print(f"\nUneven classes: hymenoptera, {skewed['ants']} ants against {skewed['bees']} bees, "
              f"{LABEL[args.uneven]}, judged on the {skewed['n']} hymenoptera/val photos")
        print("| training | bees right | ants right | balanced accuracy | plain accuracy |")
        print("|---|---|---|---|---|")
        for key, name in (("unweighted", "unweighted loss (before)"), ("weighted", "class weights (default now)")):
            r = skewed[key]
            print(f"| {name} | {r['bees']:.3f} | {r['ants']:.3f} | {r['balanced']:.3f} | {r['accuracy']:.3f} |")
    print("| dataset | mode | held-out accuracy, mean (range) | cold job | warm retrain |")
    print("|---|---|---|---|---|")
    for dataset, mode, r in rows:
        print(f"| {dataset} ({SPLITS[dataset][0]} -> {SPLITS[dataset][1]}) | {LABEL[mode]} | {r['accuracy']:.3f} "
              f"({r['min']:.3f}-{r['max']:.3f}) | {r['seconds']:.0f} s | {r['warm']:.1f} s |")
    for dataset in dict.fromkeys(d for d, _, _ in rows):
        base = next((r for d, m, r in rows if d == dataset and m == "tm"), None)
        for d, mode, r in rows:
            if d == dataset and base and mode != "tm":
                beats = "beats it in every seed" if r["min"] > base["max"] else (
                    "better on average" if r["accuracy"] > base["accuracy"] else "not better")
                print(f"{dataset}: {mode} vs TM recipe: accuracy {r['accuracy'] - base['accuracy']:+.3f} ({beats}), "
                      f"cold time x{r['seconds'] / base['seconds']:.1f}")


if __name__ == "__main__":
    main()
