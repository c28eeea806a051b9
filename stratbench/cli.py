"""The `stratbench` command line (also `python -m stratbench`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from impls import OPS, STRATEGIES  # impls imports TensorFlow only when an Impl is made


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
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or '(none given)'}; valid {kind}s: {', '.join(valid)}"
            )
        return names

    return parse


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stratbench",
        description=(
            "Benchmark the ways of writing a custom TensorFlow activation (py_func, native ops, "
            "tf.function, XLA, a compiled op) on two functions, the seed's 'spiky' activation and "
            "a stop-gradient stable softmax, after proving they compute the same values and gradients."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify = sub.add_parser(
        "verify",
        help="check every (op, strategy) against the float64 NumPy reference",
        description=(
            "Run every available (op, strategy) on edge-case inputs in each dtype it claims, eagerly "
            "and inside a tf.function, and compare values and gradients with impls/reference.py. "
            "Prints one row per (op, strategy) with pass/FAIL and the largest float32 error. "
            "Exit status 1 when any check fails or nothing was available to check."
        ),
    )
    verify.add_argument("--ops", type=_names("op", OPS), default=list(OPS),
                        help=f"comma-separated ops to check (default: all of {','.join(OPS)})")
    verify.add_argument("--strategies", type=_names("strategy", STRATEGIES), default=list(STRATEGIES),
                        help=f"comma-separated strategies (default: all of {','.join(STRATEGIES)})")
    verify.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    verify.set_defaults(func=cmd_verify)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _import_tensorflow(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nstratbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
