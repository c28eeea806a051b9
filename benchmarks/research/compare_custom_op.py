"""The compiled op against its rivals, as ratios measured pair by pair in one process.

    python benchmarks/research/compare_custom_op.py [--rounds 15] [--ops softmax] [--threads 1]
                                                   [--out results/custom_op_cpu.csv]

Each row compares custom_op with one rival on one case.  Both run in their production
mode (custom_op and builtin inside one tf.function, xla under jit_compile=True, graph
in a tf.function), fed the same x and a real upstream dy, sampled in rounds in a random
order with the memory roofline of the case's traffic (stratbench/roofline.py, Paired);
each ratio is the paired estimate with its 95% interval, and each side's fraction of the
roofline is one too.  `tf_copy_op` is a compiled op that copies x (for a backward, writes
x + dy; for forward_backward, both ops) into the fresh output TF hands it, by the
elementwise kernels' own path (impls/kernels/floor.cc): what any compiled op of that
traffic can reach; `floor` is an empty tf.function called the
same way (the per-call overhead every tf.function pays).  It runs in the
shell's environment, which the header line names (oneDNN, CPU allocator): compare
settings by running it under each, e.g. with TF_ENABLE_ONEDNN_OPTS=0 and
TF_CPU_ALLOCATOR_USE_BFC=true.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

import impls  # noqa: E402
from impls.strategies import custom_op  # noqa: E402
from stratbench import environment, roofline, timing  # noqa: E402
from stratbench.matrix import Case  # noqa: E402
from stratbench.measurement import Rounds, sample_rounds  # noqa: E402

SETTINGS = timing.Settings(target_sample_s=0.05)  # calls per sample: about 50 ms of them

class Comparison(NamedTuple):
    op: str
    shape: tuple
    direction: str
    rival: str  # a strategy, "tf_copy_op", "floor", or "last_axis" (custom_op along the last axis)
    target: float | None  # rival time / custom_op time to reach, None to report only
    axis: int = -1
    roofline_target: float | None = None  # custom_op's fraction of the roofline to reach


ELEMENTWISE = ((16_000_000,),)
COMPARISONS = [
    Comparison(op, shape, d, rival, 1.3, roofline_target=0.85)
    for op in ("spiky", "gelu") for shape in ELEMENTWISE
    for d in ("forward", "backward", "forward_backward") for rival in ("xla",)
] + [
    Comparison(op, shape, d, "tf_copy_op", None, roofline_target=0.85)
    for op in ("spiky", "gelu") for shape in ELEMENTWISE for d in ("forward", "backward", "forward_backward")
] + [
    Comparison("softmax", (4096, 2048), d, "tf_copy_op", None, roofline_target=0.75) for d in ("forward", "backward")
] + [
    Comparison("spiky", (1_000,), "forward", "floor", 1 / 1.1),
] + [
    # the softmax targets: 1.3x tf.nn.softmax forward and 2.5x its gradient, 1.5x XLA,
    # 0.75 of the roofline; at 128x128 (call overhead) reported only
    Comparison("softmax", shape, d, rival, target if shape != (128, 128) else None,
               roofline_target=0.75 if shape == (4096, 2048) else None)
    for shape in ((4096, 2048), (16384, 1024), (128, 128))
    for d, builtin_target in (("forward", 1.3), ("backward", 2.5))
    for rival, target in (("builtin", builtin_target), ("xla", 1.5))
] + [
    # the shortest and longest rows, 8M elements each (reported only)
    Comparison("softmax", shape, d, rival, None)
    for shape in ((4_194_304, 2), (128, 65_536))
    for d in ("forward", "backward")
    for rival in ("builtin", "xla")
] + [
    # along the first axis (custom_op in place, down the columns): against the same softmax
    # of the transposed input along its last axis (what the column order costs), and rivals
    Comparison("softmax", (4096, 2048), d, rival, None, axis=0)
    for d in ("forward", "backward") for rival in ("last_axis", "builtin", "xla")
]
OPS = sorted({c.op for c in COMPARISONS})


@tf.autograph.experimental.do_not_convert
def _empty(x, dy):
    return x


def step(strategy, c: Comparison, args) -> timing.Prepared:
    """`strategy` on comparison c, along c.axis, ready to time on (x, dy)."""
    impl = impls.get(c.op, strategy)
    case = Case(c.op, strategy, c.direction, "float32", "CPU", c.shape)
    if c.axis != -1:
        impl = dataclasses.replace(impl, fn=lambda x, axis=-1, fn=impl.fn: fn(x, c.axis))
    return timing.prepare(impl, case, inputs=[args])


def rival_step(c: Comparison, args) -> timing.Prepared:
    if c.rival == "tf_copy_op":  # a forward's traffic: x; a gradient's: x and dy; both: the two ops
        copy, add = (custom_op.copy_op(timing.FLOOR_SPEC, reads) for reads in (1, 2))
        fn = {"forward": lambda x, dy: copy(x), "backward": add, "forward_backward": lambda x, dy: (copy(x), add(x, dy))}
        return timing.Prepared(tf.function(fn[c.direction]), [args], "CPU")
    if c.rival == "floor":
        return timing.Prepared(tf.function(_empty), [args], "CPU")
    if c.rival == "last_axis":
        x, dy = (tf.identity(tf.transpose(t)) for t in args)
        return step("custom_op", c._replace(shape=tuple(x.shape), axis=-1), (x, dy))
    return step(c.rival, c, args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="sample pairs per comparison (default 15)")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table as CSV here")
    parser.add_argument("--ops", default=",".join(OPS), help=f"comma-separated ops to compare (default: {','.join(OPS)})")
    parser.add_argument("--threads", type=int, help="TensorFlow intra-op threads (default: TF's, one per core)")
    args = parser.parse_args(argv)
    ops = args.ops.split(",")
    if unknown := set(ops) - set(OPS):
        parser.error(f"--ops: unknown {', '.join(sorted(unknown))}; accepted: {', '.join(OPS)}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads: {args.threads}; accepted: a positive count")
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    env = environment.capture()
    rows = []
    for c in (c for c in COMPARISONS if c.op in ops):
        case = Case(c.op, "custom_op", c.direction, "float32", "CPU", c.shape)
        inputs = timing.make_inputs(case)
        entries = {"custom_op": step("custom_op", c, inputs), c.rival: rival_step(c, inputs)}
        if case.traffic:
            entries["roofline"] = roofline.Paired(case.traffic)
        calls = {name: timing.warm_up(prepared, SETTINGS)["calls"] for name, prepared in entries.items()}
        measured = sample_rounds(lambda name, round_, process: entries[name].run(calls[name], round_), calls,
                                 Rounds(min_rounds=args.rounds, max_rounds=args.rounds))
        ratio = measured.ratio(c.rival, "custom_op")
        fractions = {name: measured.ratio("roofline", name) if case.traffic else None for name in ("custom_op", c.rival)}
        rows.append({
            "op": c.op, "shape": "x".join(map(str, c.shape)), "axis": c.axis, "direction": c.direction, "vs": c.rival,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or env["cpu_count"],
            "custom_op_ms": 1e3 * measured.median("custom_op"), "rival_ms": 1e3 * measured.median(c.rival),
            "custom_op_ns_per_element": 1e9 * measured.median("custom_op") / case.size,
            "ratio": ratio.value, "ratio_low": ratio.low, "ratio_high": ratio.high, "target": c.target,
            "met": "" if c.target is None else ("yes" if ratio.value >= c.target else "NO"),
            "roofline_ms": 1e3 * measured.median("roofline") if case.traffic else np.nan,
            **{f"{who}_roofline_fraction{end}": getattr(f, part) if f else np.nan
               for who, f in (("custom_op", fractions["custom_op"]), ("rival", fractions[c.rival]))
               for end, part in (("", "value"), ("_low", "low"), ("_high", "high"))},
            "roofline_target": c.roofline_target,
            "roofline_met": "" if c.roofline_target is None or not case.traffic else
                            ("yes" if fractions["custom_op"].value >= c.roofline_target else "NO"),
        })
        print(f"{c.op} {rows[-1]['shape']} axis {c.axis} {c.direction} vs {c.rival}: {ratio.text()}",
              file=sys.stderr)
    table = pd.DataFrame(rows)
    print(f"# {env['cpu_model']} ({env['cpu_isa']}), {env['cpu_count']} cores, TF {env['tensorflow']}, "
          f"oneDNN {'on' if env['onednn'] else 'off'}, {env['cpu_allocator']} CPU allocator, transparent huge pages "
          f"{env['transparent_hugepages'] or 'unknown'}, GLIBC_TUNABLES={env['variables'].get('GLIBC_TUNABLES', '')!r}, "
          f"commit {env['commit'][:10]}"
          f"{' (dirty)' if env['dirty'] else ''}; ratio = rival time / custom_op time, median of "
          f"{args.rounds} paired rounds in a random order, with its 95% interval (vs floor: floor / custom_op); "
          "*_roofline_fraction: roofline time / its time, paired, in the same rounds")
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.assign(machine=env["machine"], cpu_model=env["cpu_model"], cpu_isa=env["cpu_isa"],
                     tensorflow=env["tensorflow"], onednn=env["onednn"], cpu_allocator=env["cpu_allocator"],
                     transparent_hugepages=env["transparent_hugepages"],
                     glibc_tunables=env["variables"].get("GLIBC_TUNABLES", ""),
                     commit=env["commit"]).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
