"""Batch extraction of embeddings, with decoding overlapped with inference."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from app.ml.runtime import Embedder

T = TypeVar("T")


def _load_batch(items: Sequence[T], pixels: Callable[[T], np.ndarray], pool: ThreadPoolExecutor) -> np.ndarray:
    return np.stack(list(pool.map(pixels, items)))


def iter_embeddings(items: Sequence[T], pixels: Callable[[T], np.ndarray], embedder: Embedder, *,
                    batch_size: int = 32, decode_threads: int = 2) -> Iterator[tuple[Sequence[T], np.ndarray]]:
    """Yield (items, features) batch by batch; `pixels` turns an item into uint8 (S, S, 3).

    While the runtime works on batch i (ONNX Runtime and PyTorch release the GIL), a thread pool
    already decodes batch i+1 (Pillow releases it too), so neither waits for the other.
    """
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if not batches:
        return
    with ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") as pool, \
         ThreadPoolExecutor(1, thread_name_prefix="prefetch") as ahead:
        pending = ahead.submit(_load_batch, batches[0], pixels, pool)
        for i, batch in enumerate(batches):
            ready = pending.result()
            if i + 1 < len(batches):
                pending = ahead.submit(_load_batch, batches[i + 1], pixels, pool)
            yield batch, embedder(ready)
