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
from stratbench import compare_report
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


def _one(kind: str, valid: tuple[str, ...]):
    """One name (commands that take exactly one: noise, recommend), under the singular or the
    plural spelling of its option: a list is refused, saying so."""
    names = _names(kind, valid)

    def parse(text: str) -> str:
        chosen = names(text)
        if len(chosen) > 1:
            raise argparse.ArgumentTypeError(f"takes one {kind}, got {len(chosen)} ({', '.join(chosen)}): "
                                             f"run the command once per {kind}")
        return chosen[0]

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


def _run_cases(args, devices) -> list:
    from stratbench import matrix

    return matrix.cases(ops=args.ops, strategies=args.strategies, directions=args.directions, dtypes=args.dtypes,
                        devices=devices, quick=args.quick, sizes=args.sizes, shapes=args.shapes, envs=args.env)


def _no_run_case(args) -> int:
    print(f"stratbench run: no case selected: none of the strategies {', '.join(args.strategies or [])} "
          f"implements {', '.join(args.ops or [])}; `stratbench run --help` lists what each takes",
          file=sys.stderr)
    return 2


def cmd_run(args) -> int:
    if args.dry_run:  # without TensorFlow, which would be asked for a GPU: only --devices says there is one
        cases = _run_cases(args, args.devices or ["CPU"])
        return _dry_run(args, cases) if cases else _no_run_case(args)
    import tensorflow as tf

    from stratbench import metrics, status
    from stratbench.run import Options, run
    from stratbench.tables import comparison, steal_line

    devices = args.devices or ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])
    cases = _run_cases(args, devices)
    settings = _settings(args)
    options = Options(cases=cases, out=args.out, settings=settings, case_timeout_s=args.case_timeout,
                      machine=args.machine, fresh=args.fresh, verbose=args.verbose,
                      capabilities=not args.no_capabilities, roofline=not args.no_roofline, processes=args.processes,
                      baseline=args.baseline)
    if not cases:
        return _no_run_case(args)
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

    sample_s, max_rounds = _sampling(args)
    rounds = Rounds(min_rounds=args.min_rounds, max_rounds=max_rounds, precision=args.precision,
                    group_budget_s=args.group_budget)
    return Settings(target_sample_s=sample_s, rounds=rounds, case_budget_s=args.case_budget)


def _sampling(args) -> tuple[float, int]:
    """(seconds a sample lasts, rounds at most) of the measuring options: --quick takes 10 ms
    samples and stops at --min-rounds."""
    quick = getattr(args, "quick", False)
    return (0.01 if quick else args.sample_time), (args.min_rounds if quick else args.max_rounds)


MEASURING_COMMANDS = ("run", "compare", "noise")


def default_settings(command: str, *options: str):
    """The timing.Settings a measuring command (run, compare or noise) measures with by default,
    or with `options` (e.g. "--sample-time", "0.05"), as its command line would give them.
    Imports TensorFlow (stratbench.timing)."""
    if command not in MEASURING_COMMANDS:
        raise ValueError(f"{command!r} does not measure; the measuring commands: {', '.join(MEASURING_COMMANDS)}")
    commits = ["OLD", "NEW"] if command == "compare" else []  # its two positional arguments, unread here
    return _settings(build_parser().parse_args([command, *commits, *options]))


# What a dry run's estimate assumes, beyond the measuring options (the figures of `stratbench run`
# on a 2-core machine): a worker process's TensorFlow start-up, each case's setting up (tracing,
# XLA compiling, choosing calls per sample, its memory), a correctness check of one (op, strategy)
# pair, the memory roofline, the capability matrix, and a build of the compiled op.
TF_START_S = 5.0
CASE_SETUP_S = (0.2, 1.0)
VERIFY_PAIR_S = (0.5, 2.0)
ROOFLINE_S = 60.0
CAPABILITIES_S = 180.0
BUILD_S = 45.0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _span(low: float, high: float) -> str:
    """'1.2-8.7 min', '45 s to 2.1 min', or one figure where both round alike."""
    a, b = _duration(low), _duration(high)
    if a == b:
        return a
    (number, unit), (_, other_unit) = a.split(), b.split()
    return f"{number}-{b}" if unit == other_unit else f"{a} to {b}"


def dry_run(command: str, cases: list, args) -> str:
    """What `stratbench run --dry-run` (or compare's) prints: the cases counted per op, strategy
    and direction (every case with --verbose), and an estimate of the time from the measuring
    budgets. Reads no result and loads no TensorFlow."""
    sample_s, max_rounds = _sampling(args)
    processes, min_rounds, budget = args.processes, args.min_rounds, args.group_budget
    rounds = f"{min_rounds} rounds" if max_rounds <= min_rounds else \
        f"{min_rounds}-{max_rounds} rounds, stopping within {budget:g} s of rounds after the first {min_rounds},"
    envs = list(dict.fromkeys(c.env for c in cases))
    devices = list(dict.fromkeys(c.device for c in cases))
    lines = [f"stratbench {command} --dry-run: {len(cases)} cases, on {', '.join(devices)}, environment setting"
             f"{'s' if len(envs) > 1 else ''} {', '.join(envs)}; nothing is measured"]
    if not args.devices:
        lines.append("  devices: CPU only, assumed (a dry run does not load TensorFlow to look for a GPU; "
                     "--devices CPU,GPU counts the GPU's cases too)")
    directions = [d for d in DIRECTIONS if any(c.direction == d for c in cases)]
    counts = {}
    for c in cases:
        counts.setdefault((c.op, c.strategy), {}).setdefault(c.direction, 0)
        counts[(c.op, c.strategy)][c.direction] += 1
    width = max(len(op) for op, _ in counts) + 2, max(len(s) for _, s in counts) + 2
    lines.append("  cases per op, strategy and direction:")
    lines.append("    " + "op".ljust(width[0]) + "strategy".ljust(width[1]) + "  ".join(directions))
    for (op, strategy), by_direction in counts.items():
        lines.append("    " + op.ljust(width[0]) + strategy.ljust(width[1])
                     + "  ".join(str(by_direction.get(d, "")).rjust(len(d)) for d in directions))
    if args.verbose:
        lines += ["  the cases:"] + [f"    {c.key}" for c in cases]

    # a group's rounds: one unrecorded round in each process, then min_rounds to max_rounds, each
    # sampling every entry once; after min_rounds the group stops within its budget
    def sampling(entries: int) -> tuple[float, float]:
        low = (processes + min_rounds) * entries * sample_s
        return low, min(low + budget, (processes + max_rounds) * entries * sample_s)

    if command == "run":
        smallest, groups = {}, {}
        for c in cases:  # as stratbench.run groups them (group_key, floor_series), without importing it
            series = (c.env, c.op, c.direction, c.dtype, c.device)
            smallest[series] = min(smallest.get(series, c.size), c.size)
            groups.setdefault(series + (c.shape,), []).append(c)
        # the strategies of a case, and at a series' smallest size each one's call floor too
        spans = [sampling(len(g) * (2 if g[0].size == smallest[k[:5]] else 1)) for k, g in groups.items()]
        pairs = len({(c.env, c.op, c.strategy) for c in cases})
        parts = [
            (f"sampling: {len(groups)} comparison groups, each {rounds} of {sample_s:g} s samples of every "
             "strategy (and its call floor at a series' smallest size)", *map(sum, zip(*spans))),
            (f"setting up {len(cases)} cases (tracing, XLA compiles, calls per sample): "
             f"{CASE_SETUP_S[0]:g}-{CASE_SETUP_S[1]:g} s each", *(len(cases) * t for t in CASE_SETUP_S)),
            (f"verifying {pairs} (op, strategy) pairs against the reference, {processes} at a time",
             *(pairs * t / processes for t in VERIFY_PAIR_S)),
            (f"TensorFlow start-up: {processes} worker processes x ~{TF_START_S:g} s per environment setting",
             *(2 * [len(envs) * processes * TF_START_S])),
        ]
        if not args.no_roofline:
            parts.append(("the memory roofline (--no-roofline skips it)", ROOFLINE_S / 2, ROOFLINE_S * 1.5))
        if not args.no_capabilities:
            parts.append(("the capability matrix (--no-capabilities skips it)", CAPABILITIES_S / 2, CAPABILITIES_S * 1.5))
        not_counted = ("a strategy too slow for a case can take up to --case-budget "
                       f"({args.case_budget:g} s) before it is recorded too_slow; cases already stored in the run "
                       "folder are resumed, not measured again")
    else:
        spans = [sampling(2) for _ in cases]  # OLD and NEW of each case
        parts = [
            (f"sampling: {len(cases)} cases at OLD and NEW, each {rounds} of {sample_s:g} s samples of both",
             *map(sum, zip(*spans))),
            (f"setting up {len(cases)} cases at each commit: {CASE_SETUP_S[0]:g}-{CASE_SETUP_S[1]:g} s each",
             *(2 * len(cases) * t for t in CASE_SETUP_S)),
            (f"TensorFlow start-up: 2 x {processes} worker processes x ~{TF_START_S:g} s per environment setting, "
             "started side by side", *(2 * [len(envs) * 2 * processes * TF_START_S / 2])),
            (f"two git worktrees, and the compiled op built at each commit whose kernels are new to the cache "
             f"(~{BUILD_S:g} s each)", 5.0, 2 * BUILD_S),
        ]
        not_counted = (f"each case screened as changed is measured again in fresh workers for up to "
                       f"{args.confirm_budget:g} s (--confirm-budget); a case too slow for --case-budget "
                       f"({args.case_budget:g} s) takes up to that")
    low, high = sum(p[1] for p in parts), sum(p[2] for p in parts)
    lines.append(f"estimated time: {_span(low, high)} (an ESTIMATE from the measuring budgets and typical "
                 "set-up times on a 2-core machine, not a measurement):")
    lines += [f"  {_span(lo, hi)}: {what}" for what, lo, hi in parts]
    lines.append(f"  not counted: {not_counted}")
    return "\n".join(lines)


def _dry_run(args, cases) -> int:
    print(dry_run(args.command, cases, args))
    return 0


def _extremes(cases):
    """Each series' smallest and largest size only."""
    by_series = {}
    for c in cases:
        by_series.setdefault(c.series, []).append(c)
    keep = {k for series in by_series.values() for k in (min(series, key=lambda c: c.size).key,
                                                         max(series, key=lambda c: c.size).key)}
    return [c for c in cases if c.key in keep]


def cmd_compare(args) -> int:
    from stratbench import compare, environment, matrix

    cases = matrix.cases(ops=args.ops, strategies=args.strategies, directions=args.directions or list(matrix.KERNEL_DIRECTIONS),
                         dtypes=args.dtypes, devices=args.devices or ["CPU"], sizes=args.sizes, shapes=args.shapes,
                         envs=args.env)
    if not (args.sizes or args.shapes):
        cases = _extremes(cases)
    if not cases:
        print("stratbench compare: no case selected; `stratbench compare --help` lists the choices", file=sys.stderr)
        return 2
    if args.dry_run and not args.changed:  # before git: no worktree, no build
        return _dry_run(args, cases)
    try:  # where each side's code comes from, and (--changed) what of it differs: git alone, no worktree yet
        repos = compare.repositories(args.old, args.new)
        selection = compare.changed(repos, args.old, args.new) if args.changed else None
    except (compare.CompareError, UserModuleError) as e:
        print(f"stratbench compare: {e}", file=sys.stderr)
        return 2
    for line in compare.sources(repos, args.old, args.new):
        print(f"stratbench compare: {line}", file=sys.stderr)
    lines = None
    if selection is not None:
        lines = selection.lines(list(dict.fromkeys(c.op for c in cases)))
        cases = [c for c in cases if selection.selects(c)]
        print(f"stratbench compare --changed: {len({c.op for c in cases})} op(s) selected, "
              f"{len(cases)} cases:\n" + "\n".join(lines), file=sys.stderr)
        if not cases:
            print(f"stratbench compare: nothing measured changed between {args.old} and {args.new}: no case to compare",
                  file=sys.stderr)
    if args.dry_run:  # --changed's selection, then no worktree, no build
        return _dry_run(args, cases) if cases else 0
    if cases:
        print(f"stratbench compare: {len(cases)} cases, {args.old} -> {args.new}, {args.processes} worker processes per "
              "side, rounds in a random order", file=sys.stderr)
    started = time.perf_counter()
    try:
        table, samples = compare.compare_commits(args.old, args.new, cases, _settings(args), args.processes,
                                                 args.threshold, _progress(), args.verbose,
                                                 confirm_budget_s=args.confirm_budget, repos=repos) \
            if cases else (compare_report.empty_table(), compare_report.empty_table())
    except compare.CompareError as e:
        print(f"stratbench compare: {e}", file=sys.stderr)
        return 2
    doc = compare_report.document(table, args.old, args.new, args.threshold, environment.capture(), repos, lines,
                                  args.fail_on, time.perf_counter() - started)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        _with_machine(table).to_csv(args.out / "compare.csv", index=False)
        samples.to_csv(args.out / "samples.csv.gz", index=False, compression="gzip")
        compare_report.write(args.out, doc)
    print(compare_report.render(args.format, table, doc, args.out), end="")
    return doc["exit_status"]


def cmd_noise(args) -> int:
    from stratbench import compare, matrix

    op = args.op
    shape = args.size or max(matrix.sizes_for(op), key=lambda s: math.prod(s))
    case = matrix.Case(op, args.strategy, args.direction, "float32", "CPU", shape, args.env)
    print(f"stratbench noise: {case.key} against itself and with 10% and 20% more elements, {args.reruns} reruns "
          "in fresh worker processes", file=sys.stderr)

    csv, samples_csv = noise_paths(args.out, case) if args.out else (None, None)

    def written(table, samples):  # after every rerun: Ctrl-C keeps the reruns done
        args.out.mkdir(parents=True, exist_ok=True)
        _with_machine(table).to_csv(csv, index=False)
        samples.to_csv(samples_csv, index=False, compression="gzip")

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
        print(f"written to {csv} and {samples_csv}", file=sys.stderr)
    return 0


def size_label(shape) -> str:
    """A size as file names carry it: 16000000 -> 16e6, 1000 -> 1e3, 4096x2048 as is."""
    if len(shape) != 1:
        return "x".join(map(str, shape))
    n = shape[0]
    digits = str(n)
    zeros = len(digits) - len(digits.rstrip("0"))
    return f"{digits[:-zeros]}e{zeros}" if zeros >= 3 else digits


def noise_paths(out: pathlib.Path, case) -> tuple[pathlib.Path, pathlib.Path]:
    """Where `stratbench noise --out OUT` writes its table and every sample: OUT/noise_CASE.csv and
    OUT/noise_CASE.samples.csv.gz, CASE as op_strategy_direction_size[_setting], e.g.
    noise_spiky_xla_forward_16e6 (what `stratbench report --publish` reads under results/noise)."""
    name = "_".join([case.op, case.strategy, case.direction, size_label(case.shape)]
                    + ([case.env] if case.env != "default" else []))
    return out / f"noise_{name}.csv", out / f"noise_{name}.samples.csv.gz"


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
            out.mkdir(parents=True, exist_ok=True)
            table.to_csv(out / "in_model.csv", index=False)
    cells = inmodel.table(table)
    text = (f"Cost of one application inside a step (the op applied {args.applications} times to different inputs "
            "in one step, less the step with one, per paired round; median), and in brackets the call of that "
            f"one-application step from Python. {tables.caption(table.iloc[0].to_dict() | {'setting': 'default'})}")
    with pd_options():
        print(cells.to_string())
    print("\n" + text)
    if out:
        (out / "in_model.md").write_text(text + "\n\n" + tables.markdown(cells) + "\n")
        print(f"written to {out / 'in_model.csv'} and {out / 'in_model.md'}")
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
        raise argparse.ArgumentTypeError(f"takes one size, got {len(sizes)} ({text}): run the command once per size")
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


OP_MODULE_HELP = (f"your own op: a module or .py file declaring SPEC = impls.spec.OpSpec(...) (repeatable; "
                  f"added to ${op_registry.ENV_VARIABLE} for workers)")
STRATEGY_MODULE_HELP = ("your own strategy: a module or .py file declaring STRATEGY = Strategy(...) (repeatable; "
                        f"added to ${strategy_registry.ENV_VARIABLE})")
# the environment settings that --env names, after the options of the commands that take it
ENV_EPILOG = "Environment settings (--env): " + "; ".join(f"{name}: {text}" for name, text in ENV_HELP.items()) + "."
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
                        help=f"seconds one sample should last; calls per sample follow (default: {sample_time:g})")
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
                        help="worker processes a group's rounds alternate between, 1 to 8 (default: 2)")
    parser.add_argument("--case-budget", type=_positive, default=case_budget,
                        help=f"a case whose samples cannot fit in this many seconds is recorded too_slow "
                             f"(default: {case_budget:g})")
    return parser


def _detecting() -> argparse.ArgumentParser:
    """The change detector's rule, shared by compare and noise (noise checks compare's detector)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threshold", type=_positive, default=THRESHOLD,
                        help=f"a change smaller than this is reported unchanged; a change's interval must also "
                             f"exclude 1 ± {MARGIN * 100:g}%% (default: {THRESHOLD:g})")
    parser.add_argument("--confirm-budget", type=_positive, default=CONFIRM_BUDGET_S,
                        help="seconds of rounds a screened case gets when measured again in fresh workers, "
                             f"instead of --group-budget (default: {CONFIRM_BUDGET_S:g})")
    return parser


def _add_ops_and_strategies(parser, ops, strategies, every: bool) -> None:
    """--ops (--op) and --strategies (--strategy); `every`: their defaults are the full lists (else
    None, which the case matrix reads as every one)."""
    parser.add_argument("--ops", "--op", type=_names("op", ops), default=list(ops) if every else None,
                        help=f"comma-separated ops (default: all of {','.join(ops)})")
    parser.add_argument("--strategies", "--strategy", type=_names("strategy", strategies),
                        default=list(strategies) if every else None,
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
    selection.add_argument("--directions", "--direction", type=_names("direction", DIRECTIONS),
                           help="comma-separated: forward (y), backward (dx from x and dy), forward_backward (both), "
                                "train_step (default: all)")
    selection.add_argument("--dtypes", "--dtype", type=_names("dtype", FLOAT_DTYPES), default=["float32"],
                           help=f"comma-separated dtypes, of {', '.join(FLOAT_DTYPES)} (default: float32)")
    selection.add_argument("--devices", "--device", type=_names("device", DEVICES),
                           help="comma-separated: CPU, GPU (default: every device present); an absent device's "
                                "cases are recorded as skipped")
    selection.add_argument("--sizes", "--size", type=_sizes,
                           help="element counts of the elementwise ops, e.g. 1e3,1e6,1.6e7 (default: each op's, "
                                "1e3 to 1.6e7)")
    selection.add_argument("--shapes", "--shape", type=_shapes,
                           help="RxC shapes of the ops along an axis, e.g. 1024x1024,4096x2048 (default: each "
                                "op's, 128x128 to 4096x2048)")
    selection.add_argument("--env", type=_names("environment setting", tuple(ENV_SETTINGS)), default=["default"],
                           help="comma-separated environment settings (listed below), each measured in workers of "
                                "its own (default: default)")
    selection.add_argument("--dry-run", action="store_true",
                           help="print the cases it would measure and an estimate of the time, then stop "
                                "(no TensorFlow: fast)")

    run = sub.add_parser(
        "run", parents=[common, selection, _measuring(sample_time=0.02, group_budget=8.0, case_budget=30.0)],
        epilog=ENV_EPILOG,
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
            "fraction of the memory roofline (a compiled STREAM-like kernel with the case's reads, writes and "
            "footprint, timed in the group's rounds: a paired ratio; above 1.05 is flagged as a defect), whether the case "
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
    run.add_argument("--machine", help="machine name for the results folder (default: this machine's identity, "
                                      "e.g. intel-xeon-amx-2cpu-24gib-nogpu: `stratbench machine`)")
    run.add_argument("--fresh", action="store_true", help="start a new run instead of resuming this commit's")
    run.add_argument("--baseline", default=BASELINE, choices=STRATEGIES,
                     help="strategy the speedups in the table are relative to (default: native, eager)")
    run.add_argument("--case-timeout", type=_positive, default=300.0,
                     help="a case still running after this many seconds is killed and recorded (default: 300)")
    run.add_argument("--no-capabilities", action="store_true",
                     help="skip the capability matrix (correct under XLA, SavedModel, Keras, threads...; ~3 min)")
    run.add_argument("--no-roofline", action="store_true",
                     help="skip the memory roofline (the machine's bandwidth at the start, an entry in each group's "
                          "rounds): no roofline fractions, the other figures as usual")
    run.add_argument("--no-report", action="store_true", help="skip writing the report (figures and tables)")
    run.set_defaults(func=cmd_run)

    compare = sub.add_parser(
        "compare", parents=[common, selection, _measuring(sample_time=0.1, group_budget=3.0, case_budget=10.0),
                            _detecting()],
        epilog=ENV_EPILOG,
        help="is a commit slower? A against B, paired rounds, a verdict per case",
        description=(
            "Builds OLD and NEW side by side (git worktrees, each with its own compiled op), runs each in "
            "worker processes of its own, and samples every selected case at both commits in rounds, in a "
            "random order each round, alternating the processes. Per case: the ratio NEW/OLD (Hodges-Lehmann "
            "estimate of the per-round ratios) with its 95% interval, and a verdict: "
            f"{compare_rule(THRESHOLD)} (the percentages: --threshold), the second pass lasting --confirm-budget "
            "seconds; else unchanged. Default cases: every op, "
            "strategy and kernel direction at each op's smallest and largest size. "
            "Exit status: 1 when a case is slower (--fail-on changed: slower or faster; never: 0) or when no "
            "case could be measured; 2 for a usage error; else 0. "
            "Where the code comes from: the harness is this checkout's; stratbench's ops and strategies come "
            "from each commit's worktree, and so does a --op-module or --strategy-module given as a path, from "
            "its own git repository (same relative path; then OLD and NEW are commits of that repository, "
            "and stratbench's own ops are this checkout's on both sides). NEW (or OLD) may be . : the working "
            "tree with its uncommitted changes, copied (your files and index are not touched). "
            "--changed measures only the ops whose code differs: an op's folder impls/ops/OP/ or a user's "
            "module file selects its ops, impls/strategies/S.py strategy S, impls/kernels/ custom_op, any other "
            "file of impls/ every op; the harness (stratbench/), tests, docs and results select nothing."
        ),
    )
    compare.add_argument("old", help="the commit to compare against (hash, branch, tag, HEAD~1), or . (the working tree)")
    compare.add_argument("new", help="the commit to judge, or . (the working tree, uncommitted changes included)")
    compare.add_argument("--out", type=pathlib.Path,
                         help="write compare.csv, samples.csv.gz, compare.md and compare.json into this folder")
    compare.add_argument("--format", choices=compare_report.FORMATS, default="text",
                         help="what is printed: text (default), md (as compare.md) or json (as compare.json)")
    compare.add_argument("--fail-on", choices=compare_report.FAIL_ON, default="slower",
                         help="exit 1 when a case is slower (default), slower or faster (changed), or never")
    compare.add_argument("--changed", action="store_true",
                         help="only the ops whose code differs between OLD and NEW, each printed with why")
    compare.set_defaults(func=cmd_compare)

    noise = sub.add_parser(
        "noise", parents=[common, _measuring(sample_time=0.1, group_budget=3.0, case_budget=10.0), _detecting()],
        epilog=ENV_EPILOG,
        help="the smallest change this machine resolves: a case against itself and with 10%% and 20%% more elements",
        description=(
            "Checks the change detector of `stratbench compare` on this machine with changes of known size: "
            "one case against itself (A/A: must come out unchanged) and against the same case with 10% and "
            "20% more elements (memory-bound: about 1.1x and 1.2x slower), in paired rounds, each rerun in "
            "fresh worker processes. Prints each ratio with its interval and verdict, how often each change "
            "was flagged, and the smallest change resolved here."
        ),
    )
    noise.add_argument("--op", "--ops", default="spiky", type=_one("op", ops), metavar="OP",
                       help=f"the op, one of {', '.join(ops)} (default: spiky, elementwise)")
    noise.add_argument("--strategy", "--strategies", default="xla", type=_one("strategy", STRATEGIES), metavar="STRATEGY",
                       help=f"the strategy, one of {', '.join(STRATEGIES)} (default: xla)")
    noise.add_argument("--direction", "--directions", default="forward", type=_one("direction", DIRECTIONS),
                       metavar="DIRECTION", help=f"the direction, one of {', '.join(DIRECTIONS)} (default: forward)")
    noise.add_argument("--size", "--sizes", type=_one_size, help="the case's size (default: the op's largest)")
    noise.add_argument("--env", default="default", type=_one("environment setting", tuple(ENV_SETTINGS)), metavar="ENV",
                       help="the environment setting (listed below; default: default)")
    noise.add_argument("--reruns", type=_count, default=3, help="reruns, each in fresh workers (default: 3)")
    noise.add_argument("--out", type=pathlib.Path, help="also write OUT/noise_CASE.csv (after every rerun) and every "
                                                        "sample beside it, OUT/noise_CASE.samples.csv.gz")
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
            "with its 95% interval. With --out, writes OUT/in_model.csv (after every group) and a Markdown "
            "table, OUT/in_model.md."
        ),
    )
    _add_ops_and_strategies(in_model, ops, STRATEGIES, every=True)
    in_model.add_argument("--directions", "--direction", type=_names("direction", ("forward", "forward_backward")),
                          default=["forward", "forward_backward"],
                          help="comma-separated: forward, forward_backward (default: both)")
    in_model.add_argument("--sizes", "--size", type=_sizes, default=[(1000,), (10000,), (100000,)],
                          help="element counts (an op along an axis runs on [n/100, 100]; default: 1e3,1e4,1e5)")
    in_model.add_argument("--applications", type=int, default=16, choices=range(2, 257), metavar="K",
                          help="applications of the op in one step, 2 to 256 (default: 16)")
    in_model.add_argument("--out", type=pathlib.Path, help="also write OUT/in_model.csv (after every group) and the "
                                                           "table as OUT/in_model.md")
    in_model.set_defaults(func=cmd_in_model)

    report = sub.add_parser(
        "report", parents=[common],
        help="figures and tables from stored results (run at the end of `stratbench run` too)",
        description=(
            "Reads a `stratbench run` directory, an asv results folder (results/asv) or a pytest-benchmark "
            "JSON and writes, per op: throughput against size with 95% interval bands, the memory roofline and the call floors, speedup "
            "at the largest size, TF allocator and process peak memory, compile time (PNG and SVG); per op "
            "and direction a Markdown and a CSV table with strategies as columns; the MLP training step. "
            "Maintainers: --publish also rewrites results/README.md and the headline block of the top-level "
            "README.md from this run; it is the project's publish step, not for users' own runs."
        ),
    )
    report.add_argument("source", nargs="?", type=pathlib.Path,
                        help="results to read (default: the newest run directory under results/)")
    report.add_argument("--out", type=pathlib.Path,
                        help="folder for the figures and tables (default: SOURCE/report for a run directory)")
    report.add_argument("--baseline", default=BASELINE, choices=STRATEGIES,
                        help="strategy the speedups are relative to (default: native)")
    report.add_argument("--publish", action="store_true",
                        help="maintainers: rewrite results/README.md and the README's headline from this run (the "
                             "project's publish step; not for your own runs)")
    report.add_argument("--releases", action="store_true",
                        help="compare TensorFlow releases instead: asv results of one commit under "
                             "asv.releases.conf.json (releases.md, releases.csv, a figure)")
    report.add_argument("--machines", action="store_true",
                        help="compare machines instead: SOURCE is a folder of runs; each machine type's newest "
                             "run side by side (SOURCE/machines: machines.md, .csv, a figure)")
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
    recommend.add_argument("--op", "--ops", required=True, type=_one("op", ops), metavar="OP",
                           help=f"the op, one of {', '.join(ops)}")
    recommend.add_argument("--size", "--sizes", required=True, type=_one_size,
                           help="an element count for an elementwise op (16e6), a RxC shape for an op along "
                                "an axis (4096x2048)")
    recommend.add_argument("--direction", "--directions", default="forward_backward", type=_one("direction", DIRECTIONS),
                           metavar="DIRECTION",
                           help="forward, backward, forward_backward (default) or train_step (size = batch)")
    recommend.add_argument("--device", "--devices", default="CPU", type=_one("device", DEVICES), metavar="DEVICE",
                           help="the device the case ran on: CPU (default) or GPU")
    recommend.add_argument("--dtype", "--dtypes", default="float32", type=_one("dtype", FLOAT_DTYPES), metavar="DTYPE",
                           help=f"the dtype, one of {', '.join(FLOAT_DTYPES)} (default: float32)")
    recommend.add_argument("--needs", type=_needs, default=[],
                           help="comma-separated: xla (jit_compile), savedmodel, keras, gpu, threads, "
                                "thread_scaling, eager, tf_function")
    recommend.add_argument("--env", type=_names("environment setting", tuple(ENV_SETTINGS)),
                           help="comma-separated environment settings to choose among, each (strategy, setting) a "
                                "candidate (default: every one the stored run measured)")
    recommend.add_argument("--by", choices=("time", "memory"), default="time",
                           help="rank by time (default) or by memory per element, then time (forward_backward: kept "
                                "for the backward; else the peak above the inputs)")
    recommend.add_argument("--max-memory-per-element", type=_positive, metavar="BYTES",
                           help="exclude strategies needing more bytes per element (as --by memory counts), or "
                                "whose memory was not measured; e.g. 8 for float32 forward_backward")
    recommend.add_argument("--machine",
                           help="answer from this machine's newest run: its identity or host name (default: this "
                                "machine's type, else the newest run, saying how it differs)")
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
    if args.command in ("run", "compare", "noise", "in-model") and args.out:
        problem = _unwritable(args.out)
        if not problem and args.out.suffix == ".csv" and not args.out.is_dir():
            problem = "--out is a folder: the files are named in it (see --help)"
        if problem:
            print(f"stratbench {args.command}: --out {args.out}: {problem}", file=sys.stderr)
            return 2
    # report, recommend and agree only read files; a dry run only counts cases
    if args.command in ("run", "verify", "build", "compare", "noise", "in-model") and not getattr(args, "dry_run", False):
        _import_tensorflow(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nstratbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
