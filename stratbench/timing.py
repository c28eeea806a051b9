"""Setting cases up and timing them in this process: the step ready to time under its device
scope (`prepare`; its inputs and step: stratbench/steps.py), warm-up with TF allocator and RSS
peaks (stratbench/memory.py), each strategy's call floor (the same step around an op that does
nothing), and a comparison group (`Group`) whose entries stratbench/measurement.py samples in
rounds.

Used by `stratbench run` and `stratbench compare` (inside worker processes), the asv and
pytest-benchmark suites, the capability checks and benchmarks/research.
"""

from __future__ import annotations

import dataclasses
import math
import time
import types

import tensorflow as tf

import impls
from stratbench import metrics, roofline, stats, status
from stratbench.matrix import TRAIN_STEP
from impls.spec import OpSpec
from stratbench.measurement import Measurement, Rounds, sample_rounds
from stratbench.memory import kept_for_backward, measure_memory
from stratbench.steps import make_inputs, step_function, sync


@dataclasses.dataclass
class Settings:
    """How long a sample lasts, how a group's rounds go (measurement.Rounds) and the too-slow budget."""

    target_sample_s: float = 0.02  # calls per sample are chosen so a sample lasts about this long
    rounds: Rounds = dataclasses.field(default_factory=Rounds)
    case_budget_s: float = 30.0  # a case whose warm-up and min_rounds samples cannot fit in this is too_slow
    input_sets: int = 2  # inputs allocated this many times, used in turn by the rounds (buffer placement varies)
    warm_call_below: int = 4  # a sample of fewer calls, each under target_sample_s, starts with an untimed one (Group.sample)

    @property
    def min_rounds(self) -> int:
        return self.rounds.min_rounds

    def as_data(self) -> dict:
        """What a stored figure was measured with, as data (each row keeps it, `measuring_settings`):
        a case measured otherwise is measured again, whatever `describe` says."""
        return dataclasses.asdict(self) | {"estimator": stats.RATIO_ESTIMATOR}

    def describe(self) -> str:
        """The measuring settings in words, as each row shows them (`measured_with`)."""
        r = self.rounds
        return (f"paired rounds of {self.target_sample_s:g} s samples, {r.min_rounds}-{r.max_rounds} rounds to "
                f"±{r.precision:.0%} or {r.group_budget_s:g} s, {self.input_sets} input sets, a warm call before samples "
                f"under {self.warm_call_below} calls, budget {self.case_budget_s:g} s, "
                f"{stats.RATIO_ESTIMATOR}")


class TooSlow(Exception):
    """One call takes so long that the samples would not fit in the case budget."""


class Prepared:
    """A step ready to time: the step in its production mode, its inputs (allocated
    `input_sets` times and used in turn, so a figure does not rest on one buffer placement)
    and its device, whose scope every call runs in."""

    def __init__(self, step, inputs: list, device: str):
        self.step, self.inputs, self.device = step, inputs, device

    def run(self, calls: int = 1, input_set: int = 0) -> float:
        """Seconds per call of `calls` synchronised calls on input set `input_set` (mod the sets)."""
        args = self.inputs[input_set % len(self.inputs)]
        with tf.device(f"/{self.device}:0"):
            sync()
            start = time.perf_counter()
            for _ in range(calls):
                self.step(*args)
            sync()
        return (time.perf_counter() - start) / calls


def prepare(impl, case, input_sets: int = 1, inputs: list | None = None) -> Prepared:
    """The one way to set a case up for timing, used by `stratbench run`, asv,
    pytest-benchmark, the capability checks and the scripts."""
    inputs = inputs or [make_inputs(case, seed=k) for k in range(input_sets)]
    return Prepared(step_function(impl, case), inputs, case.device)


def warm_up(prepared: Prepared, settings: Settings, memory_device: str | None = None) -> dict:
    """The first call (tracing, compiling) on its own, then warm-up calls for about one
    sample, which give the calls per sample and, with a device, the memory peaks
    (measure_memory).  Raises TooSlow when warm-up and min_rounds samples cannot fit in
    the case budget, or when the first call alone took longer than the whole budget (a
    second call to learn the steady time would cost as much again: py_func at 16M elements
    in `stratbench compare`, 11-31 s a call in each of its four workers)."""
    first_call_s = prepared.run(1)
    if first_call_s > settings.case_budget_s:
        raise TooSlow(f"the first call took {first_call_s:.2f} s (tracing and compiling included), more than the "
                      f"{settings.case_budget_s:g} s case budget (raise --case-budget to measure it)")
    with measure_memory(memory_device) as memory:
        calls, start, fastest_s = 0, time.perf_counter(), math.inf
        while calls < 1 or time.perf_counter() - start < settings.target_sample_s:
            fastest_s = min(fastest_s, prepared.run(1, calls))
            calls += 1
            per_call = (time.perf_counter() - start) / calls
            if metrics.over_budget(per_call, calls, settings.min_rounds, settings.case_budget_s):
                raise TooSlow(
                    f"one call takes {per_call:.2f} s after the first; warm-up and {settings.min_rounds} rounds "
                    f"would exceed the {settings.case_budget_s:g} s case budget (raise --case-budget to measure it)"
                )
    per_call = (time.perf_counter() - start) / calls
    # Calls per sample from the fastest call: the first calls after a setup run slow (a
    # 16M-element op's 11, 8.6, then 7.3 ms, settling at 6.3), and samples of one call
    # each (as the average gave) carry a cold first call whole: 10-90% above the median.
    return memory | {"calls": max(1, round(settings.target_sample_s / fastest_s)), "call_s": fastest_s,
                     "compile_s": max(0.0, first_call_s - per_call)}


def _identity(x, *axis):
    return x


def _pass_dy(x, dy, *axis):
    return dy


# An op that does no work (its output is its input, its gradient dy), declared like any op so
# that every strategy turns it into its own calling convention: eager, a tf.function, a jit
# function, a py_func, a compiled op with an empty kernel (impls/kernels/floor.cc), a builtin.
FLOOR_SPEC = OpSpec(name="call_floor", summary="identity: a strategy's call with no work",
                    reference=_identity, reference_grad=_pass_dy, native="tensorflow:identity",
                    numpy=_identity, numpy_grad=_pass_dy, builtin="tensorflow:identity", custom_op="stratbench_floor")
FLOOR_SHAPE = (1,)  # no work to speak of, and no copy for XLA to make of it


@dataclasses.dataclass(frozen=True)
class Floor:
    """The call floor entry of `case`'s strategy in a group: the same step, direction,
    dtype and device around FLOOR_SPEC, on a one-element input."""

    case: object

    @property
    def key(self) -> str:
        return floor_key(self.case.strategy)


def floor_key(strategy: str) -> str:
    return f"floor:{strategy}"


def prepare_floor(case, input_sets: int = 1) -> Prepared:
    """The call floor of case.strategy for case.direction: ValueError when it has none (train_step,
    an unknown strategy), RuntimeError when the strategy cannot make one here."""
    if case.direction == TRAIN_STEP:
        raise ValueError("train_step has no call floor: a training step's fixed costs are the model's")
    declared = impls.declaration(case.strategy)
    if not declared.implements(FLOOR_SPEC):
        raise ValueError(f"{case.strategy} builds from {' or '.join(declared.needs)}, which the call-floor op "
                         "does not declare: no call floor")
    available, why = declared.availability(FLOOR_SPEC)
    if not available:
        raise RuntimeError(f"no call floor for {case.strategy}: {why}")
    impl = types.SimpleNamespace(spec=FLOOR_SPEC, fn=declared.implement(FLOOR_SPEC))
    floor_case = dataclasses.replace(case, shape=FLOOR_SHAPE)
    inputs = [make_inputs(floor_case, seed=k) for k in range(input_sets)]
    return Prepared(step_function(impl, floor_case), inputs, case.device)


ROOFLINE_KEY = "roofline"


@dataclasses.dataclass(frozen=True)
class RooflineEntry:
    """The roofline entry of `case`'s group: the memory roofline of its traffic, timed in
    the group's rounds (roofline.Paired), with its (threads, store) `chosen` by another
    worker, or None to choose."""

    case: object
    chosen: tuple | None = None
    key = ROOFLINE_KEY


class Group:
    """A comparison group set up in this process: its cases prepared one by one (`add`) on
    shared inputs (one set per shape: `stratbench noise` compares sizes), their call
    floors (`add(Floor(case))`) and their roofline (`add(RooflineEntry(case))`); `info` holds,
    per entry, (status, figures of its warm-up) or (status, why it is not sampled)."""

    def __init__(self, first_case, settings: Settings):
        self.settings, self.first, self.entries, self.info = settings, first_case, {}, {}
        self.inputs = {}  # (train_step?, shape, dtype, device) -> input sets, shared by the cases that match
        self._inputs_of(first_case)

    def _inputs_of(self, case) -> list:
        key = (case.direction == TRAIN_STEP, case.shape, case.dtype, case.device)
        if key not in self.inputs:
            self.inputs[key] = [make_inputs(case, seed=k) for k in range(self.settings.input_sets)]
        return self.inputs[key]

    def add(self, case, resolve) -> tuple:
        """Prepares and warms `case` (a Floor: its call floor; a RooflineEntry: its roofline); its
        (status, figures or why)."""
        if isinstance(case, Floor):
            name, device = case.key, None
            make = lambda: prepare_floor(case.case, self.settings.input_sets)  # noqa: E731
        elif isinstance(case, RooflineEntry):
            name, device = case.key, None
            make = lambda: roofline.Paired(case.case.traffic, chosen=case.chosen)  # noqa: E731
        else:
            name, device = case.key, case.device
            make = lambda: prepare(resolve(case.op, case.strategy), case, inputs=self._inputs_of(case))  # noqa: E731
        try:
            prepared = make()
            figures = warm_up(prepared, self.settings, device)
            if isinstance(case, RooflineEntry):
                figures["chosen"] = prepared.chosen
            if device and case.direction == "forward_backward":  # what training holds per op between its passes
                figures["kept_for_backward_bytes"], why = kept_for_backward(resolve(case.op, case.strategy), case,
                                                                            *prepared.inputs[0])
                if why:
                    figures["unmeasured"] = "; ".join(filter(None, [figures.get("unmeasured"),
                                                                    f"kept_for_backward_bytes: {why}"]))
            self.info[name] = (status.OK, figures)
            self.entries[name] = prepared
        except TooSlow as e:
            self.info[name] = (status.TOO_SLOW, str(e))
        except (tf.errors.ResourceExhaustedError, MemoryError) as e:
            self.info[name] = (status.OOM, status.summary(e))
        except Exception as e:
            self.info[name] = (status.ERROR, status.summary(e))
        return self.info[name]

    def calls(self) -> dict:
        """{entry: calls per sample} of the entries that can be sampled."""
        return {name: self.info[name][1]["calls"] for name in self.entries}

    def sample(self, name: str, input_set: int) -> float:
        """Seconds per call of one sample of entry `name`.  A sample of few calls, each shorter
        than a sample, starts with one untimed call: the round's previous entry has evicted
        this one's data from the caches, and the first call after it ran 1.3-1.8x its steady
        time (16M elements on the Intel VM, 480 MB of L3), so a sample of one to three calls
        timed the eviction.  custom_op's fraction of the roofline (whose samples hold 4-14
        passes) moved 1.2-1.3x between runs minutes apart; with the call, 1.01-1.14x.  A
        call longer than a sample (a py_func at 16M: seconds) is mostly work: none."""
        figures = self.info[name][1]
        if figures["calls"] < self.settings.warm_call_below and figures["call_s"] <= self.settings.target_sample_s:
            self.entries[name].run(1, input_set)
        return self.entries[name].run(figures["calls"], input_set)


def measure_group(cases, resolve, settings: Settings, floors: bool = False,
                  with_roofline: bool = False) -> tuple[Measurement, dict]:
    """A group measured in this process, with each strategy's call floor if `floors` and its
    roofline if `with_roofline`: (its Measurement, Group.info)."""
    group = Group(cases[0], settings)
    for case in cases:
        group.add(case, resolve)
    for case in cases if floors else ():
        if case.key in group.entries:
            group.add(Floor(case), resolve)
    if with_roofline and cases[0].traffic:
        group.add(RooflineEntry(cases[0]), resolve)
    measurement = sample_rounds(lambda name, round_, process: group.sample(name, round_), group.calls(), settings.rounds,
                                contenders=[c.key for c in cases if c.key in group.entries])
    return measurement, group.info
