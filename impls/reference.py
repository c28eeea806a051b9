"""The truth every strategy is held to: each op's float64 NumPy reference and its
vector-Jacobian product, declared in its folder (impls/ops/<op>/reference.py), with
the tolerances it must be met within, per dtype."""

from __future__ import annotations

import numpy as np

import impls


def forward(op: str, x, axis: int = -1) -> np.ndarray:
    s = impls.spec(op)
    return np.asarray(s.call(s.code("reference"), np.asarray(x, np.float64), axis), np.float64)


def vjp(op: str, x, dy, axis: int = -1) -> np.ndarray:
    return impls.spec(op).expected(x, dy, axis)[1]


def tolerances(op: str, dtype: str) -> tuple[float, float]:
    """(rtol, atol): |got - ref| <= atol + rtol * |ref|, ref from the input as rounded to dtype."""
    return impls.spec(op).tolerances[dtype]
