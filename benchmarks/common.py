"""Binds the shared case matrix (stratbench/matrix.py) to asv's conventions.

asv runs this suite against every commit it measures, so nothing here may assume that
commit has a given strategy, op or harness function: what is missing raises
NotImplementedError in setup, which asv records as a skip.  Modules import no
TensorFlow at import time, so the track_* benchmarks, which only read values measured
once in setup_cache, start fast.  STRATBENCH_QUICK=1 selects the matrix's quick sizes.
"""

import os
import time

try:
    from stratbench import matrix
except ImportError:  # a commit before the shared matrix: every case skips
    matrix = None

QUICK = os.environ.get("STRATBENCH_QUICK") == "1"
_prepared = {}  # (op, strategy, size, direction) -> (step, inputs, sync), built once per process


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


def params_for(op):
    """[strategies, sizes, directions] of `op` from the shared matrix (one dtype and device: float32 on CPU)."""
    if matrix is None:
        return [[], [], []]
    # The kernel directions only: train_step's sizes are batch sizes, which asv's product of
    # parameters would cross with every kernel size.
    directions = getattr(matrix, "KERNEL_DIRECTIONS", matrix.DIRECTIONS)
    cases = [c for c in matrix.cases(ops=[op], directions=directions, quick=QUICK)
             if c.device == "CPU" and c.dtype == "float32"]
    unique = lambda values: list(dict.fromkeys(values))  # noqa: E731
    return [unique(c.strategy for c in cases), unique(c.shape_text for c in cases), unique(c.direction for c in cases)]


def case_for(op, strategy, shape_text, direction):
    if matrix is None:
        raise NotImplementedError("this commit has no stratbench.matrix")
    return matrix.Case(op, strategy, direction, "float32", "CPU", matrix.parse_size(shape_text))


def harness():
    """stratbench.timing, or a skip at a commit whose harness lacks what the suite calls."""
    try:
        from stratbench import timing

        for name in ("make_inputs", "step_function", "sync", "run_case", "copy_bandwidth", "Settings"):
            getattr(timing, name)
    except (ImportError, AttributeError) as e:
        raise NotImplementedError(f"this commit's harness lacks {e}") from None
    return timing


def impl_for(case):
    import impls

    try:
        impl = impls.get(case.op, case.strategy)
    except ValueError as e:  # strategy or op absent at this commit
        raise NotImplementedError(str(e)) from None
    if not impl.available:
        raise NotImplementedError(impl.reason)
    return impl


def skip_if_too_slow(step, args, timing):
    """Call step twice at most (the first call traces and compiles) and skip, as `stratbench
    run` records too_slow, a case whose warm call leaves no room for its samples in the
    harness's case budget (pyfunc_seed at 16M: 6-19 s per call)."""
    from stratbench import metrics

    settings = timing.Settings()
    for _ in range(2):
        start = time.perf_counter()
        step(*args)
        timing.sync()
        elapsed = time.perf_counter() - start
        if not metrics.over_budget(elapsed, 2, settings.min_samples, settings.case_budget_s):
            return
    raise NotImplementedError(f"too slow: a warm call takes {elapsed:.1f} s; warm-up and {settings.min_samples} "
                              f"samples would exceed the {settings.case_budget_s:g} s case budget")


def make_suites(op):
    """(<Op>Time, <Op>Tracked) asv classes for `op`; asv names benchmarks by class name."""
    params = params_for(op)
    names = ["strategy", "size", "direction"]

    class Timing:
        """time_step: synchronised seconds per call; peakmem_step: the process's peak RSS."""

        param_names = names
        timeout = 600
        warmup_time = 0.1
        sample_time = 0.1
        # asv spawns a process per round and parameter set, and each pays a ~6 s TensorFlow
        # import here: one round (not asv's default two) keeps a full-size run of a commit
        # under 50 min on 2 cores.  `asv run -a rounds=2` restores the default.
        rounds = 1

        def setup(self, strategy, size, direction):
            # asv_runner (0.3) re-runs setup before every sample and times one call per
            # sample, so each sample would time the first call after a new trace (2x slower
            # than a warm call below 1 ms, measured).  The case is built and warmed once per
            # process; every sample then times a warm call, as stratbench run's samples do.
            key = (op, strategy, size, direction)
            if key not in _prepared:
                case = case_for(op, strategy, size, direction)
                impl = impl_for(case)
                timing = harness()
                args = timing.make_inputs(case)
                step = timing.step_function(impl, case)
                skip_if_too_slow(step, args, timing)  # also keeps tracing and compiling out of the timings
                _prepared[key] = (step, args, timing.sync)
            self.step, self.args, self.sync = _prepared[key]

        def time_step(self, strategy, size, direction):
            self.step(*self.args)
            self.sync()

        def peakmem_step(self, strategy, size, direction):
            self.step(*self.args)
            self.sync()

    Timing.params = params

    class Tracked:
        """Figures of `stratbench run`'s harness, measured once per commit in setup_cache."""

        param_names = names
        timeout = 3600

        def setup_cache(self):
            # asv keys setup_cache by its source line, which every op's class shares: so
            # this measures every op's cases, once per commit, for all Tracked classes.
            timing = harness()
            figures = {}
            copies = {}
            from stratbench import metrics

            for each_op in op_names():
                strategies, sizes, directions = params_for(each_op)
                for strategy, size, direction in ((s, z, d) for s in strategies for z in sizes for d in directions):
                    case = case_for(each_op, strategy, size, direction)
                    try:
                        impl = impl_for(case)
                        result = timing.run_case(impl, case, timing.Settings(target_sample_s=0.05, case_budget_s=20))
                    except Exception as e:  # unavailable, too slow or failing: reported as a skip
                        figures[case.key] = f"{type(e).__name__}: {e}"
                        continue
                    if case.bytes_moved not in copies:
                        copies[case.bytes_moved] = timing.copy_bandwidth(
                            "CPU", case.bytes_moved, timing.Settings(target_sample_s=0.05))["bytes_per_s"]
                    figures[case.key] = result | metrics.throughput(case.size, case.bytes_moved, result["median_s"],
                                                                    copies[case.bytes_moved])
            return figures

        def setup(self, figures, strategy, size, direction):
            found = figures.get(case_for(op, strategy, size, direction).key)
            if not isinstance(found, dict):
                raise NotImplementedError(found or "not measured")
            self.figures = found

        def track_elements_per_s(self, figures, strategy, size, direction):
            return self.figures["elements_per_s"]

        track_elements_per_s.unit = "elements/s"

        def track_roofline_fraction(self, figures, strategy, size, direction):
            return self.figures["roofline_fraction"]

        track_roofline_fraction.unit = "fraction of copy bandwidth"

        def track_peak_tf_bytes(self, figures, strategy, size, direction):
            # None where TF's allocator keeps no statistics (oneDNN off, plain allocator): NaN is
            # asv's "not measured", never a failure.  .get: older harnesses always had it.
            value = self.figures.get("peak_tf_bytes")
            return float("nan") if value is None else value

        track_peak_tf_bytes.unit = "bytes"

        def track_compile_s(self, figures, strategy, size, direction):
            return self.figures["compile_s"]

        track_compile_s.unit = "seconds"

    Tracked.params = params
    for cls, suffix in ((Timing, "Time"), (Tracked, "Tracked")):
        cls.__name__ = cls.__qualname__ = class_prefix(op) + suffix
    return Timing, Tracked
