"""`stratbench noise`: the smallest change this machine resolves, from changes of known size."""

from __future__ import annotations

import math
import pathlib

import impls
from stratbench.commands import options, present
from stratbench.environment import ENV_SETTINGS
from stratbench.matrix import DIRECTIONS, size_label

NEEDS_TENSORFLOW = True
OUT_FOLDER = True


def add_parser(sub, common) -> None:
    ops, strategies = impls.OPS, impls.STRATEGIES
    parser = sub.add_parser(
        "noise", parents=[common, options.measuring("noise"), options.detecting()],
        epilog=options.ENV_EPILOG,
        help="the smallest change this machine resolves: a case against itself and with 10%% and 20%% more elements",
        description=(
            "Checks the change detector of `stratbench compare` on this machine with changes of known size: "
            "one case against itself (A/A: must come out unchanged) and against the same case with 10% and "
            "20% more elements (memory-bound: about 1.1x and 1.2x slower), in paired rounds, each rerun in "
            "fresh worker processes. Prints each ratio with its interval and verdict, how often each change "
            "was flagged, and the smallest change resolved here."
        ),
    )
    parser.add_argument("--op", "--ops", default="spiky", type=options.one("op", ops), metavar="OP",
                        help=f"the op, one of {', '.join(ops)} (default: spiky, elementwise)")
    parser.add_argument("--strategy", "--strategies", default="xla", type=options.one("strategy", strategies),
                        metavar="STRATEGY", help=f"the strategy, one of {', '.join(strategies)} (default: xla)")
    parser.add_argument("--direction", "--directions", default="forward", type=options.one("direction", DIRECTIONS),
                        metavar="DIRECTION", help=f"the direction, one of {', '.join(DIRECTIONS)} (default: forward)")
    parser.add_argument("--size", "--sizes", type=options.one_size, help="the case's size (default: the op's largest)")
    parser.add_argument("--env", default="default", type=options.one("environment setting", tuple(ENV_SETTINGS)),
                        metavar="ENV", help="the environment setting (listed below; default: default)")
    parser.add_argument("--reruns", type=options.count, default=3, help="reruns, each in fresh workers (default: 3)")
    parser.add_argument("--out", type=pathlib.Path, help="also write OUT/noise_CASE.csv (after every rerun) and every "
                                                         "sample beside it, OUT/noise_CASE.samples.csv.gz")
    parser.set_defaults(func=main)


def paths(out: pathlib.Path, case) -> tuple[pathlib.Path, pathlib.Path]:
    """Where `stratbench noise --out OUT` writes its table and every sample: OUT/noise_CASE.csv and
    OUT/noise_CASE.samples.csv.gz, CASE as op_strategy_direction_size[_setting], e.g.
    noise_spiky_xla_forward_16e6 (what `stratbench report --publish` reads under results/noise)."""
    name = "_".join([case.op, case.strategy, case.direction, size_label(case.shape)]
                    + ([case.env] if case.env != "default" else []))
    return out / f"noise_{name}.csv", out / f"noise_{name}.samples.csv.gz"


def main(args) -> int:
    from stratbench import matrix, noise, results
    from stratbench.engine import EntryFailed

    shape = args.size or max(matrix.sizes_for(args.op), key=lambda s: math.prod(s))
    case = matrix.Case(args.op, args.strategy, args.direction, "float32", "CPU", shape, args.env)
    present.log(f"stratbench noise: {case.key} against itself and with 10% and 20% more elements, {args.reruns} "
                "reruns in fresh worker processes")
    csv, samples_csv = paths(args.out, case) if args.out else (None, None)

    def written(table, samples):  # after every rerun: Ctrl-C keeps the reruns done
        args.out.mkdir(parents=True, exist_ok=True)
        results.with_machine(table).to_csv(csv, index=False)
        samples.to_csv(samples_csv, index=False, compression="gzip")

    try:
        table, _ = noise.noise(case, options.settings(args), args.reruns, args.processes, args.threshold,
                                 present.progress(), args.verbose, confirm_budget_s=args.confirm_budget,
                                 written=written if args.out else None)
    except EntryFailed as e:
        return present.error("noise", str(e), 1)
    present.table(table, index=False, float_format=lambda v: f"{v:.3f}")
    print("\n" + noise.resolves(table))
    if args.out:
        present.log(f"written to {csv} and {samples_csv}")
    return 0
