"""The one declaration of what gets measured: ops x strategies x sizes x direction x dtype x device
x environment setting (oneDNN and the CPU allocator, stratbench/environment.py).

`stratbench run`, the asv suite and the pytest-benchmark suite all build their cases
from `cases()` here; none of them lists a case of its own.
"""

from __future__ import annotations

import dataclasses
import math

import impls
from stratbench.environment import ENV_SETTINGS

KERNEL_DIRECTIONS = ("forward", "backward", "forward_backward")
# train_step: one training step (forward, loss, gradient, Adam update) of the small MLP in
# impls/keras.py that uses the op; its sizes are batch sizes, so elements/s is samples/s.
TRAIN_STEP = "train_step"
DIRECTIONS = KERNEL_DIRECTIONS + (TRAIN_STEP,)
DTYPES = impls.FLOAT_DTYPES
DEVICES = ("CPU", "GPU")
DEFAULT_DTYPES = ("float32",)

# Sizes are each op's (impls/ops/<op>/): element counts of an elementwise op, [rows, cols]
# of an op along an axis (measured along the last).
TRAIN_BATCHES, QUICK_TRAIN_BATCHES = ((256,), (4096,)), ((64,),)

# The strategy every speedup is over (unless --baseline says otherwise): the op's code run eagerly
BASELINE = "native"

# The least traffic each (op, direction) must cause, as (tensors read, tensors written) of
# x's size and dtype: forward reads x and writes y; backward reads x and dy and writes dx
# (a kernel can recompute what it needs from x); forward_backward reads x, dy and writes y, dx.
TRAFFIC = {"forward": (1, 1), "backward": (2, 1), "forward_backward": (2, 2)}
# train_step has none: its time goes to matmuls and the optimizer as well
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


@dataclasses.dataclass(frozen=True, order=True)
class Case:
    op: str
    strategy: str
    direction: str
    dtype: str
    device: str
    shape: tuple[int, ...]
    env: str = "default"  # the environment setting its worker runs under (ENV_SETTINGS)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def mode(self) -> str:
        """How its step runs in production (its strategy's declaration): eager, tf.function or xla."""
        return impls.declaration(self.strategy).mode

    @property
    def bytes_moved(self) -> int | None:
        """The least bytes the step must move; None for train_step (no roofline)."""
        traffic = self.traffic
        return traffic and (traffic[0] + traffic[1]) * traffic[2]

    @property
    def traffic(self) -> tuple[int, int, int] | None:
        """(tensors read, tensors written, bytes of each): what the roofline is measured for."""
        tensors = TRAFFIC.get(self.direction)
        return tensors and (*tensors, self.size * ITEMSIZE[self.dtype])

    @property
    def shape_text(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def series(self) -> str:
        """The case without its size: the sizes of one series share everything else."""
        return "/".join((self.op, self.strategy, self.direction, self.dtype, self.device, self.env))

    @property
    def key(self) -> str:
        """A stable name for the case, used to resume runs and by the benchmark suites."""
        return f"{self.series}/{self.shape_text}"

    @staticmethod
    def series_of(key: str) -> str:
        """The series of a case key (the key without its shape): where a key is taken apart."""
        return key.rsplit("/", 1)[0]

    @classmethod
    def from_row(cls, row) -> "Case":
        """The case of a row of the tidy table (a dict or a pandas row): where keys are read back."""
        env = row.get("env")
        return cls(row["op"], row["strategy"], row["direction"], row["dtype"], row["device"],
                   parse_size(str(row["shape"])), env if isinstance(env, str) and env else "default")


def size_label(shape) -> str:
    """A size as file names carry it: 16000000 -> 16e6, 1000 -> 1e3, 4096x2048 as is."""
    if len(shape) != 1:
        return "x".join(map(str, shape))
    digits = str(shape[0])
    zeros = len(digits) - len(digits.rstrip("0"))
    return f"{digits[:-zeros]}e{zeros}" if zeros >= 3 else digits


def parse_size(text: str) -> tuple[int, ...]:
    """'1e6' -> (1000000,), '4096x2048' -> (4096, 2048); ValueError saying what is wrong."""
    parts = text.strip().lower().split("x")
    shape = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"size {text!r} is not an element count (e.g. 1e6) or a RxC shape (e.g. 4096x2048)") from None
        if not math.isfinite(value) or value != int(value) or value < 1:
            raise ValueError(f"size {text!r}: {part!r} is not a whole number of at least 1 "
                             "(e.g. 1e6, or 4096x2048 for an op along an axis)")
        shape.append(int(value))
    return tuple(shape)


def _pick(kind: str, chosen, valid) -> tuple:
    if chosen is None:
        return tuple(valid)
    bad = [c for c in chosen if c not in valid]
    if bad:
        raise ValueError(f"unknown {kind} {', '.join(map(repr, bad))}; accepted: {', '.join(valid)}")
    return tuple(chosen)


def sizes_for(op: str, quick: bool = False, sizes=None, shapes=None,
              direction: str = "forward") -> tuple[tuple[int, ...], ...]:
    """The shapes `op` is measured at: `sizes` (element counts) for an elementwise op,
    `shapes` (RxC) for one along an axis, else its spec's (quick) sizes."""
    if direction == TRAIN_STEP:
        return QUICK_TRAIN_BATCHES if quick else TRAIN_BATCHES
    spec = impls.spec(op)
    if not spec.takes_axis and sizes:
        return tuple((math.prod(s),) for s in sizes)
    if spec.takes_axis and shapes:
        return tuple(shapes)
    return spec.quick_sizes if quick else spec.sizes


def cases(
    ops=None,
    strategies=None,
    directions=None,
    dtypes=DEFAULT_DTYPES,
    devices=("CPU",),
    quick: bool = False,
    sizes=None,
    shapes=None,
    envs=("default",),
) -> list[Case]:
    """Every case of the matrix that the choices select, grouped by (env, op, strategy)."""
    ops = _pick("op", ops, impls.OPS)
    strategies = _pick("strategy", strategies, impls.STRATEGIES)
    directions = _pick("direction", directions, DIRECTIONS)
    dtypes = _pick("dtype", dtypes, DTYPES)
    devices = _pick("device", devices, DEVICES)
    envs = _pick("environment setting", envs, ENV_SETTINGS)
    for shape in shapes or ():
        if len(shape) != 2:
            raise ValueError(f"shape {'x'.join(map(str, shape))} must be RxC, e.g. 4096x2048")
    return [
        Case(op, strategy, direction, dtype, device, shape, env)
        for env in envs
        for op in ops
        for strategy in impls.strategies_for(op)
        if strategy in strategies
        for device in devices
        for dtype in dtypes
        for direction in directions
        for shape in sizes_for(op, quick, sizes, shapes, direction)
    ]
