"""`stratbench recommend`: the fastest strategy for one case that meets the user's needs."""

from __future__ import annotations

import argparse
import math
import pathlib

import impls
from impls import FLOAT_DTYPES
from stratbench.commands import options, present
from stratbench.environment import ENV_SETTINGS
from stratbench.matrix import DEVICES, DIRECTIONS

NEEDS_TENSORFLOW = False


def needs(text: str):
    from stratbench import recommend

    try:
        return recommend.parse_needs(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(sub, common) -> None:
    ops = impls.OPS
    parser = sub.add_parser(
        "recommend", parents=[common],
        help="the fastest strategy for one case that meets your needs, from stored results",
        description=(
            "Picks, from the newest stored `stratbench run` that measured the case, the fastest strategy "
            "whose capability cells say yes to every --needs, and says by how much it wins, over what, "
            "with what spread, and what it gives up. Example: stratbench recommend --op spiky --size 16e6 "
            "--direction backward --needs savedmodel"
        ),
    )
    parser.add_argument("--op", "--ops", required=True, type=options.one("op", ops), metavar="OP",
                        help=f"the op, one of {', '.join(ops)}")
    parser.add_argument("--size", "--sizes", required=True, type=options.one_size,
                        help="an element count for an elementwise op (16e6), a RxC shape for an op along "
                             "an axis (4096x2048)")
    parser.add_argument("--direction", "--directions", default="forward_backward",
                        type=options.one("direction", DIRECTIONS), metavar="DIRECTION",
                        help="forward, backward, forward_backward (default) or train_step (size = batch)")
    parser.add_argument("--device", "--devices", default="CPU", type=options.one("device", DEVICES), metavar="DEVICE",
                        help="the device the case ran on: CPU (default) or GPU")
    parser.add_argument("--dtype", "--dtypes", default="float32", type=options.one("dtype", FLOAT_DTYPES),
                        metavar="DTYPE", help=f"the dtype, one of {', '.join(FLOAT_DTYPES)} (default: float32)")
    parser.add_argument("--needs", type=needs, default=[],
                        help="comma-separated: xla (jit_compile), savedmodel, keras, gpu, threads, "
                             "thread_scaling, eager, tf_function")
    parser.add_argument("--env", type=options.names("environment setting", tuple(ENV_SETTINGS)),
                        help="comma-separated environment settings to choose among, each (strategy, setting) a "
                             "candidate (default: every one the stored run measured)")
    parser.add_argument("--by", choices=("time", "memory"), default="time",
                        help="rank by time (default) or by memory per element, then time (forward_backward: kept "
                             "for the backward; else the peak above the inputs)")
    parser.add_argument("--max-memory-per-element", type=options.positive, metavar="BYTES",
                        help="exclude strategies needing more bytes per element (as --by memory counts), or "
                             "whose memory was not measured; e.g. 8 for float32 forward_backward")
    parser.add_argument("--machine",
                        help="answer from this machine's newest run: its identity or host name (default: this "
                             "machine's type, else the newest run, saying how it differs)")
    parser.add_argument("--results", type=pathlib.Path, default=pathlib.Path("results"),
                        help="a run directory or a folder of runs (default: results)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from stratbench import recommend

    takes_axis = impls.spec(args.op).takes_axis
    if takes_axis and len(args.size) != 2:
        return present.error("recommend", f"--size for {args.op} is a RxC shape (rows x columns), e.g. 4096x2048; "
                                          f"got {'x'.join(map(str, args.size))}")
    shape = "x".join(map(str, args.size)) if takes_axis else str(math.prod(args.size))
    try:
        print(recommend.recommend(args.results, args.op, args.device, shape, args.direction, args.needs, args.dtype,
                                  args.env, args.by, args.max_memory_per_element, args.machine))
    except recommend.NoResult as e:
        return present.error("recommend", str(e), 1)
    return 0
