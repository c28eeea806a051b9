"""`stratbench agree`: do runs of the same command agree on what a user decides by?"""

from __future__ import annotations

import pathlib

from stratbench.commands import options, present

NEEDS_TENSORFLOW = False


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
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
    parser.add_argument("run_a", type=pathlib.Path, metavar="RUN_A", help="a `stratbench run` folder (OUT/MACHINE/RUN_ID)")
    parser.add_argument("run_b", type=pathlib.Path, metavar="RUN_B", help="another run of the same command")
    parser.add_argument("runs", nargs="*", type=pathlib.Path, metavar="RUN", help="more runs: every pair is compared")
    parser.add_argument("--spread", action="store_true",
                        help="also store how far each ratio moved between these A/A runs of one machine type as "
                             "MACHINE/spread.csv, what its reproducibility intervals rest on")
    parser.add_argument("--pool", type=options.count, default=1, metavar="K",
                        help="pool the samples of each K runs in a row and compare the pooled sets "
                             "(default: 1, each run alone)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from stratbench import agree, repro

    runs = [args.run_a, args.run_b, *args.runs]
    missing = [r for r in runs if not r.exists()]
    if missing:
        return present.error("agree", f"{missing[0]} does not exist")
    machines = {r.resolve().parent for r in runs}
    if args.spread and len(machines) > 1:
        return present.error("agree", "--spread takes runs of one machine type, in one folder OUT/MACHINE; got runs "
                                      f"under {', '.join(sorted(map(str, machines)))}")
    try:
        print(agree.text(agree.agree(runs, args.pool)))
        if args.spread:
            print(f"\nstored the between-run spread of {len(runs)} runs: {repro.write_spread(runs, machines.pop())}")
    except ValueError as e:  # results.NotResults included: a folder without a run, a damaged file
        return present.error("agree", str(e))
    return 0
