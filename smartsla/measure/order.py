"""Whether columns are already in an order: checked in one vectorised pass, so that data the store or a bundle
hands out sorted is not sorted again (and data that is not, is)."""

from __future__ import annotations

import numpy as np


def is_ordered(*keys: np.ndarray) -> bool:
    """Whether the rows are sorted lexicographically by ``keys`` (first key first), ties allowed.

    One vectorised pass: row ``i+1`` is not before row ``i`` when, at the first key where they differ,
    it is larger. Cheap next to a sort (~0.1 s for 8.64 million rows and three keys).
    """
    n = len(keys[0])
    if n < 2:
        return True
    tied = np.ones(n - 1, dtype=bool)       # rows equal on every key so far
    for k in keys:
        a, b = k[:-1], k[1:]
        if (tied & (b < a)).any():
            return False
        tied &= b == a
        if not tied.any():
            return True
    return True
