"""How the commands speak: TensorFlow's start-up quieted, progress bars on standard error,
tables printed whole, and each error as one line naming the command."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_stderr(quiet: bool):
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


def import_tensorflow(verbose: bool) -> None:
    with quiet_stderr(not verbose):
        import tensorflow as tf

        tf.constant(0.0) + 1.0  # first op: the remaining start-up lines come here
    if not verbose:
        tf.get_logger().setLevel("ERROR")


def progress():
    """A progress bar factory, wrap(items, desc), for the library's long loops (stderr)."""
    from tqdm import tqdm

    def wrap(items, desc):
        unit = {"measure": "group", "noise": "rerun"}.get(desc, "case" if desc.startswith("compare") else "item")
        return tqdm(items, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=desc == "measure")

    return wrap


def log(message: str) -> None:
    """A line of progress or of where things went (stderr: stdout keeps the tables)."""
    print(message, file=sys.stderr)


def error(command: str, message: str, status: int = 2) -> int:
    """Says what went wrong, as `stratbench COMMAND: ...` on stderr; returns the exit status."""
    print(f"stratbench {command}: {message}", file=sys.stderr)
    return status


@contextlib.contextmanager
def pd_options():
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_rows", None):
        yield


def table(frame, **to_string) -> None:
    """Prints a pandas table whole (no column or row elided)."""
    with pd_options():
        print(frame.to_string(**to_string))
