"""How much more data? Per-class learning curves from training the head on subsets."""

from __future__ import annotations

import numpy as np

from app.ml.evaluate import classification_report
from app.ml.train import HeadConfig, StopFn, head_probabilities, train_heads

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def learning_curves(X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], labels: list[str],
                    cfg: HeadConfig, full: dict, seed: int = 0, should_stop: StopFn | None = None) -> dict:
    """Held-out accuracy per class when each class keeps only a fraction of its training images.

    `splits` are the (train, held-out) rows the model itself was judged on: one validation split,
    or every cross-validation fold, so each point covers the same photos as the model's own report,
    which is `full`, the 100 % point, at no extra cost.
    """
    rng = np.random.default_rng(seed)
    orders = [{k: rng.permutation(tr[y[tr] == k]) for k in range(len(labels))} for tr, _ in splits]
    held = np.concatenate([h for _, h in splits])
    fractions = [f for f in FRACTIONS if f < 1.0]
    subsets = {frac: [np.concatenate([idx[:max(1, round(frac * len(idx)))] for idx in order.values() if len(idx)])
                      for order in orders] for frac in FRACTIONS}
    # Every fraction's head of every split trained together, as one batched computation.
    jobs = [(frac, subset, val_idx) for frac in fractions
            for subset, (_, val_idx) in zip(subsets[frac], splits, strict=True)]
    results = train_heads(X, y, [(subset, val_idx) for _, subset, val_idx in jobs], len(labels), cfg,
                          should_stop=should_stop)
    probs = {frac: np.zeros((len(y), len(labels)), dtype=np.float32) for frac in fractions}
    for (frac, _, val_idx), result in zip(jobs, results, strict=True):
        probs[frac][val_idx] = head_probabilities(result.head, X[val_idx])
    points = []
    for frac in FRACTIONS:
        report = full if frac == 1.0 else classification_report(y[held], probs[frac][held], labels)
        points.append({"fraction": frac, "train_count": int(round(np.mean([len(s) for s in subsets[frac]]))),
                       "accuracy": report["accuracy"],
                       "per_class": {c["label"]: c["accuracy"] for c in report["per_class"]}})
    return {"points": points, "advice": advice(points, labels)}


def advice(points: list[dict], labels: list[str]) -> list[dict]:
    """Plain words per class, most in need of photos first: still rising and not yet right."""
    rows = []
    for label in labels:
        accs = [p["per_class"].get(label) for p in points]
        if any(a is None for a in accs):
            rows.append({"label": label, "gain": 0.0,
                         "text": f"{label}: no validation images yet; add more photos to judge it"})
            continue
        last, half = accs[-1], accs[len(accs) // 2 - 1]
        gain = max(0.0, last - half)  # what the second half of the photos added
        room = 1 - last
        if room < 0.02:
            text = f"{label}: {last:.0%} right; more photos are unlikely to help much"
        elif gain >= 0.05:
            text = (f"{label}: {last:.0%} right and still rising (+{gain:.0%} from the last half of its "
                    f"photos); more photos should help")
        else:
            text = (f"{label}: {last:.0%} right but flat; add different photos (other backgrounds, angles, "
                    f"lighting) rather than more of the same")
        rows.append({"label": label, "gain": round(gain * room, 4), "text": text})
    rows.sort(key=lambda r: -r["gain"])
    return rows
