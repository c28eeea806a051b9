"""OpSpec: everything about one op, declared in one place (impls/ops/<name>/, or a user's module).

Every strategy turns an OpSpec into an implementation, and the measuring side reads
sizes, inputs and tolerances from it: no code outside an op's folder names the op.
A user gives what they have; each strategy is offered when its field is present:

    reference, reference_grad, native  -> native, graph, xla (always)
    numpy, numpy_grad                  -> pyfunc, and pyfunc_seed (the seed's py_func recipe)
    scalar, scalar_grad                -> pyfunc_seed through np.vectorize, as in the seed
    builtin                            -> builtin (what TensorFlow ships)
    custom_op                          -> custom_op (a kernel compiled from the op's kernels/ folder)

A code field holds a function, or a "module:attr" string imported on first use (the
built-in ops use strings so that listing ops and cases never imports TensorFlow).
Elementwise ops are called f(x); ops along an axis are called f(x, axis).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import pathlib
from typing import Callable, Union

import numpy as np

Code = Union[Callable, str, None]
KINDS = ("elementwise", "axis")
MLP_POSITIONS = ("hidden", "output")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# |got - ref| <= atol + rtol * |ref|, ref computed from the input as rounded to that dtype.
DEFAULT_TOLERANCES = {  # dtype: (rtol, atol)
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 1e-6),
    "float16": (5e-3, 2e-3),
    "bfloat16": (4e-2, 1.6e-2),
}
DEFAULT_SIZES = {
    "elementwise": ((1_000,), (10_000,), (100_000,), (1_000_000,), (16_000_000,)),
    "axis": ((128, 128), (1024, 1024), (4096, 2048)),  # [rows, cols], along the last axis
}
DEFAULT_QUICK_SIZES = {"elementwise": ((1_000,), (100_000,)), "axis": ((64, 128),)}
# Big enough that a call outweighs Python's overhead, small enough for a py_func (capabilities).
DEFAULT_PROBE_SHAPE = {"elementwise": (200_000,), "axis": (256, 1024)}


def load_code(code: Code) -> Callable | None:
    """The function a code field names ("module:attr" is imported now)."""
    if code is None or callable(code):
        return code
    module, _, attr = code.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass(frozen=True)
class OpSpec:
    name: str  # lower_snake_case; also the Keras layer's and the asv suite's name
    summary: str  # one line: what it computes
    reference: Code  # float64 NumPy forward, the truth: reference(x[, axis]) -> y
    reference_grad: Code  # its vector-Jacobian product: reference_grad(x, dy[, axis]) -> dx
    native: Code  # TensorFlow ops, differentiable (tf.custom_gradient if you have a better gradient)
    kind: str = "elementwise"  # or "axis": computed along one axis (default the last)
    numpy: Code = None  # vectorised NumPy forward in the array's own precision: numpy(x[, axis]) -> y
    numpy_grad: Code = None  # numpy_grad(x, dy[, axis]) -> dx; numpy_grad(x, y, dy[, axis]) with grad_from_output
    # True when numpy_grad takes the forward's output y too (softmax: cheapest from y).  False
    # keeps a backward-only step free of the forward: TF prunes a forward no one reads.
    grad_from_output: bool = False
    scalar: Code = None  # the seed's form: a Python function of one number (elementwise only)
    scalar_grad: Code = None  # its derivative, of one number
    builtin: Code = None  # what TensorFlow ships for it, same call as native
    custom_op: str | None = None  # name of the compiled op (CamelCase in C++), its gradient <name>_grad
    tolerances: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_TOLERANCES), compare=False)
    input_scale: float = 3.0  # benchmark inputs are normal(0, input_scale)
    check_values: Code = None  # () -> float64 array of edge cases for verify (default: a generic mix)
    smooth_values: Code = None  # () -> float64 points where it is differentiable (finite-difference test)
    sizes: tuple = None  # measured shapes: element counts (n,) or [rows, cols]
    quick_sizes: tuple = None
    probe_shape: tuple = None  # the capability matrix's thread checks
    mlp_position: str = "hidden"  # where the benchmark MLP uses it: "hidden" activations or the "output"
    module: str = ""  # set by the registry: where it was declared

    def __post_init__(self):
        where = f"op spec {self.name!r}" + (f" in {self.module}" if self.module else "")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"{where}: name must be a lower_snake_case identifier")
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.mlp_position not in MLP_POSITIONS:
            raise ValueError(f"{where}: mlp_position {self.mlp_position!r} is not one of {', '.join(MLP_POSITIONS)}")
        for field in ("reference", "reference_grad", "native"):
            if getattr(self, field) is None:
                raise ValueError(f"{where}: {field} is required (with reference, reference_grad and native "
                                 "an op runs under native, graph and xla)")
        for a, b in (("numpy", "numpy_grad"), ("scalar", "scalar_grad")):
            if (getattr(self, a) is None) != (getattr(self, b) is None):
                raise ValueError(f"{where}: give {a} and {b} together, or neither")
        if self.scalar is not None and self.kind != "elementwise":
            raise ValueError(f"{where}: scalar forms are for elementwise ops; an axis op gives numpy and numpy_grad")
        missing = set(FLOAT_DTYPES) - set(self.tolerances)
        if missing:
            raise ValueError(f"{where}: tolerances lack {', '.join(sorted(missing))}")
        object.__setattr__(self, "sizes", tuple(map(tuple, self.sizes or DEFAULT_SIZES[self.kind])))
        object.__setattr__(self, "quick_sizes", tuple(map(tuple, self.quick_sizes or DEFAULT_QUICK_SIZES[self.kind])))
        object.__setattr__(self, "probe_shape", tuple(self.probe_shape or DEFAULT_PROBE_SHAPE[self.kind]))
        rank = 1 if self.kind == "elementwise" else 2
        for shape in self.sizes + self.quick_sizes:
            if len(shape) != rank or math.prod(shape) < 1:
                raise ValueError(f"{where}: size {shape} is not a {'(n,)' if rank == 1 else '(rows, cols)'} shape")

    @property
    def takes_axis(self) -> bool:
        return self.kind == "axis"

    def code(self, field: str) -> Callable | None:
        return load_code(getattr(self, field))

    def call(self, fn: Callable, x, axis: int = -1):
        """fn(x), or fn(x, axis) for an op along an axis."""
        return fn(x, axis) if self.takes_axis else fn(x)

    def expected(self, x, dy, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """The reference's (y, dx) at float64 x for upstream gradient dy."""
        x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
        args = (axis,) if self.takes_axis else ()
        return (np.asarray(self.code("reference")(x, *args), np.float64),
                np.asarray(self.code("reference_grad")(x, dy, *args), np.float64))

    def verify_values(self) -> np.ndarray:
        """float64 inputs the correctness gate checks: the op's own edge cases, or a generic mix."""
        if self.check_values is not None:
            return np.asarray(self.code("check_values")(), np.float64)
        rng = np.random.default_rng(0)
        if self.kind == "axis":
            rows = [rng.normal(size=96), rng.normal(scale=self.input_scale * 10, size=96), np.zeros(96)]
            return np.stack(rows)
        edges = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-6, -1e-6, 4.0, -4.0, 10.0, -10.0])
        return np.concatenate([edges, rng.normal(scale=self.input_scale, size=256)])

    def differentiable_values(self) -> np.ndarray:
        """float64 inputs away from any kink or jump, for finite-difference checks of the gradient."""
        if self.smooth_values is not None:
            return np.asarray(self.code("smooth_values")(), np.float64)
        return np.random.default_rng(5).normal(size=(3, 4) if self.takes_axis else (8,))

    @functools.cached_property  # read on every eager call of a compiled op: found once
    def folder(self) -> pathlib.Path | None:
        """The op's folder, where its kernels/ live (None for a spec without a package)."""
        if not self.module:  # declared in code, e.g. the call floor's
            return None
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            return None
        path = getattr(module, "__file__", None)
        return pathlib.Path(path).parent if path else None
