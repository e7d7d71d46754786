"""Batch extraction of embeddings, with decoding overlapped with inference."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from PIL import Image

from app.ml.preprocess import prepare, to_input
from app.ml.runtime import Embedder

T = TypeVar("T")


def _load_batch(items: Sequence[T], load: Callable[[T], Image.Image], size: int,
                pool: ThreadPoolExecutor) -> np.ndarray:
    return np.stack(list(pool.map(lambda it: prepare(load(it), size), items)))


def iter_embeddings(items: Sequence[T], load: Callable[[T], Image.Image], embedder: Embedder, *,
                    size: int, batch_size: int = 32, decode_threads: int = 2
                    ) -> Iterator[tuple[Sequence[T], np.ndarray]]:
    """Yield (items, features) batch by batch.

    While the runtime works on batch i (ONNX Runtime and PyTorch release the GIL), a thread pool
    already decodes batch i+1 (Pillow releases it too), so neither waits for the other.
    """
    batches = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    if not batches:
        return
    with ThreadPoolExecutor(decode_threads, thread_name_prefix="decode") as pool, \
         ThreadPoolExecutor(1, thread_name_prefix="prefetch") as ahead:
        pending = ahead.submit(_load_batch, batches[0], load, size, pool)
        for i, batch in enumerate(batches):
            pixels = pending.result()
            if i + 1 < len(batches):
                pending = ahead.submit(_load_batch, batches[i + 1], load, size, pool)
            yield batch, embedder(to_input(pixels))
