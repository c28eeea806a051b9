"""What became of a case (the `status` column), and the one line that says why an error
happened; shared by the worker, the run, the capability matrix, the loaders and the reports."""

from __future__ import annotations

import re

OK = "ok"  # measured
SKIPPED = "skipped"  # unavailable here (no GPU, a strategy that did not build)
FAILED_VERIFY = "failed_verify"  # computes something else than the reference: never timed
TOO_SLOW = "too_slow"  # its samples would not fit in the case budget (measured or projected)
TIMEOUT = "timeout"  # still running at the case limit; killed
OOM = "oom"  # out of memory
ERROR = "error"  # raised
CRASHED = "crashed"  # its worker process died
ALL = (OK, SKIPPED, FAILED_VERIFY, TOO_SLOW, TIMEOUT, OOM, ERROR, CRASHED)
NEEDS_FRESH_WORKER = (OOM, TIMEOUT, CRASHED)  # the worker's state can no longer be trusted


def summary(error: BaseException, limit: int = 400) -> str:
    """One line for a results table: the error's type and the lines that say what went
    wrong, without the graph-construction traceback TensorFlow wraps around them."""
    lines = [re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line.strip()) for line in str(error).splitlines()]
    said = [line for line in lines if line and not line.startswith(("File ", "[[", "Detected at node", "Graph execution"))
            and not line.endswith(":")]
    said = said or [line for line in lines if line] or [repr(error)]  # e.g. TF's one-line OOM ends in "name: "
    text = f"{type(error).__name__}: " + " | ".join(dict.fromkeys(said[:1] + said[-2:]))
    return text[:limit]
