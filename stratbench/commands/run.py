"""`stratbench run`: the main job, verify then measure every case."""

from __future__ import annotations

import pathlib
import time

import impls
from stratbench.commands import options, present
from stratbench.commands.report import write_report
from stratbench.matrix import BASELINE

NEEDS_TENSORFLOW = True
OUT_FOLDER = True

DESCRIPTION = (
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
)


def add_parser(sub, common) -> None:
    parser = sub.add_parser("run", parents=[common, options.selection(), options.measuring("run")],
                            epilog=options.ENV_EPILOG, description=DESCRIPTION,
                            help="verify, then measure every case: time, throughput, roofline fraction, memory")
    parser.add_argument("--quick", action="store_true",
                        help="smoke mode: the smallest sizes, 10 ms samples (a couple of minutes)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results"),
                        help="results folder (default: results)")
    parser.add_argument("--machine", help="machine name for the results folder (default: this machine's identity, "
                                          "e.g. intel-xeon-amx-2cpu-24gib-nogpu: `stratbench machine`)")
    parser.add_argument("--fresh", action="store_true", help="start a new run instead of resuming this commit's")
    parser.add_argument("--baseline", default=BASELINE, choices=impls.STRATEGIES,
                        help="strategy the speedups in the table are relative to (default: native, eager)")
    parser.add_argument("--case-timeout", type=options.positive, default=300.0,
                        help="a case still running after this many seconds is killed and recorded (default: 300)")
    parser.add_argument("--no-capabilities", action="store_true",
                        help="skip the capability matrix (correct under XLA, SavedModel, Keras, threads...; ~3 min)")
    parser.add_argument("--no-roofline", action="store_true",
                        help="skip the memory roofline (the machine's bandwidth at the start, an entry in each "
                             "group's rounds): no roofline fractions, the other figures as usual")
    parser.add_argument("--no-report", action="store_true", help="skip writing the report (figures and tables)")
    parser.set_defaults(func=main)


def cases(args, devices) -> list:
    from stratbench import matrix

    return matrix.cases(ops=args.ops, strategies=args.strategies, directions=args.directions, dtypes=args.dtypes,
                        devices=devices, quick=args.quick, sizes=args.sizes, shapes=args.shapes, envs=args.env)


def _none_selected(args) -> int:
    return present.error("run", f"no case selected: none of the strategies {', '.join(args.strategies or [])} "
                                f"implements {', '.join(args.ops or [])}; `stratbench run --help` lists what each takes")


def _summary(table, args, seconds: float, directory) -> None:
    """The table of speedups, then what happened to each case."""
    from stratbench import metrics, status
    from stratbench.tables import comparison, steal_line

    present.table(comparison(table, baseline=args.baseline))
    counts = table["status"].value_counts().to_dict()
    print(f"\n{len(table)} cases: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    steal = steal_line(table)
    if steal:
        print(steal)
    print(f"wall time {seconds:.0f} s; results in {directory}")
    print(metrics.MARKS_LEGEND.replace("`", "") + ";  (Nx) speedup over " + args.baseline)
    for _, r in table[~table["status"].isin([status.OK, status.SKIPPED])].iterrows():
        present.log(f"  {r['key']}: {r['status']}: {r['reason']}")


def main(args) -> int:
    from stratbench.estimate import dry_run

    if args.dry_run:  # without TensorFlow, which would be asked for a GPU: only --devices says there is one
        selected = cases(args, args.devices or ["CPU"])
        if not selected:
            return _none_selected(args)
        print(dry_run("run", selected, args))
        return 0
    import tensorflow as tf

    from stratbench import status
    from stratbench.run import Options, run

    devices = args.devices or ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])
    selected = cases(args, devices)
    if not selected:
        return _none_selected(args)
    run_options = Options(cases=selected, out=args.out, settings=options.settings(args, args.quick),
                          case_timeout_s=args.case_timeout, machine=args.machine, fresh=args.fresh,
                          verbose=args.verbose, capabilities=not args.no_capabilities, roofline=not args.no_roofline,
                          processes=args.processes, baseline=args.baseline)
    present.log(f"stratbench run: {len(selected)} cases on {', '.join(devices)}, environment setting "
                f"{', '.join(args.env)}")
    started = time.perf_counter()
    try:
        table, directory = run(run_options, progress=present.progress(), log=present.log)
    except KeyboardInterrupt:
        present.log("\nstratbench run: interrupted; every finished case is saved: rerun the same command to resume")
        return 130
    _summary(table, args, time.perf_counter() - started, directory)
    if not args.no_report:
        write_report(directory, None, args.baseline, publish=False)
    # Failing the gate or breaking is an error; a case too slow for its budget is not.
    broken = table["status"].isin([status.FAILED_VERIFY, status.ERROR, status.CRASHED, status.TIMEOUT, status.OOM]).any()
    return 0 if (table["status"] == status.OK).any() and not broken else 1
