"""How attention and activations travel to the browser: small binary buffers, not JSON.

* **Attention weights** lie in [0, 1] and most are tiny (1/T on average). A linear uint8
  code would round every weight under 0.002 to zero, so we store the square root:
  ``byte = round(255 * sqrt(a))`` and ``a = (byte / 255) ** 2``. One byte per weight,
  relative detail where the weights are small, error under 0.004 where they are large.
* **Queries and keys** are signed and unbounded, so they go as float16.
* **Thumbnails** for the model view are each head's T×T pattern max-pooled to S×S, so a
  12 × 12 grid costs 144 × S × S bytes whatever T is.

The JavaScript side (``js/attention.js``) decodes with the same formulas.
"""

from __future__ import annotations

import numpy as np

#: Name of the attention code, sent with every buffer so the browser knows how to read it.
ATTENTION_ENCODING = "sqrt-uint8"


def to_numpy(x, dtype=np.float32) -> np.ndarray:
    """An array from a numpy array, a torch tensor (without importing torch) or nested lists."""
    if hasattr(x, "detach"):  # a torch tensor: move it off the graph and the device first
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def quantise(attention: np.ndarray) -> bytes:
    """Weights in [0, 1] -> one byte each, ``round(255 * sqrt(a))``, C order."""
    a = np.clip(np.asarray(attention, dtype=np.float32), 0.0, 1.0)
    return np.rint(np.sqrt(a) * 255.0).astype(np.uint8).tobytes()


def dequantise(data: bytes | memoryview, shape) -> np.ndarray:
    """The inverse of ``quantise``: bytes -> float32 weights of ``shape``."""
    b = np.frombuffer(bytes(data), dtype=np.uint8).reshape(shape)
    return (b.astype(np.float32) / 255.0) ** 2


def float16(x: np.ndarray) -> bytes:
    """Signed activations (q, k) as little-endian float16 bytes, C order."""
    return np.ascontiguousarray(x, dtype="<f2").tobytes()


def from_float16(data: bytes | memoryview, shape) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f2").reshape(shape).astype(np.float32)


def thumbnail_size(n_tokens: int, largest: int = 48) -> int:
    """Side of a model-view thumbnail: the token count, capped at ``largest``."""
    return max(1, min(n_tokens, largest))


def pool_max(pattern: np.ndarray, size: int) -> np.ndarray:
    """Max-pool the last two axes (T, T) of ``pattern`` to (size, size).

    Bins are as even as integer edges allow; max keeps a sharp diagonal or a single strong
    column visible where a mean would fade it to 1/bin.
    """
    t = pattern.shape[-1]
    if size >= t:
        return pattern
    edges = np.linspace(0, t, size + 1).round().astype(int)
    # reduceat takes the max over each [edge_i, edge_i+1) slice, first rows then columns.
    rows = np.maximum.reduceat(pattern, edges[:-1], axis=-2)
    return np.maximum.reduceat(rows, edges[:-1], axis=-1)
