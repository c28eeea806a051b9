"""Binds the shared case matrix (stratbench/matrix.py) to asv's conventions, at a cost that
fits asv's use: asv starts a process for every number it records (every parameter set of
every benchmark), and each process that times TensorFlow pays a ~3 s import.  So:

- `measure_matrix` (asv's setup_cache, shared by every class here) measures every case
  of the matrix with stratbench's harness in ONE process per commit and environment;
- `<Op>Tracked` records from it, without importing TensorFlow: seconds per call at every
  size, and memory and compile time at the op's largest size;
- `<Op>Time` times with asv's own timer only what a regression shows in most: each
  strategy's forward_backward step at the op's largest size (the kernels' work, both
  directions).  The per-call cost is the harness's figure at the smallest size.

README, "Benchmarking across commits", gives what each part costs, measured.  asv runs
this suite against every commit it measures, so nothing here may assume that commit has
a given strategy, op or harness function: what is missing raises NotImplementedError in
setup, which asv records as a skip.  Modules import no TensorFlow at import time.
STRATBENCH_QUICK=1 selects the matrix's quick sizes.
"""

import importlib
import inspect
import os
import pathlib
import sys
import time

try:
    from stratbench import matrix
except ImportError:  # a commit before the shared matrix: every case skips
    matrix = None

QUICK = os.environ.get("STRATBENCH_QUICK") == "1"
NAMES = ["strategy", "size", "direction"]
# The harness's settings in setup_cache, so that the whole matrix takes a few minutes here:
# short samples, and a case budget that skips, as too slow, a case that would take more
# than 10 s (pyfunc_seed at 16M elements: 3-5 s a call).  Paired rounds (where the commit's
# harness has them) stop after 15 rounds or 2 s a group.
HARNESS_SETTINGS = {"target_sample_s": 0.02, "case_budget_s": 10.0}
HARNESS_ROUNDS = {"min_rounds": 6, "max_rounds": 15, "group_budget_s": 2.0}
_prepared = {}  # (op, strategy, size, direction) -> a synchronised call, built once per process


# asv finds a benchmark by name in every commit it measures, so every commit must define
# the same classes: the ops of this checkout's impls/ops/ too, where a commit lacks one
# (gelu before 3f4719b), each of their benchmarks skipping with that reason.
CHECKOUT_OPS = sorted(init.parent.name
                      for init in (pathlib.Path(__file__).resolve().parents[1] / "impls" / "ops").glob("*/__init__.py"))
# An absent op's parameters: asv decodes a parameter index by the params it discovered
# at another commit, so any index up to this many must decode, each to a skip.
ABSENT_PARAMS = [[f"absent {i}" for i in range(1000)], ["-"], ["-"]]


# asv discovers benchmarks (`benchmark.py discover`) at one commit, the newest it measures:
# an op that commit lacks is left out there, not given ABSENT_PARAMS' 1000 parameter sets.
DISCOVERING = sys.argv[1:2] == ["discover"]


def suite_ops():
    """The ops to define asv classes for: this commit's, then this checkout's that it lacks
    (not while asv discovers)."""
    present = op_names()
    return present + [op for op in CHECKOUT_OPS if op not in present and not DISCOVERING]


def op_names():
    """The registered ops at this commit (none before the shared matrix)."""
    if matrix is None:
        return []
    try:
        import impls

        return list(impls.OPS)
    except Exception as e:  # an op module that fails to import: asv shows it, the suite stays
        print(f"stratbench asv suite: no ops: {e}")
        return []


def class_prefix(op):
    """The asv class name prefix of an op's suites: softmax_nosg -> SoftmaxNosg."""
    return "".join(part.title() for part in op.split("_"))


def matrix_cases(op):
    """`op`'s cases of the shared matrix on the CPU in float32, sizes ascending in each series."""
    if matrix is None:
        return []
    # The kernel directions only: train_step's sizes are batch sizes, which asv's product of
    # parameters would cross with every kernel size.
    directions = getattr(matrix, "KERNEL_DIRECTIONS", matrix.DIRECTIONS)
    return [c for c in matrix.cases(ops=[op], directions=directions, quick=QUICK)
            if c.device == "CPU" and c.dtype == "float32"]


def params_for(op):
    """asv params of `op`, [strategies, sizes, directions]: "all" the whole matrix, "largest"
    its largest size, "forward_backward" that direction at the largest size."""
    if op not in op_names():
        return dict.fromkeys(("all", "largest", "forward_backward"), ABSENT_PARAMS)
    cases = matrix_cases(op)
    unique = lambda values: list(dict.fromkeys(values))  # noqa: E731
    strategies, directions = unique(c.strategy for c in cases), unique(c.direction for c in cases)
    by_size = [c.shape_text for c in sorted(cases, key=lambda c: c.size)]
    return {
        "all": [strategies, unique(by_size), directions],
        "largest": [strategies, by_size[-1:], directions],
        "forward_backward": [strategies, by_size[-1:], [d for d in directions if d == "forward_backward"]],
    }


def case_for(op, strategy, shape_text, direction):
    if matrix is None:
        raise NotImplementedError("this commit has no stratbench.matrix")
    return matrix.Case(op, strategy, direction, "float32", "CPU", matrix.parse_size(shape_text))


def harness():
    """stratbench.timing, or a skip at a commit whose harness lacks what the suite calls."""
    try:
        from stratbench import timing

        for name in ("make_inputs", "step_function", "sync", "Settings"):
            getattr(timing, name)
        if not hasattr(timing, "run_case") and not hasattr(timing, "measure_group"):
            getattr(timing, "measure_group")
    except (ImportError, AttributeError) as e:
        raise NotImplementedError(f"this commit's harness lacks {e}") from None
    return timing


def impl_for(case):
    return resolve(case.op, case.strategy)


def resolve(op, strategy):
    """The Impl of (op, strategy), or NotImplementedError (asv's skip) saying why there is none."""
    import impls

    try:
        impl = impls.get(op, strategy)
    except ValueError as e:  # strategy or op absent at this commit
        raise NotImplementedError(str(e)) from None
    if not impl.available:
        raise NotImplementedError(impl.reason)
    return impl


def measure_matrix():
    """Every op's cases, measured by the harness in this one process: case key -> its
    figures, or why it was not measured (unavailable, too slow, failing) as a string.
    Where the commit's harness has comparison groups (timing.measure_group), the strategies
    of a case are sampled in shuffled rounds; where it has stratbench/roofline.py, each case
    also gets its fraction of the memory roofline of its traffic."""
    timing = harness()
    try:  # as a worker does: no case's tensors add to the process's memory
        from stratbench.memory import pregrow_tf_pool
    except ImportError:  # an older commit: timing's, where it had one
        pregrow_tf_pool = getattr(timing, "pregrow_tf_pool", lambda: None)
    pregrow_tf_pool()
    try:
        from stratbench.limits import projected_too_slow
    except ImportError:  # an older commit: run's, or a too-slow case is found by calling it
        run = importlib.import_module("stratbench.run")
        projected_too_slow = getattr(run, "projected_too_slow", lambda case, rows, settings: "")
    settings = harness_settings(timing)
    figures, measured = {}, []
    started = time.perf_counter()
    groups = {}
    for case in (c for op in op_names() for c in matrix_cases(op)):
        groups.setdefault((case.op, case.direction, case.shape), []).append(case)
    for group in groups.values():
        cases = []
        for case in group:
            try:
                # pyfunc_seed at 16M takes seconds a call: judged from its 1M case, as stratbench run does
                why = projected_too_slow(case, measured, settings)
                if why:
                    raise NotImplementedError(f"too slow: {why}")
                impl_for(case)
                cases.append(case)
            except NotImplementedError as e:  # unavailable, absent at this commit, too slow (projected)
                figures[case.key] = str(e)  # each of its benchmarks skips with this reason
        for case, result in _measure(timing, cases, settings):
            if isinstance(result, dict):
                measured.append({"key": case.key, "status": "ok", "size": case.size, "shape": case.shape_text,
                                 "median_s": result["median_s"]})
            figures[case.key] = result
    print(f"stratbench: measured {len(measured)} of {len(figures)} cases in {time.perf_counter() - started:.0f} s")
    return figures


def harness_settings(timing):
    """The commit's timing.Settings with HARNESS_SETTINGS, and HARNESS_ROUNDS where it has rounds."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(timing.Settings)}
    settings = {k: v for k, v in HARNESS_SETTINGS.items() if k in fields}
    if "rounds" in fields:
        from stratbench.measurement import Rounds

        settings["rounds"] = Rounds(**HARNESS_ROUNDS)
    return timing.Settings(**settings)


def _measure(timing, cases, settings):
    """(case, figures or why not) for the cases of one comparison group."""
    if not cases:
        return
    if not hasattr(timing, "measure_group"):  # a commit before paired rounds: one case at a time
        for case in cases:
            try:
                yield case, timing.run_case(impl_for(case), case, settings)
            except Exception as e:  # too slow (measured: TooSlow), or failing
                yield case, f"{type(e).__name__}: {e}"
        return
    # the roofline timed in the group's rounds where the commit can (a paired fraction); else
    # the tool's best time, measured once for the group
    paired = "with_roofline" in inspect.signature(timing.measure_group).parameters
    measurement, info = timing.measure_group(cases, resolve, settings, **({"with_roofline": True} if paired else {}))
    roof = None if paired else _roofline(cases[0])
    from stratbench import matrix

    baseline_strategy = getattr(matrix, "BASELINE", None)  # None at a commit before it: no speedup tracked
    baseline = next((c.key for c in cases if c.strategy == baseline_strategy and info[c.key][0] == "ok"), None)
    for case in cases:
        outcome, result = info[case.key]
        if outcome != "ok":
            yield case, f"{outcome}: {result}"
            continue
        summary = measurement.summary(case.key)
        if paired:
            fraction = (measurement.ratio(timing.ROOFLINE_KEY, case.key).value
                        if measurement.rounds(timing.ROOFLINE_KEY) else float("nan"))
        else:
            fraction = roof / summary["median_s"] if roof else float("nan")
        # the paired speedup over the baseline: both sampled in the same rounds, so the
        # machine's drift between asv runs (and commits) cancels in it
        speedup = measurement.ratio(baseline, case.key).value if baseline else float("nan")
        yield case, result | summary | {"roofline_fraction": fraction, "speedup_over_baseline": speedup}


def _roofline(case) -> float | None:
    """The roofline seconds of the case's traffic, where the commit has the tool (else None)."""
    try:
        from stratbench import roofline
    except ImportError:
        return None
    try:
        traffic = getattr(case, "traffic", None)
        return roofline.Roofline(roofline.measure([traffic])).seconds(traffic) if traffic else None
    except roofline.Unmeasured:
        return None


measure_matrix.timeout = 3600


def figures_of(figures, op, strategy, size, direction):
    """The harness's figures of one case, or a skip that says why it has none."""
    if op not in op_names():
        raise NotImplementedError(f"{op} is not an op at this commit")
    found = figures.get(case_for(op, strategy, size, direction).key)
    if not isinstance(found, dict):
        raise NotImplementedError(found or "not measured by the harness at this commit")
    return found


# asv's track_<name> benchmarks: (name, the harness's figure, its unit, which cases: "all" or "largest")
TRACKED = (
    ("seconds_per_call", "median_s", "seconds", "all"),
    # paired in the harness's rounds: drift cancels (README: what asv resolves, with and without)
    ("speedup_over_native", "speedup_over_baseline", "x (paired)", "all"),
    ("peak_tf_bytes", "peak_tf_bytes", "bytes", "largest"),
    ("peak_rss_bytes", "peak_rss_bytes", "bytes", "largest"),
    ("own_rss_bytes", "own_rss_bytes", "bytes", "largest"),  # the process's resident peak above the case's start
    ("kept_for_backward_bytes", "kept_for_backward_bytes", "bytes", "largest"),  # forward_backward only
    ("compile_s", "compile_s", "seconds", "largest"),
    ("roofline_fraction", "roofline_fraction", "fraction of the memory roofline", "all"),
)


def _tracker(name, figure, unit, params):
    def track(self, figures, strategy, size, direction):
        # NaN is asv's "not measured", never a failure: a commit before the figure, or TF's
        # allocator without statistics (oneDNN off, plain allocator) for peak_tf_bytes
        value = self.figures.get(figure)
        return float("nan") if value is None else value

    track.__name__, track.unit, track.params = f"track_{name}", unit, params
    return track


def make_suites(op):
    """(<Op>Time, <Op>Tracked) asv classes for `op`; asv names benchmarks by class name."""
    params = params_for(op)

    class Timing:
        """asv's own timer: synchronised seconds per call, of a case built and warmed in setup."""

        param_names = NAMES
        setup_cache = staticmethod(measure_matrix)  # one key for every class: asv keys it by source line
        timeout = 600
        warmup_time = 0.1
        sample_time = 0.1
        # One round (asv's default is two): each round is one more process per parameter set,
        # with its TensorFlow import.  `asv run -a rounds=2` restores the default.
        rounds = 1

        def setup(self, figures, strategy, size, direction):
            # Skips what the harness could not measure (unavailable, too slow) before TF is imported.
            figures_of(figures, op, strategy, size, direction)
            # asv_runner (0.3) re-runs setup before every sample and times one call per
            # sample, so each sample would time the first call after a new trace (2x slower
            # than a warm call below 1 ms, measured).  The case is built and warmed once per
            # process; every sample then times a warm call, as stratbench run's samples do.
            key = (op, strategy, size, direction)
            if key not in _prepared:
                case = case_for(op, strategy, size, direction)
                impl = impl_for(case)
                timing = harness()
                if hasattr(timing, "prepare"):  # inputs, step and device scope as stratbench run has them
                    call = timing.prepare(impl, case).run
                else:  # an older harness
                    args, step = timing.make_inputs(case), timing.step_function(impl, case)
                    call = lambda: (step(*args), timing.sync())  # noqa: E731
                for _ in range(2):  # traces and compiles, then one warm call
                    call()
                _prepared[key] = call
            self.call = _prepared[key]

        def time_step(self, figures, strategy, size, direction):
            self.call()  # synchronised

        time_step.params = params["forward_backward"]

    class Tracked:
        """Figures of stratbench's harness, measured once per commit by `measure_matrix`."""

        param_names = NAMES
        setup_cache = staticmethod(measure_matrix)  # one key for every class: asv keys it by source line
        timeout = 600

        def setup(self, figures, strategy, size, direction):
            self.figures = figures_of(figures, op, strategy, size, direction)

    for name, figure, unit, which in TRACKED:
        setattr(Tracked, f"track_{name}", _tracker(name, figure, unit, params[which]))

    for cls, suffix in ((Timing, "Time"), (Tracked, "Tracked")):
        cls.__name__ = cls.__qualname__ = class_prefix(op) + suffix
    return Timing, Tracked
