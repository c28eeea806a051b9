"""Holding an Impl to its op's reference (impls/ops/<op>/), on values and gradients.

The tolerances and edge-case inputs come from the op's spec; used by `stratbench
verify`, the capability matrix and the tests.  The reference is always evaluated on
the input as the strategy sees it (already rounded to the strategy's dtype), so a tolerance only has to cover
the strategy's own arithmetic.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


def to_tensor(values: np.ndarray, dtype: str) -> tf.Tensor:
    with np.errstate(over="ignore"):  # 1e7 becomes inf in float16, on purpose
        return tf.constant(values, dtype=tf.as_dtype(dtype))


def as_f64(t) -> np.ndarray:
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t).astype(np.float64)


def call(impl, x, axis=-1):
    return impl.spec.call(impl.fn, x, axis)


def value_and_grad(impl, x, dy, axis=-1, in_function=False, jit_compile=False):
    """(y, dx) of impl at x for upstream gradient dy, eagerly or inside a caller's
    tf.function (with jit_compile: one XLA-compiled tf.function)."""

    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = call(impl, x, axis)
        return y, tape.gradient(y, x, output_gradients=dy)

    if jit_compile:
        return tf.function(step, jit_compile=True)(x, dy)
    return (tf.function(step) if in_function else step)(x, dy)


@dataclasses.dataclass
class Check:
    forward_ok: bool
    gradient_ok: bool
    forward_err: float  # largest |got - reference|, NaN where both are NaN ignored
    gradient_err: float
    detail: str = ""
    forward_worst: str = ""  # where a failing direction is furthest out of tolerance: input, reference, got
    gradient_worst: str = ""

    @property
    def ok(self) -> bool:
        return self.forward_ok and self.gradient_ok


def _compare(got, want, tolerance) -> tuple[bool, float, tuple | None]:
    """(within tolerance, largest error, index of the element furthest out of tolerance or None)."""
    rtol, atol = tolerance
    if got.shape != want.shape:
        return False, float("inf"), None
    same_nan = np.isnan(got) == np.isnan(want)
    both = ~np.isnan(want) & ~np.isnan(got)
    with np.errstate(invalid="ignore", over="ignore"):  # equal infinities match; inf against -inf is inf
        error = np.where(got == want, 0.0, np.abs(got - want))
        error = np.where(both & np.isnan(error), np.inf, error)
        excess = error - (atol + rtol * np.abs(np.where(np.isinf(want), 0.0, want)))
    diff = error[both]
    err = float(diff.max()) if diff.size else 0.0
    ok = bool(same_nan.all()) and bool(np.all(excess[both] <= 0))
    if ok:
        return ok, err, None
    excess = np.where(~same_nan, np.inf, np.where(both, excess, -np.inf))  # a NaN on one side only is worst
    return ok, err, np.unravel_index(int(np.argmax(excess)), excess.shape)


def _where(index, x, got, want, dy=None) -> str:
    """'x=20 (element 7): reference 20, got inf': one element a user can try by hand."""
    at = f" (element {index[0] if len(index) == 1 else tuple(int(i) for i in index)})" if x.size > 1 else ""
    upstream = f", dy={dy[index]:.6g}" if dy is not None else ""
    return f"x={x[index]:.6g}{upstream}{at}: reference {want[index]:.6g}, got {got[index]:.6g}"


def check(impl, values: np.ndarray, dtype: str, axis: int = -1, in_function=False, seed=1, jit_compile=False) -> Check:
    """Compare impl's values and gradient at `values` (cast to dtype) with the reference."""
    x = to_tensor(values, dtype)
    dy = to_tensor(np.random.default_rng(seed).normal(size=values.shape), dtype)
    x64, dy64 = as_f64(x), as_f64(dy)
    want_y, want_dx = impl.spec.expected(x64, dy64, axis)
    tolerance = impl.spec.tolerances[dtype]

    y, dx = value_and_grad(impl, x, dy, axis, in_function, jit_compile)
    problems = []
    for name, t in (("value", y), ("gradient", dx)):
        if t is None:
            problems.append(f"{name} is None")
        elif t.dtype != x.dtype:
            problems.append(f"{name} dtype {t.dtype.name}, expected {x.dtype.name}")
        elif t.shape != x.shape:
            problems.append(f"{name} shape {t.shape}, expected {x.shape}")
    got_y = as_f64(y) if y is not None else None
    got_dx = as_f64(dx) if dx is not None else None
    fwd_ok, fwd_err, fwd_at = _compare(got_y, want_y, tolerance) if y is not None else (False, float("nan"), None)
    grad_ok, grad_err, grad_at = _compare(got_dx, want_dx, tolerance) if dx is not None else (False, float("nan"), None)
    fwd_ok = fwd_ok and not any(p.startswith("value") for p in problems)
    grad_ok = grad_ok and not any(p.startswith("gradient") for p in problems)
    return Check(fwd_ok, grad_ok, fwd_err, grad_err, "; ".join(problems),
                 forward_worst=_where(fwd_at, x64, got_y, want_y) if fwd_at is not None else "",
                 gradient_worst=_where(grad_at, x64, got_dx, want_dx, dy64) if grad_at is not None else "")
