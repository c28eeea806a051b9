"""The compiled op against its rivals, as ratios measured pair by pair in one process.

    python benchmarks/scripts/compare_custom_op.py [--rounds 15] [--out results/custom_op_cpu.csv]

Each row compares custom_op with one rival on one case.  Both run in their production
mode (custom_op and builtin inside one tf.function, xla under jit_compile=True, graph
in a tf.function), fed the same x and a real upstream dy.  Samples alternate in order
(A B, B A, ...); a ratio is taken per pair of adjacent samples and the median and IQR
of those ratios are reported, with each side's median time.  `copy` is a plain TF copy
moving the bytes the case must move (the roofline); `floor` is an empty tf.function
called the same way (the per-call overhead every tf.function pays).  It runs in the
shell's environment, which the header line names (oneDNN, CPU allocator): compare
settings by running it under each, e.g. with TF_ENABLE_ONEDNN_OPTS=0 and
TF_CPU_ALLOCATOR_USE_BFC=true.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

import impls  # noqa: E402
from stratbench import environment, timing  # noqa: E402
from stratbench.matrix import Case  # noqa: E402

# (op, shape, direction, rival, target ratio rival_time / custom_op_time, or None to report only)
COMPARISONS = [
    ("spiky", (16_000_000,), d, rival, target)
    for d in ("forward", "backward", "forward_backward")
    for rival, target in (("xla", 1.0), ("graph", 2.0))
] + [
    ("spiky", (16_000_000,), d, "copy", 0.9) for d in ("forward", "backward")
] + [
    ("spiky", (1_000,), "forward", "floor", 1 / 1.1),
] + [
    ("softmax", (4096, 2048), d, rival, target)
    for d, builtin_target in (("forward", 1.2), ("backward", 2.0))
    for rival, target in (("builtin", builtin_target), ("xla", 1.5))
]


@tf.autograph.experimental.do_not_convert
def _empty(x, dy):
    return x


def rival_step(op, shape, direction, rival, args):
    case = Case(op, "custom_op", direction, "float32", "CPU", shape)
    if rival == "copy":
        return timing.copy_step("CPU", case.bytes_moved)
    if rival == "floor":
        return tf.function(_empty), args
    rival_case = Case(op, rival, direction, "float32", "CPU", shape)
    return timing.step_function(impls.get(op, rival), rival_case), args


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="sample pairs per comparison (default 15)")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table as CSV here")
    args = parser.parse_args(argv)

    rows = []
    for op, shape, direction, rival, target in COMPARISONS:
        case = Case(op, "custom_op", direction, "float32", "CPU", shape)
        inputs = timing.make_inputs(case)
        ours = timing.step_function(impls.get(op, "custom_op"), case)
        samples = timing.interleaved({"custom_op": (ours, inputs), rival: rival_step(op, shape, direction, rival, inputs)},
                                     rounds=args.rounds)
        ratios = np.array(samples[rival]) / np.array(samples["custom_op"])
        q1, median, q3 = np.percentile(ratios, [25, 50, 75])
        rows.append({
            "op": op, "shape": "x".join(map(str, shape)), "direction": direction, "vs": rival,
            "custom_op_ms": 1e3 * np.median(samples["custom_op"]), "rival_ms": 1e3 * np.median(samples[rival]),
            "ratio": median, "ratio_iqr": q3 - q1, "target": target,
            "met": "" if target is None else ("yes" if median >= target else "NO"),
        })
        print(f"{op} {rows[-1]['shape']} {direction} vs {rival}: {median:.2f}x (IQR {q3 - q1:.2f})",
              file=sys.stderr)
    table = pd.DataFrame(rows)
    env = environment.capture()
    print(f"# {env['cpu_model']} ({env['cpu_isa']}), {env['cpu_count']} cores, TF {env['tensorflow']}, "
          f"oneDNN {'on' if env['onednn'] else 'off'}, {env['cpu_allocator']} CPU allocator, commit {env['commit'][:10]}"
          f"{' (dirty)' if env['dirty'] else ''}; ratio = rival time / custom_op time, median of "
          f"{args.rounds} interleaved pairs (vs copy: fraction of the copy roofline; vs floor: floor / custom_op)")
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.assign(machine=env["machine"], cpu_model=env["cpu_model"], cpu_isa=env["cpu_isa"],
                     tensorflow=env["tensorflow"], onednn=env["onednn"], cpu_allocator=env["cpu_allocator"],
                     commit=env["commit"]).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
