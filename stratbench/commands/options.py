"""What the commands' options share: argument types that say what was wrong and what is
accepted, the option groups of several commands, each measuring command's defaults as data,
and the --op-module / --strategy-module variables workers read."""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib

import impls  # imports TensorFlow only when an Impl is made
from impls import FLOAT_DTYPES
from impls import ops as op_registry
from impls import strategies as strategy_registry
from stratbench.decision import CONFIRM_BUDGET_S, MARGIN, THRESHOLD
from stratbench.environment import ENV_HELP, ENV_SETTINGS
from stratbench.estimate import sampling
from stratbench.matrix import DEVICES, DIRECTIONS
from stratbench.stats import MIN_ROUNDS


def names(kind: str, valid: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        chosen = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        bad = [n for n in chosen if n not in valid]
        if bad or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or '(none given)'}; accepted: {', '.join(valid)}"
            )
        return chosen

    return parse


def one(kind: str, valid: tuple[str, ...]):
    """One name (commands that take exactly one: noise, recommend), under the singular or the
    plural spelling of its option: a list is refused, saying so."""
    several = names(kind, valid)

    def parse(text: str) -> str:
        chosen = several(text)
        if len(chosen) > 1:
            raise argparse.ArgumentTypeError(f"takes one {kind}, got {len(chosen)} ({', '.join(chosen)}): "
                                             f"run the command once per {kind}")
        return chosen[0]

    return parse


def sizes(text: str, dims: int | None = None):
    from stratbench.matrix import parse_size

    try:
        parsed = [parse_size(t) for t in text.split(",") if t.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not parsed:
        raise argparse.ArgumentTypeError(f"no size in {text!r}")
    if dims == 2 and any(len(s) != 2 for s in parsed):
        bad = next("x".join(map(str, s)) for s in parsed if len(s) != 2)
        raise argparse.ArgumentTypeError(f"shape {bad} must be RxC (rows x columns), e.g. 4096x2048")
    return parsed


def shapes(text: str):
    return sizes(text, dims=2)


def one_size(text: str):
    parsed = sizes(text)
    if len(parsed) != 1:
        raise argparse.ArgumentTypeError(f"takes one size, got {len(parsed)} ({text}): run the command once per size")
    return parsed[0]


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def count(text: str) -> int:
    """A whole number of at least 1 (reruns)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def unwritable(folder: pathlib.Path) -> str:
    """Why results cannot be written under `folder`, or ''; checked before TensorFlow loads."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user"
    return ""


@dataclasses.dataclass(frozen=True)
class Measuring:
    """How a measuring command samples by default (each one its own: run, compare, noise)."""

    sample_time: float
    group_budget: float
    case_budget: float
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = 60
    precision: float = 0.03
    processes: int = 2


MEASURING = {
    "run": Measuring(sample_time=0.02, group_budget=8.0, case_budget=30.0),
    "compare": Measuring(sample_time=0.1, group_budget=3.0, case_budget=10.0),
    "noise": Measuring(sample_time=0.1, group_budget=3.0, case_budget=10.0),
}


def settings(options, quick: bool = False):
    """timing.Settings from measuring options (parsed arguments or a Measuring); quick: 10 ms
    samples and the fewest rounds (`stratbench run --quick`)."""
    from stratbench.measurement import Rounds
    from stratbench.timing import Settings

    sample_s, max_rounds = sampling(options, quick)
    rounds = Rounds(min_rounds=options.min_rounds, max_rounds=max_rounds, precision=options.precision,
                    group_budget_s=options.group_budget)
    return Settings(target_sample_s=sample_s, rounds=rounds, case_budget_s=options.case_budget)


def default_settings(command: str, **changes):
    """The timing.Settings a measuring command (run, compare or noise) measures with by default,
    or with `changes` to its options (e.g. sample_time=0.05).  Imports TensorFlow (stratbench.timing)."""
    if command not in MEASURING:
        raise ValueError(f"{command!r} does not measure; the measuring commands: {', '.join(MEASURING)}")
    return settings(dataclasses.replace(MEASURING[command], **changes))


def measuring(command: str) -> argparse.ArgumentParser:
    """How groups are sampled (run, compare, noise), with the command's defaults (MEASURING).  A
    parser of its own per command: parents share their argument objects, so set_defaults on one
    command would change the others'."""
    d = MEASURING[command]
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sample-time", type=positive, default=d.sample_time,
                        help=f"seconds one sample should last; calls per sample follow (default: {d.sample_time:g})")
    parser.add_argument("--min-rounds", type=int, default=d.min_rounds,
                        help=f"rounds every group takes, at least {MIN_ROUNDS}, the fewest that give a 95%% interval "
                             f"(default: {d.min_rounds})")
    parser.add_argument("--max-rounds", type=int, default=d.max_rounds,
                        help=f"rounds a group takes at most (default: {d.max_rounds})")
    parser.add_argument("--precision", type=positive, default=d.precision,
                        help="a group stops once every ratio to its fastest is known within this, relative "
                             f"(default: {d.precision:g}, i.e. ±{d.precision * 100:g}%%)")
    parser.add_argument("--group-budget", type=positive, default=d.group_budget,
                        help="seconds of rounds a group may take after its first --min-rounds before it stops, "
                             f"known or not (default: {d.group_budget:g})")
    parser.add_argument("--processes", type=int, default=d.processes, choices=range(1, 9), metavar="N",
                        help=f"worker processes a group's rounds alternate between, 1 to 8 (default: {d.processes})")
    parser.add_argument("--case-budget", type=positive, default=d.case_budget,
                        help=f"a case whose samples cannot fit in this many seconds is recorded too_slow "
                             f"(default: {d.case_budget:g})")
    return parser


def detecting() -> argparse.ArgumentParser:
    """The change detector's rule, shared by compare and noise (noise checks compare's detector)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threshold", type=positive, default=THRESHOLD,
                        help=f"a change smaller than this is reported unchanged; a change's interval must also "
                             f"exclude 1 ± {MARGIN * 100:g}%% (default: {THRESHOLD:g})")
    parser.add_argument("--confirm-budget", type=positive, default=CONFIRM_BUDGET_S,
                        help="seconds of rounds a screened case gets when measured again in fresh workers, "
                             f"instead of --group-budget (default: {CONFIRM_BUDGET_S:g})")
    return parser


def add_ops_and_strategies(parser, every: bool) -> None:
    """--ops (--op) and --strategies (--strategy); `every`: their defaults are the full lists (else
    None, which the case matrix reads as every one)."""
    ops, strategies = impls.OPS, impls.STRATEGIES
    parser.add_argument("--ops", "--op", type=names("op", ops), default=list(ops) if every else None,
                        help=f"comma-separated ops (default: all of {','.join(ops)})")
    parser.add_argument("--strategies", "--strategy", type=names("strategy", strategies),
                        default=list(strategies) if every else None,
                        help=f"comma-separated strategies (default: every one that implements the op, of "
                             f"{','.join(strategies)})")


def selection() -> argparse.ArgumentParser:
    """Which cases: shared by run and compare."""
    parser = argparse.ArgumentParser(add_help=False)
    add_ops_and_strategies(parser, every=False)
    parser.add_argument("--directions", "--direction", type=names("direction", DIRECTIONS),
                        help="comma-separated: forward (y), backward (dx from x and dy), forward_backward (both), "
                             "train_step (default: all)")
    parser.add_argument("--dtypes", "--dtype", type=names("dtype", FLOAT_DTYPES), default=["float32"],
                        help=f"comma-separated dtypes, of {', '.join(FLOAT_DTYPES)} (default: float32)")
    parser.add_argument("--devices", "--device", type=names("device", DEVICES),
                        help="comma-separated: CPU, GPU (default: every device present); an absent device's "
                             "cases are recorded as skipped")
    parser.add_argument("--sizes", "--size", type=sizes,
                        help="element counts of the elementwise ops, e.g. 1e3,1e6,1.6e7 (default: each op's, "
                             "1e3 to 1.6e7)")
    parser.add_argument("--shapes", "--shape", type=shapes,
                        help="RxC shapes of the ops along an axis, e.g. 1024x1024,4096x2048 (default: each "
                             "op's, 128x128 to 4096x2048)")
    parser.add_argument("--env", type=names("environment setting", tuple(ENV_SETTINGS)), default=["default"],
                        help="comma-separated environment settings (listed below), each measured in workers of "
                             "its own (default: default)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the cases it would measure and an estimate of the time, then stop "
                             "(no TensorFlow: fast)")
    return parser


# the environment settings that --env names, after the options of the commands that take it
ENV_EPILOG = "Environment settings (--env): " + "; ".join(f"{name}: {text}" for name, text in ENV_HELP.items()) + "."
# option -> the variable that carries its modules to worker processes, asv and pytest
USER_MODULE_OPTIONS = {"--op-module": op_registry.ENV_VARIABLE, "--strategy-module": strategy_registry.ENV_VARIABLE}


def common() -> argparse.ArgumentParser:
    """The options of every command: the user's modules, and TensorFlow's log."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--op-module", action="append", metavar="MODULE",
                        help="your own op: a module or .py file declaring SPEC = impls.spec.OpSpec(...) (repeatable; "
                             f"added to ${op_registry.ENV_VARIABLE} for workers)")
    parser.add_argument("--strategy-module", action="append", metavar="MODULE",
                        help="your own strategy: a module or .py file declaring STRATEGY = Strategy(...) (repeatable; "
                             f"added to ${strategy_registry.ENV_VARIABLE})")
    parser.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own log output")
    return parser


def add_user_modules(argv) -> None:
    """Puts the --op-module and --strategy-module values anywhere in argv into their variables
    (read before the parser lists the ops and strategies)."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for option in USER_MODULE_OPTIONS:
        pre.add_argument(option, action="append", default=[])
    given = vars(pre.parse_known_args(argv)[0])
    for option, variable in USER_MODULE_OPTIONS.items():
        values = [m for text in given[option.lstrip("-").replace("-", "_")] for m in text.split(",") if m.strip()]
        if values:
            named = [m for m in os.environ.get(variable, "").split(",") if m.strip()]
            absolute = [str(pathlib.Path(m).resolve()) if m.endswith(".py") else m for m in values]
            os.environ[variable] = ",".join(dict.fromkeys(named + absolute))
