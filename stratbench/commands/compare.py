"""`stratbench compare`: is a commit slower? OLD against NEW in paired rounds, a verdict per case."""

from __future__ import annotations

import pathlib
import time

from impls.modules import UserModuleError
from stratbench import compare_report
from stratbench.commands import options, present
from stratbench.decision import THRESHOLD, rule

NEEDS_TENSORFLOW = True
OUT_FOLDER = True

DESCRIPTION = (
    "Builds OLD and NEW side by side (git worktrees, each with its own compiled op), runs each in "
    "worker processes of its own, and samples every selected case at both commits in rounds, in a "
    "random order each round, alternating the processes. Per case: the ratio NEW/OLD (Hodges-Lehmann "
    "estimate of the per-round ratios) with its 95% interval, and a verdict: "
    f"{rule(THRESHOLD)} (the percentages: --threshold), the second pass lasting --confirm-budget "
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
)


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
        "compare", parents=[common, options.selection(), options.measuring("compare"), options.detecting()],
        epilog=options.ENV_EPILOG, description=DESCRIPTION,
        help="is a commit slower? A against B, paired rounds, a verdict per case")
    parser.add_argument("old", help="the commit to compare against (hash, branch, tag, HEAD~1), or . (the working tree)")
    parser.add_argument("new", help="the commit to judge, or . (the working tree, uncommitted changes included)")
    parser.add_argument("--out", type=pathlib.Path,
                        help="write compare.csv, samples.csv.gz, compare.md and compare.json into this folder")
    parser.add_argument("--format", choices=compare_report.FORMATS, default="text",
                        help="what is printed: text (default), md (as compare.md) or json (as compare.json)")
    parser.add_argument("--fail-on", choices=compare_report.FAIL_ON, default="slower",
                        help="exit 1 when a case is slower (default), slower or faster (changed), or never")
    parser.add_argument("--changed", action="store_true",
                        help="only the ops whose code differs between OLD and NEW, each printed with why")
    parser.set_defaults(func=main)


def extremes(cases):
    """Each series' smallest and largest size only."""
    by_series = {}
    for c in cases:
        by_series.setdefault(c.series, []).append(c)
    keep = {k for series in by_series.values() for k in (min(series, key=lambda c: c.size).key,
                                                         max(series, key=lambda c: c.size).key)}
    return [c for c in cases if c.key in keep]


def selected_cases(args) -> list:
    from stratbench import matrix

    cases = matrix.cases(ops=args.ops, strategies=args.strategies,
                         directions=args.directions or list(matrix.KERNEL_DIRECTIONS), dtypes=args.dtypes,
                         devices=args.devices or ["CPU"], sizes=args.sizes, shapes=args.shapes, envs=args.env)
    return cases if args.sizes or args.shapes else extremes(cases)


def main(args) -> int:
    from stratbench import changes, compare, environment, results, sources
    from stratbench.estimate import dry_run

    cases = selected_cases(args)
    if not cases:
        return present.error("compare", "no case selected; `stratbench compare --help` lists the choices")
    if args.dry_run and not args.changed:  # before git: no worktree, no build
        print(dry_run("compare", cases, args))
        return 0
    try:  # where each side's code comes from, and (--changed) what of it differs: git alone, no worktree yet
        repos = sources.repositories(args.old, args.new)
        selection = changes.changed(repos, args.old, args.new) if args.changed else None
    except (sources.CompareError, UserModuleError) as e:
        return present.error("compare", str(e))
    for line in sources.sources(repos, args.old, args.new):
        present.log(f"stratbench compare: {line}")
    lines = None
    if selection is not None:
        lines = selection.lines(list(dict.fromkeys(c.op for c in cases)))
        cases = [c for c in cases if selection.selects(c)]
        present.log(f"stratbench compare --changed: {len({c.op for c in cases})} op(s) selected, "
                    f"{len(cases)} cases:\n" + "\n".join(lines))
        if not cases:
            present.log(f"stratbench compare: nothing measured changed between {args.old} and {args.new}: "
                        "no case to compare")
    if args.dry_run:  # --changed's selection, then no worktree, no build
        if cases:
            print(dry_run("compare", cases, args))
        return 0
    if cases:
        present.log(f"stratbench compare: {len(cases)} cases, {args.old} -> {args.new}, {args.processes} worker "
                    "processes per side, rounds in a random order")
    started = time.perf_counter()
    try:
        table, samples = compare.compare_commits(args.old, args.new, cases, options.settings(args), args.processes,
                                                 args.threshold, present.progress(), args.verbose,
                                                 confirm_budget_s=args.confirm_budget, repos=repos) \
            if cases else (compare_report.empty_table(), compare_report.empty_table())
    except sources.CompareError as e:
        return present.error("compare", str(e))
    doc = compare_report.document(table, args.old, args.new, args.threshold, environment.capture(), repos, lines,
                                  args.fail_on, time.perf_counter() - started)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        results.with_machine(table).to_csv(args.out / "compare.csv", index=False)
        samples.to_csv(args.out / "samples.csv.gz", index=False, compression="gzip")
        compare_report.write(args.out, doc)
    print(compare_report.render(args.format, table, doc, args.out), end="")
    return doc["exit_status"]
