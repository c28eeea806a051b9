"""`stratbench verify`: every (op, strategy) against the op's float64 NumPy reference."""

from __future__ import annotations

import sys

from stratbench.commands import options, present

NEEDS_TENSORFLOW = True


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
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
    options.add_ops_and_strategies(parser, every=True)
    parser.set_defaults(func=main)


def main(args) -> int:
    from tqdm import tqdm

    import impls
    from stratbench import verify

    pairs = [(op, s) for op in args.ops for s in impls.strategies_for(op) if s in args.strategies]
    if not pairs:
        return present.error("verify", "no strategy in --strategies implements the ops in --ops")
    table = verify.verify(pairs, progress=lambda it: tqdm(it, desc="verify", unit="impl", file=sys.stderr, leave=False))
    print(verify.format_table(table))
    ok = verify.passed(table)
    print("\nverify:", "every available strategy matches the reference" if ok else "FAILED (see the table above)")
    return 0 if ok else 1
