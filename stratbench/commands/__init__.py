"""The `stratbench` command line: one module per command, each with its `add_parser(sub, common)`
and a `main(args)` that hands off to the library and prints what it returns.  A command module
says whether it loads TensorFlow (NEEDS_TENSORFLOW; a dry run never does) and whether its --out
is a results folder checked before anything runs (OUT_FOLDER)."""

from __future__ import annotations

import argparse
import signal
import sys

import impls
from impls.modules import UserModuleError
from stratbench.commands import (agree, build, compare, in_model, machine, noise, options, present, recommend, report,
                                 run, verify)
from stratbench.commands.options import default_settings  # noqa: F401 (the library's way to a command's defaults)
from stratbench.stats import MIN_ROUNDS

# in the order `stratbench --help` lists them
COMMANDS = {"verify": verify, "build": build, "run": run, "compare": compare, "noise": noise, "in-model": in_model,
            "report": report, "machine": machine, "recommend": recommend, "agree": agree}


def build_parser() -> argparse.ArgumentParser:
    ops_text = ", ".join(f"{op} ({impls.spec(op).kind})" for op in impls.OPS)
    parser = argparse.ArgumentParser(
        prog="stratbench",
        description=(
            "Benchmark the ways of writing a custom TensorFlow activation (py_func, native ops, "
            "tf.function, XLA, a compiled op) on every registered op, after proving they compute the same "
            f"values and gradients as the op's float64 NumPy reference. Ops: {ops_text}."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = options.common()
    for module in COMMANDS.values():
        module.add_parser(sub, common)
    return parser


def _problem(parser, args) -> str:
    """What is wrong with the options that argparse cannot see, or ''."""
    min_rounds = getattr(args, "min_rounds", MIN_ROUNDS)
    if min_rounds < MIN_ROUNDS:
        parser.error(f"--min-rounds must be at least {MIN_ROUNDS}: fewer rounds give no 95% interval of the median")
    if getattr(args, "max_rounds", MIN_ROUNDS) < min_rounds:
        parser.error("--max-rounds must be at least --min-rounds")
    if getattr(COMMANDS[args.command], "OUT_FOLDER", False) and args.out:
        problem = options.unwritable(args.out)
        if not problem and args.out.suffix == ".csv" and not args.out.is_dir():
            problem = "--out is a folder: the files are named in it (see --help)"
        if problem:
            return f"--out {args.out}: {problem}"
    return ""


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: worktrees removed, workers closed, files whole


def main(argv=None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    options.add_user_modules(sys.argv[1:] if argv is None else argv)  # in the environment: workers import them too
    try:
        parser = build_parser()
    except UserModuleError as e:
        print(f"stratbench: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    problem = _problem(parser, args)
    if problem:
        return present.error(args.command, problem)
    # report, recommend and agree only read files; a dry run only counts cases
    if COMMANDS[args.command].NEEDS_TENSORFLOW and not getattr(args, "dry_run", False):
        present.import_tensorflow(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nstratbench: interrupted", file=sys.stderr)
        return 130
