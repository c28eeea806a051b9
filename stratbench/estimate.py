"""What `stratbench run --dry-run` (and compare's) prints: the cases counted per op, strategy and
direction, and an estimate of the time from the measuring budgets.  Reads no result and loads
no TensorFlow."""

from __future__ import annotations

from stratbench.matrix import DIRECTIONS

# What the estimate assumes, beyond the measuring options (the figures of `stratbench run` on a
# 2-core machine): a worker process's TensorFlow start-up, each case's setting up (tracing, XLA
# compiling, choosing calls per sample, its memory), a correctness check of one (op, strategy)
# pair, the memory roofline, the capability matrix, and a build of the compiled op.
TF_START_S = 5.0
CASE_SETUP_S = (0.2, 1.0)
VERIFY_PAIR_S = (0.5, 2.0)
ROOFLINE_S = 60.0
CAPABILITIES_S = 180.0
BUILD_S = 45.0


def sampling(options, quick: bool = False) -> tuple[float, int]:
    """(seconds a sample lasts, rounds at most): --quick takes 10 ms samples and stops at --min-rounds."""
    return (0.01 if quick else options.sample_time), (options.min_rounds if quick else options.max_rounds)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def span(low: float, high: float) -> str:
    """'1.2-8.7 min', '45 s to 2.1 min', or one figure where both round alike."""
    a, b = duration(low), duration(high)
    if a == b:
        return a
    (number, unit), (_, other_unit) = a.split(), b.split()
    return f"{number}-{b}" if unit == other_unit else f"{a} to {b}"


def case_counts(command: str, cases: list, args) -> list[str]:
    """The header, and the cases per op, strategy and direction (each case with --verbose)."""
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
    return lines


def _sampling_span(args, sample_s: float, max_rounds: int, entries: int) -> tuple[float, float]:
    """A group's rounds: one unrecorded round in each process, then min_rounds to max_rounds, each
    sampling every entry once; after min_rounds the group stops within its budget."""
    low = (args.processes + args.min_rounds) * entries * sample_s
    return low, min(low + args.group_budget, (args.processes + max_rounds) * entries * sample_s)


def _run_parts(cases: list, args, sample_s: float, max_rounds: int, rounds: str) -> tuple[list, str]:
    envs = {c.env for c in cases}
    smallest, groups = {}, {}
    for c in cases:  # as stratbench.run groups them (group_key, floor_series), without importing it
        series = (c.env, c.op, c.direction, c.dtype, c.device)
        smallest[series] = min(smallest.get(series, c.size), c.size)
        groups.setdefault(series + (c.shape,), []).append(c)
    # the strategies of a case, and at a series' smallest size each one's call floor too
    spans = [_sampling_span(args, sample_s, max_rounds, len(g) * (2 if g[0].size == smallest[k[:5]] else 1))
             for k, g in groups.items()]
    pairs = len({(c.env, c.op, c.strategy) for c in cases})
    parts = [
        (f"sampling: {len(groups)} comparison groups, each {rounds} of {sample_s:g} s samples of every "
         "strategy (and its call floor at a series' smallest size)", *map(sum, zip(*spans))),
        (f"setting up {len(cases)} cases (tracing, XLA compiles, calls per sample): "
         f"{CASE_SETUP_S[0]:g}-{CASE_SETUP_S[1]:g} s each", *(len(cases) * t for t in CASE_SETUP_S)),
        (f"verifying {pairs} (op, strategy) pairs against the reference, {args.processes} at a time",
         *(pairs * t / args.processes for t in VERIFY_PAIR_S)),
        (f"TensorFlow start-up: {args.processes} worker processes x ~{TF_START_S:g} s per environment setting",
         *(2 * [len(envs) * args.processes * TF_START_S])),
    ]
    if not args.no_roofline:
        parts.append(("the memory roofline (--no-roofline skips it)", ROOFLINE_S / 2, ROOFLINE_S * 1.5))
    if not args.no_capabilities:
        parts.append(("the capability matrix (--no-capabilities skips it)", CAPABILITIES_S / 2, CAPABILITIES_S * 1.5))
    not_counted = ("a strategy too slow for a case can take up to --case-budget "
                   f"({args.case_budget:g} s) before it is recorded too_slow; cases already stored in the run "
                   "folder are resumed, not measured again")
    return parts, not_counted


def _compare_parts(cases: list, args, sample_s: float, max_rounds: int, rounds: str) -> tuple[list, str]:
    envs = {c.env for c in cases}
    spans = [_sampling_span(args, sample_s, max_rounds, 2) for _ in cases]  # OLD and NEW of each case
    parts = [
        (f"sampling: {len(cases)} cases at OLD and NEW, each {rounds} of {sample_s:g} s samples of both",
         *map(sum, zip(*spans))),
        (f"setting up {len(cases)} cases at each commit: {CASE_SETUP_S[0]:g}-{CASE_SETUP_S[1]:g} s each",
         *(2 * len(cases) * t for t in CASE_SETUP_S)),
        (f"TensorFlow start-up: 2 x {args.processes} worker processes x ~{TF_START_S:g} s per environment setting, "
         "started side by side", *(2 * [len(envs) * 2 * args.processes * TF_START_S / 2])),
        (f"two git worktrees, and the compiled op built at each commit whose kernels are new to the cache "
         f"(~{BUILD_S:g} s each)", 5.0, 2 * BUILD_S),
    ]
    not_counted = (f"each case screened as changed is measured again in fresh workers for up to "
                   f"{args.confirm_budget:g} s (--confirm-budget); a case too slow for --case-budget "
                   f"({args.case_budget:g} s) takes up to that")
    return parts, not_counted


def dry_run(command: str, cases: list, args) -> str:
    """The dry run's text for `command` (run or compare) over `cases`, with the parsed options `args`."""
    sample_s, max_rounds = sampling(args, getattr(args, "quick", False))
    rounds = f"{args.min_rounds} rounds" if max_rounds <= args.min_rounds else \
        f"{args.min_rounds}-{max_rounds} rounds, stopping within {args.group_budget:g} s of rounds after the first " \
        f"{args.min_rounds},"
    lines = case_counts(command, cases, args)
    parts, not_counted = (_run_parts if command == "run" else _compare_parts)(cases, args, sample_s, max_rounds, rounds)
    low, high = sum(p[1] for p in parts), sum(p[2] for p in parts)
    lines.append(f"estimated time: {span(low, high)} (an ESTIMATE from the measuring budgets and typical "
                 "set-up times on a 2-core machine, not a measurement):")
    lines += [f"  {span(lo, hi)}: {what}" for what, lo, hi in parts]
    lines.append(f"  not counted: {not_counted}")
    return "\n".join(lines)
