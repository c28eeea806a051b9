"""The `stratbench` command line (also `python -m stratbench`)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pathlib
import signal
import sys
import time

import impls  # imports TensorFlow only when an Impl is made
from impls import FLOAT_DTYPES
from impls import ops as op_registry
from impls import strategies as strategy_registry
from impls.modules import UserModuleError
from stratbench.environment import ENV_HELP, ENV_SETTINGS
from stratbench.matrix import BASELINE, DEVICES, DIRECTIONS
from stratbench.compare import CONFIRM_BUDGET_S, MARGIN, THRESHOLD, rule as compare_rule
from stratbench.stats import MIN_ROUNDS


@contextlib.contextmanager
def _quiet_stderr(quiet: bool):
    """Hide TensorFlow's C++ start-up lines, which it prints before any log level applies."""
    if not quiet:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def _import_tensorflow(verbose: bool):
    with _quiet_stderr(not verbose):
        import tensorflow as tf

        tf.constant(0.0) + 1.0  # first op: the remaining start-up lines come here
    if not verbose:
        tf.get_logger().setLevel("ERROR")


def _names(kind: str, valid: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or '(none given)'}; accepted: {', '.join(valid)}"
            )
        return names

    return parse


def _sizes(text: str, dims: int | None = None):
    from stratbench.matrix import parse_size

    try:
        sizes = [parse_size(t) for t in text.split(",") if t.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not sizes:
        raise argparse.ArgumentTypeError(f"no size in {text!r}")
    if dims == 2 and any(len(s) != 2 for s in sizes):
        bad = next("x".join(map(str, s)) for s in sizes if len(s) != 2)
        raise argparse.ArgumentTypeError(f"shape {bad} must be RxC (rows x columns), e.g. 4096x2048")
    return sizes


def _shapes(text: str):
    return _sizes(text, dims=2)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _count(text: str) -> int:
    """A whole number of at least 1 (reruns)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def _unwritable(folder: pathlib.Path) -> str:
    """Why results cannot be written under `folder`, or ''; checked before TensorFlow loads."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user"
    return ""


def _progress():
    from tqdm import tqdm

    def wrap(items, desc):
        unit = {"measure": "group", "noise": "rerun"}.get(desc, "case" if desc.startswith("compare") else "item")
        return tqdm(items, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=desc == "measure")

    return wrap


def cmd_run(args) -> int:
    import tensorflow as tf

    from stratbench import matrix, metrics, status
    from stratbench.run import Options, run
    from stratbench.tables import comparison, steal_line

    devices = args.devices or ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])
    cases = matrix.cases(
        ops=args.ops, strategies=args.strategies, directions=args.directions, dtypes=args.dtypes,
        devices=devices, quick=args.quick, sizes=args.sizes, shapes=args.shapes, envs=args.env,
    )
    settings = _settings(args)
    options = Options(cases=cases, out=args.out, settings=settings, case_timeout_s=args.case_timeout,
                      machine=args.machine, fresh=args.fresh, verbose=args.verbose,
                      capabilities=not args.no_capabilities, roofline=not args.no_roofline, processes=args.processes,
                      baseline=args.baseline)
    if not cases:
        print(f"stratbench run: no case selected: none of the strategies {', '.join(args.strategies or [])} "
              f"implements {', '.join(args.ops or [])}; `stratbench run --help` lists what each takes",
              file=sys.stderr)
        return 2
    print(f"stratbench run: {len(cases)} cases on {', '.join(devices)}, environment setting "
          f"{', '.join(args.env)}", file=sys.stderr)
    started = time.perf_counter()
    try:
        table, directory = run(options, progress=_progress(), log=lambda m: print(m, file=sys.stderr))
    except KeyboardInterrupt:
        print("\nstratbench run: interrupted; every finished case is saved: rerun the same command to resume",
              file=sys.stderr)
        return 130
    with pd_options():
        print(comparison(table, baseline=args.baseline).to_string())
    counts = table["status"].value_counts().to_dict()
    print(f"\n{len(table)} cases: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    steal = steal_line(table)
    if steal:
        print(steal)
    print(f"wall time {time.perf_counter() - started:.0f} s; results in {directory}")
    print(metrics.MARKS_LEGEND.replace("`", "") + ";  (Nx) speedup over " + args.baseline)
    for _, r in table[~table["status"].isin([status.OK, status.SKIPPED])].iterrows():
        print(f"  {r['key']}: {r['status']}: {r['reason']}", file=sys.stderr)
    if not args.no_report:
        _report(directory, None, args.baseline, publish=False)
    # Failing the gate or breaking is an error; a case too slow for its budget is not.
    broken = table["status"].isin([status.FAILED_VERIFY, status.ERROR, status.CRASHED, status.TIMEOUT, status.OOM]).any()
    return 0 if (table["status"] == status.OK).any() and not broken else 1


def _settings(args):
    """timing.Settings from the measuring options (--quick: the fewest rounds, 10 ms samples)."""
    from stratbench.measurement import Rounds
    from stratbench.timing import Settings

    quick = getattr(args, "quick", False)
    rounds = Rounds(min_rounds=args.min_rounds, max_rounds=args.min_rounds if quick else args.max_rounds,
                    precision=args.precision, group_budget_s=args.group_budget)
    return Settings(target_sample_s=0.01 if quick else args.sample_time, rounds=rounds, case_budget_s=args.case_budget)


def _extremes(cases):
    """Each series' smallest and largest size only."""
    by_series = {}
    for c in cases:
        by_series.setdefault(c.series, []).append(c)
    keep = {k for series in by_series.values() for k in (min(series, key=lambda c: c.size).key,
                                                         max(series, key=lambda c: c.size).key)}
    return [c for c in cases if c.key in keep]


def cmd_compare(args) -> int:
    import pandas as pd

    from stratbench import compare, matrix

    cases = matrix.cases(ops=args.ops, strategies=args.strategies, directions=args.directions or list(matrix.KERNEL_DIRECTIONS),
                         dtypes=args.dtypes, devices=args.devices or ["CPU"], sizes=args.sizes, shapes=args.shapes,
                         envs=args.env)
    if not (args.sizes or args.shapes):
        cases = _extremes(cases)
    if not cases:
        print("stratbench compare: no case selected; `stratbench compare --help` lists the choices", file=sys.stderr)
        return 2
    print(f"stratbench compare: {len(cases)} cases, {args.old} -> {args.new}, {args.processes} worker processes per "
          "commit, rounds in a random order", file=sys.stderr)
    started = time.perf_counter()
    try:
        table, samples = compare.compare_commits(args.old, args.new, cases, _settings(args), args.processes,
                                                 args.threshold, _progress(), args.verbose,
                                                 confirm_budget_s=args.confirm_budget)
    except compare.CompareError as e:
        print(f"stratbench compare: {e}", file=sys.stderr)
        return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        _with_machine(table).to_csv(args.out / "compare.csv", index=False)
        samples.to_csv(args.out / "samples.csv.gz", index=False, compression="gzip")
    with pd_options():
        shown = table.assign(ratio=[f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}]" if r.verdict != "not measured" else r.reason
                                    for r in table.itertuples()])
        if "confirm_ratio" in table:  # the screened cases, measured again in fresh workers
            shown["again"] = [f"{r.confirm_ratio:.3f} ({r.confirm_by_process})" if pd.notna(r.confirm_ratio) else ""
                              for r in table.itertuples()]
            shown["both"] = [f"{r.pooled_ratio:.3f} [{r.pooled_low:.3f}, {r.pooled_high:.3f}]"
                             if pd.notna(r.pooled_ratio) else "" for r in table.itertuples()]
        columns = ["op", "strategy", "direction", "shape", "env", "ratio", "by_process", "again", "both", "verdict"]
        print(shown[[c for c in columns if c in shown]].to_string(index=False))
    counts = table["verdict"].value_counts().to_dict()
    print(f"\n{len(table)} cases: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
          + f"; ratio = time at {args.new} / time at {args.old}, Hodges-Lehmann estimate of the paired rounds [95% interval], "
          f"and in each worker process's rounds (by_process); {compare_rule(args.threshold)} (again: the second "
          f"pass; both: the two together); wall time {time.perf_counter() - started:.0f} s" + (f"; written to {args.out}" if args.out else ""))
    return 1 if (table["verdict"] == "not measured").all() else 0


def cmd_noise(args) -> int:
    from stratbench import compare, matrix

    op = args.op
    shape = args.size or max(matrix.sizes_for(op), key=lambda s: math.prod(s))
    case = matrix.Case(op, args.strategy, args.direction, "float32", "CPU", shape, args.env)
    print(f"stratbench noise: {case.key} against itself and with 10% and 20% more elements, {args.reruns} reruns "
          "in fresh worker processes", file=sys.stderr)

    def written(table, samples):  # after every rerun: Ctrl-C keeps the reruns done
        args.out.parent.mkdir(parents=True, exist_ok=True)
        _with_machine(table).to_csv(args.out, index=False)
        samples.to_csv(noise_samples_path(args.out), index=False, compression="gzip")

    try:
        table, _ = compare.noise(case, _settings(args), args.reruns, args.processes, args.threshold, _progress(),
                                 args.verbose, confirm_budget_s=args.confirm_budget,
                                 written=written if args.out else None)
    except compare.NotMeasured as e:
        print(f"stratbench noise: {e}", file=sys.stderr)
        return 1
    with pd_options():
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\n" + compare.resolves(table))
    if args.out:
        print(f"written to {args.out} and {noise_samples_path(args.out)}", file=sys.stderr)
    return 0


def noise_samples_path(out: pathlib.Path) -> pathlib.Path:
    """Where `stratbench noise --out X.csv` keeps every sample: X.samples.csv.gz."""
    return out.with_name(out.name.removesuffix(".csv") + ".samples.csv.gz")


def cmd_in_model(args) -> int:
    import pandas as pd

    import impls
    from stratbench import inmodel, tables

    groups = inmodel.cases(args.ops, args.strategies, args.directions, [math.prod(s) for s in args.sizes])
    print(f"stratbench in-model: {sum(map(len, groups))} cases, the op applied {args.applications} times in one step "
          "and once, in paired rounds", file=sys.stderr)
    rows = []
    out = args.out
    for group in _progress()(groups, "in-model"):
        rows += inmodel.measure(group, impls.get, args.applications)
        table = _with_machine(pd.DataFrame(rows))
        if out:  # after every group: Ctrl-C keeps what was measured
            out.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(out, index=False)
    cells = inmodel.table(table)
    text = (f"Cost of one application inside a step (the op applied {args.applications} times to different inputs "
            "in one step, less the step with one, per paired round; median), and in brackets the call of that "
            f"one-application step from Python. {tables.caption(table.iloc[0].to_dict() | {'setting': 'default'})}")
    with pd_options():
        print(cells.to_string())
    print("\n" + text)
    if out:
        out.with_suffix(".md").write_text(text + "\n\n" + tables.markdown(cells) + "\n")
        print(f"written to {out} and {out.with_suffix('.md')}")
    return 0 if (table["status"] == "ok").any() else 1


def _with_machine(table):
    """The table with what its figures hold for: machine, CPU, ISA, oneDNN, allocator, TF, commit."""
    from stratbench import environment

    env = environment.capture()
    return table.assign(**{k: env.get(k) for k in ("machine", "host", "cpu_model", "cpu_isa", "cpu_count", "memory_bytes",
                                                   "onednn", "cpu_allocator", "tensorflow", "python", "commit")})


@contextlib.contextmanager
def pd_options():
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_rows", None):
        yield


def _report(source, out, baseline, publish, releases=False) -> None:
    from stratbench import capabilities, publishing, report

    table, env, caps, default_out = report.source_of(source)
    out = out or default_out
    if releases:
        if publish:
            raise ValueError("--releases and --publish: choose one (--publish is for a `stratbench run` directory)")
        written = report.write_releases(table, out, log=lambda m: print(m, file=sys.stderr))
        print(f"{written['table']}\n" + "\n".join(map(str, written["figures"])))
        return
    written = report.write(table, out, env, caps, baseline, log=lambda m: print(m, file=sys.stderr))
    if caps:
        with pd_options():
            print("\ncapability matrix (- = skipped; details in capabilities.json):")
            print(capabilities.table(caps).to_string())
    if publish:
        if env is None:
            raise ValueError("--publish needs a `stratbench run` directory (with environment.json), not asv or "
                             "pytest-benchmark results")
        results_readme = pathlib.Path(source).resolve().parents[1] / "README.md"
        top = pathlib.Path(__file__).resolve().parents[1] / "README.md"
        command = f"stratbench report {source} --publish"
        publishing.publish(pathlib.Path(source), written, table, env, caps, results_readme, top if top.exists() else None,
                       baseline, command)
        print(f"published {results_readme}" + (f" and the headline block of {top}" if top.exists() else ""))


def cmd_report(args) -> int:
    from stratbench import report

    source = args.source or report.latest_run(pathlib.Path("results"))
    if source is None:
        print("stratbench report: no stored results under results/; run `stratbench run` first, or name a "
              "run directory, an asv results folder or a pytest-benchmark JSON", file=sys.stderr)
        return 2
    if not pathlib.Path(source).exists():
        print(f"stratbench report: {source} does not exist", file=sys.stderr)
        return 2
    try:
        if args.machines:
            if args.publish or args.releases:
                raise ValueError("--machines reads a folder of runs; --publish (of one run) includes the machines "
                                 "of its results folder already, and --releases compares TF releases")
            written = report.write_machines(source, args.out or pathlib.Path(source) / "machines", args.baseline,
                                            log=lambda m: print(m, file=sys.stderr))
            print(f"{written['table']}\n" + "\n".join(map(str, written["figures"])))
            return 0
        _report(source, args.out, args.baseline, args.publish, args.releases)
    except ValueError as e:
        print(f"stratbench report: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_machine(args) -> int:
    from stratbench import environment

    mine = environment.this_machine()
    print(environment.machine_identity(mine))
    if args.verbose:
        for part, value in environment.identity_parts(mine).items():
            print(f"  {part}: {value}", file=sys.stderr)
    return 0


def cmd_recommend(args) -> int:
    from stratbench import recommend

    takes_axis = impls.spec(args.op).takes_axis
    if takes_axis and len(args.size) != 2:
        print(f"stratbench recommend: --size for {args.op} is a RxC shape (rows x columns), e.g. 4096x2048; "
              f"got {'x'.join(map(str, args.size))}", file=sys.stderr)
        return 2
    shape = "x".join(map(str, args.size)) if takes_axis else str(math.prod(args.size))
    try:
        print(recommend.recommend(args.results, args.op, args.device, shape, args.direction, args.needs, args.dtype,
                                  args.env, args.by, args.max_memory_per_element, args.machine))
    except recommend.NoResult as e:
        print(f"stratbench recommend: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_agree(args) -> int:
    from stratbench import agree

    runs = [args.run_a, args.run_b, *args.runs]
    missing = [r for r in runs if not r.exists()]
    if missing:
        print(f"stratbench agree: {missing[0]} does not exist", file=sys.stderr)
        return 2
    try:
        print(agree.text(agree.agree(runs, args.pool)))
    except ValueError as e:  # results.NotResults included: a folder without a run, a damaged file
        print(f"stratbench agree: {e}", file=sys.stderr)
        return 2
    return 0


def _needs(text: str):
    from stratbench import recommend

    try:
        return recommend.parse_needs(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _one_size(text: str):
    sizes = _sizes(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"give one size, got {text!r}")
    return sizes[0]


def cmd_build(args) -> int:
    from impls.kernels import build

    failed = []
    for lib in build.libraries():  # one library each: one that fails leaves the others usable
        name = lib.name  # its op folder's, or 'floor'
        try:
            path, with_cuda = build.build(lib, force=args.force)
        except build.BuildError as e:
            print(f"stratbench build: {name}'s compiled op failed to build:\n{e}", file=sys.stderr)
            failed.append(name)
            continue
        kernels = "CPU and CUDA kernels" if with_cuda else "CPU kernels only (no nvcc with a CUDA runtime found)"
        print(f"built {name}: {path}\n  {kernels}; log: {path.parent / 'build.log'}")
    if failed:
        print(f"stratbench build: {', '.join(failed)} failed; custom_op is unavailable for them only", file=sys.stderr)
    return 1 if failed else 0


def cmd_verify(args) -> int:
    from tqdm import tqdm

    import impls
    from stratbench import verify

    pairs = [
        (op, s)
        for op in args.ops
        for s in impls.strategies_for(op)
        if s in args.strategies
    ]
    if not pairs:
        print("stratbench verify: no strategy in --strategies implements the ops in --ops", file=sys.stderr)
        return 2
    progress = lambda it: tqdm(it, desc="verify", unit="impl", file=sys.stderr, leave=False)  # noqa: E731
    table = verify.verify(pairs, progress=progress)
    print(verify.format_table(table))
    ok = verify.passed(table)
    print("\nverify:", "every available strategy matches the reference" if ok else "FAILED (see the table above)")
    return 0 if ok else 1


OP_MODULE_HELP = (f"a module or .py file declaring SPEC = impls.spec.OpSpec(...): your own op, measured like the "
                  f"built-in ones (repeatable; adds to ${op_registry.ENV_VARIABLE}, which worker processes, asv and pytest "
                  "read; see the README's 'Your own op')")
STRATEGY_MODULE_HELP = (f"a module or .py file declaring STRATEGY = impls.strategy.Strategy(...): your own way of "
                        f"writing an op, measured on every op it can take (repeatable; adds to "
                        f"${strategy_registry.ENV_VARIABLE}; see the README's 'Your own strategy')")
# option -> the variable that carries its modules to worker processes, asv and pytest
USER_MODULE_OPTIONS = {"--op-module": op_registry.ENV_VARIABLE, "--strategy-module": strategy_registry.ENV_VARIABLE}


def _add_user_modules(argv) -> None:
    """Puts the --op-module and --strategy-module values anywhere in argv into their variables
    (read before the parser lists the ops and strategies)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for option in USER_MODULE_OPTIONS:
        pre.add_argument(option, action="append", default=[])
    given = vars(pre.parse_known_args(argv)[0])
    for option, variable in USER_MODULE_OPTIONS.items():
        values = [m for text in given[option.lstrip("-").replace("-", "_")] for m in text.split(",") if m.strip()]
        if values:
            named = [m for m in os.environ.get(variable, "").split(",") if m.strip()]
            absolute = [str(pathlib.Path(m).resolve()) if m.endswith(".py") else m for m in values]
            os.environ[variable] = ",".join(dict.fromkeys(named + absolute))


def _measuring(sample_time: float, group_budget: float, case_budget: float) -> argparse.ArgumentParser:
    """How groups are sampled (run, compare, noise), with one command's defaults.  A parser of its
    own per command: parents share their argument objects, so set_defaults on one command changed
    the others' (the default run was measured with compare's 0.1 s samples and 3 s budget)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sample-time", type=_positive, default=sample_time,
                        help=f"seconds one sample should last; calls per sample follow (default: {sample_time:g}; "
                             "0.02 for run, where a round holds every strategy; 0.1 for compare and noise, whose "
                             "rounds hold two to four entries: the A/A interval of `stratbench noise` was ±9.9%% "
                             "at 0.02 s, ±6.3%% at 0.1 s)")
    parser.add_argument("--min-rounds", type=int, default=MIN_ROUNDS,
                        help=f"rounds every group takes, at least {MIN_ROUNDS}, the fewest that give a 95%% interval "
                             f"(default: {MIN_ROUNDS})")
    parser.add_argument("--max-rounds", type=int, default=60, help="rounds a group takes at most (default: 60)")
    parser.add_argument("--precision", type=_positive, default=0.03,
                        help="a group stops once every ratio to its fastest is known within this, relative "
                             "(default: 0.03, i.e. ±3%%)")
    parser.add_argument("--group-budget", type=_positive, default=group_budget,
                        help="seconds of rounds a group may take after its first --min-rounds before it stops, "
                             f"known or not (default: {group_budget:g})")
    parser.add_argument("--processes", type=int, default=2, choices=range(1, 9), metavar="N",
                        help="worker processes a group's rounds alternate between: some variance lives in the "
                             "process (buffer placement), so one process is not enough (default: 2)")
    parser.add_argument("--case-budget", type=_positive, default=case_budget,
                        help=f"a case whose samples cannot fit in this many seconds is recorded too_slow "
                             f"(default: {case_budget:g})")
    return parser


def _detecting() -> argparse.ArgumentParser:
    """The change detector's rule, shared by compare and noise (noise checks compare's detector)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threshold", type=_positive, default=THRESHOLD,
                        help=f"a change smaller than this is reported unchanged (default: {THRESHOLD:g}: with the "
                             f"{MARGIN * 100:g}%% margin, A/A compares on the 2-core AMD VM flagged none of 132 cases "
                             "in 7 runs, where 6%% flagged one in 2 of them; a change of 10%% more elements was "
                             "flagged in 5-9 of 10 reruns, 20%% in 9-10)")
    parser.add_argument("--confirm-budget", type=_positive, default=CONFIRM_BUDGET_S,
                        help="seconds of rounds a screened case gets when measured again in fresh workers, "
                             f"instead of --group-budget (default: {CONFIRM_BUDGET_S:g})")
    return parser


def _add_ops_and_strategies(parser, ops, strategies, every: bool) -> None:
    """--ops and --strategies; `every`: their defaults are the full lists (else None, which the
    case matrix reads as every one)."""
    parser.add_argument("--ops", type=_names("op", ops), default=list(ops) if every else None,
                        help=f"comma-separated ops (default: all of {','.join(ops)})")
    parser.add_argument("--strategies", type=_names("strategy", strategies), default=list(strategies) if every else None,
                        help=f"comma-separated strategies (default: every one that implements the op, of "
                             f"{','.join(strategies)})")


def build_parser() -> argparse.ArgumentParser:
    ops, STRATEGIES = impls.OPS, impls.STRATEGIES  # noqa: N806 (the package's and the user's)
    ops_text = ", ".join(f"{op} ({impls.spec(op).kind})" for op in ops)
    parser = argparse.ArgumentParser(
        prog="stratbench",
        description=(
            "Benchmark the ways of writing a custom TensorFlow activation (py_func, native ops, "
            "tf.function, XLA, a compiled op) on every registered op, after proving they compute the same "
            f"values and gradients as the op's float64 NumPy reference. Ops: {ops_text}."
        ),
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--op-module", action="append", metavar="MODULE", help=OP_MODULE_HELP)
    common.add_argument("--strategy-module", action="append", metavar="MODULE", help=STRATEGY_MODULE_HELP)
    common.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify = sub.add_parser(
        "verify", parents=[common],
        help="check every (op, strategy) against the float64 NumPy reference",
        description=(
            "Run every available (op, strategy) on edge-case inputs in each dtype it claims, eagerly "
            "and inside a tf.function, and compare values and gradients with the op's float64 NumPy reference "
            "(impls/ops/OP/reference.py), within the op's tolerance per dtype. "
            "Prints one row per (op, strategy) with pass/FAIL and the largest float32 error. "
            "Exit status 1 when any check fails or nothing was available to check."
        ),
    )
    _add_ops_and_strategies(verify, ops, STRATEGIES, every=True)
    verify.set_defaults(func=cmd_verify)

    build = sub.add_parser(
        "build", parents=[common],
        help="build the compiled op (custom_op) against the TensorFlow installed here",
        description=(
            "Compile the ops' kernels (impls/ops/OP/kernels: C++ CPU kernels, and CUDA kernels when nvcc and a CUDA runtime are "
            "found; STRATBENCH_CUDA=0 skips them) into a library cached under a key of source hash, "
            "TensorFlow version, compiler and flags ($STRATBENCH_CACHE, default ~/.cache/stratbench). "
            "Happens automatically on first use; this command does it up front or, with --force, again."
        ),
    )
    build.add_argument("--force", action="store_true", help="rebuild even if this key is cached (or failed before)")
    build.set_defaults(func=cmd_build)

    selection = argparse.ArgumentParser(add_help=False)  # which cases: shared by run and compare
    _add_ops_and_strategies(selection, ops, STRATEGIES, every=False)
    selection.add_argument("--directions", type=_names("direction", DIRECTIONS),
                     help="comma-separated: forward (y), backward (dx from x and dy), forward_backward (both)")
    selection.add_argument("--dtypes", type=_names("dtype", FLOAT_DTYPES), default=["float32"],
                     help="comma-separated dtypes (default: float32)")
    selection.add_argument("--devices", type=_names("device", DEVICES),
                     help="comma-separated devices (default: every device present); "
                          "an absent device's cases are recorded as skipped")
    selection.add_argument("--sizes", type=_sizes,
                     help="element counts of the elementwise ops, e.g. 1e3,1e6,1.6e7 (default: each op's, 1e3 to 1.6e7)")
    selection.add_argument("--shapes", type=_shapes,
                     help="[rows x cols] shapes of the ops along an axis, e.g. 1024x1024,4096x2048 "
                          "(default: each op's, 128x128 to 4096x2048)")
    selection.add_argument("--env", type=_names("environment setting", tuple(ENV_SETTINGS)), default=["default"],
                     help="comma-separated environment settings, each measured in workers of its own "
                          "(default: default). "
                          + "; ".join(f"{name}: {text}" for name, text in ENV_HELP.items()))

    run = sub.add_parser(
        "run", parents=[common, selection, _measuring(sample_time=0.02, group_budget=8.0, case_budget=30.0)],
        help="verify, then measure every case: time, throughput, roofline fraction, memory",
        description=(
            "The main job. Verifies each strategy against the reference (one that fails is not timed), "
            "then measures every case of the matrix -- op x strategy x size x direction x dtype x device -- "
            "in comparison groups: the strategies of one case (and, at each series' smallest size, each "
            "strategy's call floor: the same step around an op that does nothing) are sampled "
            "in rounds, in a random order each round, alternating between two worker processes, so every "
            "ratio comes from samples taken seconds apart. Each speedup is the Hodges-Lehmann estimate of the "
            "per-round ratios with its 95% interval; a group stops when every ratio to its fastest is known within "
            "--precision, or after --max-rounds or --group-budget. Also: elements/s and bytes/s, the "
            "fraction of the memory roofline (the best time of a compiled STREAM-like kernel with the case's "
            "reads, writes and footprint, measured first; above 1.05 is flagged as a defect), whether the case "
            "is call-bound (under 2x its floor), TF allocator and process peak memory, and "
            "tracing/compile time. Each finished group is written at once to "
            "OUT/MACHINE/RUN_ID/cases.{csv,json} (every sample to samples.csv.gz); rerunning the same "
            "command resumes. "
            "Strategies run as in production: native eagerly, xla under tf.function(jit_compile=True), "
            "the others inside one tf.function."
        ),
    )
    run.add_argument("--quick", action="store_true", help="smoke mode: the smallest sizes, 10 ms samples (a couple of minutes)")
    run.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"),
                     help="results folder (default: results)")
    run.add_argument("--machine", help="machine name for the results folder (default: this machine's identity: "
                                      "CPU model, vector ISA, logical CPUs, memory and GPUs, e.g. "
                                      "intel-xeon-amx-2cpu-24gib-nogpu; the host name is recorded as a label)")
    run.add_argument("--fresh", action="store_true", help="start a new run instead of resuming this commit's")
    run.add_argument("--baseline", default=BASELINE, choices=STRATEGIES,
                     help="strategy the speedups in the table are relative to (default: native, eager)")
    run.add_argument("--case-timeout", type=_positive, default=300.0,
                     help="a case still running after this many seconds is killed and recorded (default: 300)")
    run.add_argument("--no-capabilities", action="store_true",
                     help="skip the capability matrix (correct under XLA, SavedModel, Keras, threads...; ~3 min)")
    run.add_argument("--no-roofline", action="store_true",
                     help="skip the memory roofline (about a minute at the start and before each group): no "
                          "roofline fractions, the other figures as usual")
    run.add_argument("--no-report", action="store_true", help="skip writing the report (figures and tables)")
    run.set_defaults(func=cmd_run)

    compare = sub.add_parser(
        "compare", parents=[common, selection, _measuring(sample_time=0.1, group_budget=3.0, case_budget=10.0),
                            _detecting()],
        help="is a commit slower? A against B, paired rounds, a verdict per case",
        description=(
            "Builds OLD and NEW side by side (git worktrees, each with its own compiled op), runs each in "
            "worker processes of its own, and samples every selected case at both commits in rounds, in a "
            "random order each round, alternating the processes. Per case: the ratio NEW/OLD (Hodges-Lehmann "
            "estimate of the per-round ratios) with its 95% interval, and a verdict: "
            f"{compare_rule(THRESHOLD)} (the percentages: --threshold), the second pass lasting --confirm-budget "
            "seconds; else unchanged. Default cases: every op, "
            "strategy and kernel direction at each op's smallest and largest size. The harness is this "
            "checkout's; only the ops and strategies come from the commits."
        ),
    )
    compare.add_argument("old", help="the commit to compare against (hash, branch, tag, HEAD~1)")
    compare.add_argument("new", help="the commit to judge")
    compare.add_argument("--out", type=pathlib.Path, help="write compare.csv and samples.csv.gz into this folder")
    compare.set_defaults(func=cmd_compare)

    noise = sub.add_parser(
        "noise", parents=[common, _measuring(sample_time=0.1, group_budget=3.0, case_budget=10.0), _detecting()],
        help="the smallest change this machine resolves: a case against itself and with 10%% and 20%% more elements",
        description=(
            "Checks the change detector of `stratbench compare` on this machine with changes of known size: "
            "one case against itself (A/A: must come out unchanged) and against the same case with 10% and "
            "20% more elements (memory-bound: about 1.1x and 1.2x slower), in paired rounds, each rerun in "
            "fresh worker processes. Prints each ratio with its interval and verdict, how often each change "
            "was flagged, and the smallest change resolved here."
        ),
    )
    noise.add_argument("--op", default="spiky", choices=ops, help="the op (default: spiky, elementwise)")
    noise.add_argument("--strategy", default="xla", choices=STRATEGIES, help="the strategy (default: xla)")
    noise.add_argument("--direction", default="forward", choices=DIRECTIONS, help="the direction (default: forward)")
    noise.add_argument("--size", type=_one_size, help="the case's size (default: the op's largest)")
    noise.add_argument("--env", default="default", choices=tuple(ENV_SETTINGS), help="environment setting")
    noise.add_argument("--reruns", type=_count, default=3, help="reruns, each in fresh workers (default: 3)")
    noise.add_argument("--out", type=pathlib.Path, help="also write the table as CSV here (after every rerun), and "
                                                        "every sample beside it (X.samples.csv.gz for X.csv)")
    noise.set_defaults(func=cmd_noise)

    in_model = sub.add_parser(
        "in-model", parents=[common],
        help="what an op costs inside a running step (1e3-1e5 elements), against its call from Python",
        description=(
            "At small sizes a case timed alone is its strategy's call floor: it says which calling convention "
            "is cheapest to call from Python, not which op is cheapest inside a model. This applies the op to "
            "--applications different inputs in one step (each strategy in its production mode: native as "
            "eager calls, xla as one jit step, the others one tf.function) and, in the same paired rounds, "
            "once; the cost of one application inside the step is the difference over applications - 1, "
            "with its 95% interval. Writes a CSV (after every group) and a Markdown table."
        ),
    )
    _add_ops_and_strategies(in_model, ops, STRATEGIES, every=True)
    in_model.add_argument("--directions", type=_names("direction", ("forward", "forward_backward")),
                          default=["forward", "forward_backward"],
                          help="comma-separated: forward, forward_backward (default: both)")
    in_model.add_argument("--sizes", type=_sizes, default=[(1000,), (10000,), (100000,)],
                          help="element counts (an op along an axis runs on [n/100, 100]; default: 1e3,1e4,1e5)")
    in_model.add_argument("--applications", type=int, default=16, choices=range(2, 257), metavar="K",
                          help="applications of the op in one step, 2 to 256 (default: 16)")
    in_model.add_argument("--out", type=pathlib.Path, help="write the rows here as CSV (and a .md table beside it)")
    in_model.set_defaults(func=cmd_in_model)

    report = sub.add_parser(
        "report", parents=[common],
        help="figures and tables from stored results (run at the end of `stratbench run` too)",
        description=(
            "Reads a `stratbench run` directory, an asv results folder (results/asv) or a pytest-benchmark "
            "JSON and writes, per op: throughput against size with 95% interval bands, the memory roofline and the call floors, speedup "
            "at the largest size, TF allocator and process peak memory, compile time (PNG and SVG); per op "
            "and direction a Markdown and a CSV table with strategies as columns; the MLP training step. "
            "--publish also regenerates results/README.md and the headline block of the top-level README."
        ),
    )
    report.add_argument("source", nargs="?", type=pathlib.Path,
                        help="results to read (default: the newest run directory under results/)")
    report.add_argument("--out", type=pathlib.Path,
                        help="folder for the figures and tables (default: SOURCE/report for a run directory)")
    report.add_argument("--baseline", default=BASELINE, choices=STRATEGIES,
                        help="strategy the speedups are relative to (default: native)")
    report.add_argument("--publish", action="store_true",
                        help="also write results/README.md and the top-level README's headline block from this run")
    report.add_argument("--releases", action="store_true",
                        help="compare TensorFlow releases instead: asv results of one commit measured under "
                             "asv.releases.conf.json; writes releases.md, releases.csv and a figure of time per "
                             "call against release at each op's largest size")
    report.add_argument("--machines", action="store_true",
                        help="compare machines instead: SOURCE is a folder of runs (e.g. results); per machine type "
                             "its newest run, side by side at each op's largest and smallest size (speedup with its "
                             "interval, and time), as machines.md, machines.csv and a figure in SOURCE/machines")
    report.set_defaults(func=cmd_report)

    machine = sub.add_parser(
        "machine", parents=[common],
        help="this machine's identity: the folder its results go to, and the name to give asv",
        description=(
            "Prints this machine's type as results name it: CPU model, best vector ISA, logical CPUs, memory "
            "(GiB) and GPUs, e.g. intel-xeon-amx-2cpu-24gib-nogpu. The same type gives the same name on every "
            "host; a different CPU never does. asv: `asv machine --machine $(stratbench machine) --yes`. "
            "With --verbose, the parts it is made of (and whether oneDNN is on by default here)."
        ),
    )
    machine.set_defaults(func=cmd_machine)

    recommend = sub.add_parser(
        "recommend", parents=[common],
        help="the fastest strategy for one case that meets your needs, from stored results",
        description=(
            "Picks, from the newest stored `stratbench run` that measured the case, the fastest strategy "
            "whose capability cells say yes to every --needs, and says by how much it wins, over what, "
            "with what spread, and what it gives up. Example: stratbench recommend --op spiky --size 16e6 "
            "--direction backward --needs savedmodel"
        ),
    )
    recommend.add_argument("--op", required=True, choices=ops)
    recommend.add_argument("--size", required=True, type=_one_size,
                           help="an element count for an elementwise op (16e6), a RxC shape for an op along "
                                "an axis (4096x2048)")
    recommend.add_argument("--direction", default="forward_backward", choices=DIRECTIONS,
                           help="forward, backward, forward_backward (default) or train_step (size = batch)")
    recommend.add_argument("--device", default="CPU", choices=DEVICES)
    recommend.add_argument("--dtype", default="float32", choices=FLOAT_DTYPES)
    recommend.add_argument("--needs", type=_needs, default=[],
                           help="comma-separated: xla (jit_compile), savedmodel, keras, gpu, threads, "
                                "thread_scaling, eager, tf_function")
    recommend.add_argument("--env", type=_names("environment setting", tuple(ENV_SETTINGS)),
                           help="comma-separated environment settings to choose among, when the stored run measured "
                                "several (default: all of them; each (strategy, setting) is a candidate)")
    recommend.add_argument("--by", choices=("time", "memory"), default="time",
                           help="rank by time (default) or by memory per element, then time: in forward_backward "
                                "what the forward keeps for its backward (what limits a training batch), otherwise "
                                "the case's peak above its inputs (TF's allocator and the process)")
    recommend.add_argument("--max-memory-per-element", type=_positive, metavar="BYTES",
                           help="exclude strategies that need more bytes per element (as --by memory counts them), "
                                "or whose memory was not measured; e.g. 8 for float32 forward_backward")
    recommend.add_argument("--machine",
                           help="answer from this machine's newest run (its identity, the folder name under "
                                "results/, or its host name); default: the newest run made on this machine's type, "
                                "else the newest of any machine, saying how it differs")
    recommend.add_argument("--results", type=pathlib.Path, default=pathlib.Path("results"),
                           help="a run directory or a folder of runs (default: results)")
    recommend.set_defaults(func=cmd_recommend)

    agree = sub.add_parser(
        "agree", parents=[common],
        help="do runs of the same command agree? in-group speedups, rankings and winners, run by run",
        description=(
            "Compares two or more `stratbench run` folders of the same cases (the same command, one run after "
            "the other) on what a user decides by. Per comparison group and pair of runs: how many in-group "
            "speedups (each strategy's time over every other's) agree within 10%, the rankings one run has "
            "the other way round by more than 5% each way, the winner changes (two ties are no change), the "
            "times over the first run's fastest outside its 95% interval and beyond 5%, and at each op's "
            "largest size the speedups over the baseline; first, each run's CPU steal where recorded. "
            "Reads files only: no TensorFlow."
        ),
    )
    agree.add_argument("run_a", type=pathlib.Path, metavar="RUN_A", help="a `stratbench run` folder (OUT/MACHINE/RUN_ID)")
    agree.add_argument("run_b", type=pathlib.Path, metavar="RUN_B", help="another run of the same command")
    agree.add_argument("runs", nargs="*", type=pathlib.Path, metavar="RUN", help="more runs: every pair is compared")
    agree.add_argument("--pool", type=_count, default=1, metavar="K",
                       help="pool the samples of each K runs in a row and compare the pooled sets "
                            "(default: 1, each run alone)")
    agree.set_defaults(func=cmd_agree)
    return parser


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: worktrees removed, workers closed, files whole


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _add_user_modules(sys.argv[1:] if argv is None else argv)  # in the environment: workers import them too
    try:
        parser = build_parser()
    except UserModuleError as e:
        print(f"stratbench: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "min_rounds", MIN_ROUNDS) < MIN_ROUNDS:
        parser.error(f"--min-rounds must be at least {MIN_ROUNDS}: fewer rounds give no 95% interval of the median")
    if getattr(args, "max_rounds", MIN_ROUNDS) < getattr(args, "min_rounds", MIN_ROUNDS):
        parser.error("--max-rounds must be at least --min-rounds")
    if args.command == "run":
        problem = _unwritable(args.out)
        if problem:
            print(f"stratbench run: --out {args.out}: {problem}", file=sys.stderr)
            return 2
    if args.command in ("run", "verify", "build", "compare", "noise", "in-model"):  # report and recommend only read files
        _import_tensorflow(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nstratbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
