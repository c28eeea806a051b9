"""The memory roofline of this machine, measured like STREAM by a small compiled tool
(impls/kernels/bandwidth/bandwidth.cc, no TensorFlow), and a case's roofline time.

A case reads and writes whole tensors of x's size (matrix.TRAFFIC: forward reads x and
writes y; backward reads x and dy and writes dx; forward_backward reads x, dy and writes
y, dx).  Its roofline time is the best time the tool takes for the same number of arrays
read and written, of the same bytes, on one thread or TensorFlow's thread count, with
ordinary or streaming stores: the same footprint stays in the same level of cache, so a
figure above 1.0 of it means the model (or the measurement) is wrong, not that a kernel
is good.  A TF copy of the same bytes is no such limit: it is single-threaded, pays a
`tf.function` call and write-allocate, and two-thread kernels beat it by up to 2x.

The machine's own figures (read-only, write-only and copy bandwidth on buffers well past
the last-level cache, at TF's thread count and one thread, ordinary and streaming stores)
are recorded with each run (environment.json, "roofline")."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import pandas as pd

from impls.kernels import build

SOURCE = build.HERE / "bandwidth" / "bandwidth.cc"
STORES = ("ordinary", "streaming")
# The machine's figures: (name, reads, writes)
MACHINE_PATTERNS = (("read", 1, 0), ("write", 0, 1), ("copy", 1, 1))
MIN_PAST_LLC_BYTES = 256 << 20
COLUMNS = ["reads", "writes", "array_bytes", "threads", "store", "seconds"]


class Unmeasured(RuntimeError):
    """The tool could not be built or run here; the message says why."""


def tool() -> pathlib.Path:
    """The built tool, compiled once per source and flags into stratbench's build cache."""
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if not cxx:
        raise Unmeasured("no C++ compiler (g++, or CXX) to build the bandwidth tool")
    try:
        isa = build.target_isa(cxx)
    except build.BuildError as e:
        raise Unmeasured(str(e)) from None
    flags = ["-O3", "-fopenmp", *build.ISAS[isa][1]]
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([cxx, *flags]).encode()).hexdigest()[:16]
    path = build.cache_root() / "bandwidth" / key / "bandwidth"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = pathlib.Path(tmp) / "bandwidth"
        done = subprocess.run([cxx, *flags, str(SOURCE), "-o", str(out)], capture_output=True, text=True)
        if done.returncode:
            raise Unmeasured(f"the bandwidth tool failed to build: {build._trim(done.stderr)}")
        os.replace(out, path)  # atomic: a concurrent builder's copy is as good
    return path


def tf_threads() -> int:
    """The threads TensorFlow's CPU kernels use: TF_NUM_INTRAOP_THREADS, else every CPU this process may run on."""
    asked = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    if asked.isdigit() and int(asked) > 0:
        return int(asked)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def last_level_cache_bytes() -> int | None:
    """The largest CPU cache of CPU 0 (Linux sysfs), or None."""
    sizes = []
    for index in pathlib.Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes) if sizes else None


# The same pattern's best time moved by up to 2.5x between invocations seconds apart on the
# 2-core VMs (2 reads and 1 write of 64 MB: 3.5-8.9 ms), with new buffers and a neighbour's
# load each time: each pattern is measured in this many invocations and the best counts.
PLACEMENTS = 3


def measure(patterns, threads: int | None = None, trial_budget_s: float = 0.05, min_trials: int = 5,
            placements: int = PLACEMENTS) -> pd.DataFrame:
    """Best seconds per pass of each (reads, writes, array_bytes) in `patterns`, with
    ordinary and streaming stores, on one thread and on `threads` (TF's), in `placements`
    invocations of the tool (fresh buffers each): COLUMNS, a row per invocation."""
    patterns = sorted(set(patterns))
    if not patterns:
        return pd.DataFrame(columns=COLUMNS)
    binary = tool()
    rows = []
    for t in sorted({1, threads or tf_threads()}) * placements:
        specs = [f"{r}:{w}:{b}:{store}" for r, w, b in patterns for store in (STORES if w else STORES[:1])]
        done = subprocess.run([str(binary), str(t), str(min_trials), str(trial_budget_s), *specs],
                              capture_output=True, text=True, env=os.environ | {"OMP_PROC_BIND": "false"})
        if done.returncode:
            raise Unmeasured(f"the bandwidth tool failed (exit {done.returncode}): {done.stderr.strip()[:500]}")
        for line in done.stdout.split("\n"):
            if line.strip():
                r, w, b, th, store, seconds = line.split()
                rows.append({"reads": int(r), "writes": int(w), "array_bytes": int(b), "threads": int(th),
                             "store": store, "seconds": float(seconds)})
    return pd.DataFrame(rows, columns=COLUMNS)


def machine(threads: int | None = None) -> pd.DataFrame:
    """Read-only, write-only and copy bandwidth on arrays well past the last-level cache
    (twice its size, at least 256 MiB each): COLUMNS, with `pattern` and `bytes_per_s`."""
    llc = last_level_cache_bytes() or 0
    array_bytes = max(MIN_PAST_LLC_BYTES, 2 * llc)
    names = {(r, w): name for name, r, w in MACHINE_PATTERNS}
    rows = measure([(r, w, array_bytes) for _, r, w in MACHINE_PATTERNS], threads, trial_budget_s=0.15, min_trials=3,
                   placements=2)
    rows.insert(0, "pattern", [names[(r, w)] for r, w in zip(rows["reads"], rows["writes"])])
    rows["bytes_per_s"] = (rows["reads"] + rows["writes"]) * rows["array_bytes"] / rows["seconds"]
    return rows


class Roofline:
    """Case roofline times from the tool's rows (measure): for a traffic pattern, the best
    over thread counts and store kinds."""

    def __init__(self, rows: pd.DataFrame | list | None = None):
        rows = pd.DataFrame(rows if rows is not None else [], columns=COLUMNS)
        self.rows = rows
        self.best = rows.groupby(["reads", "writes", "array_bytes"])["seconds"].min().to_dict() if len(rows) else {}

    def missing(self, traffics) -> list:
        return sorted({t for t in traffics if t not in self.best})

    def seconds(self, traffic) -> float | None:
        """The roofline time of (reads, writes, array_bytes), or None when not measured."""
        return self.best.get(tuple(traffic))

    def remeasured(self, traffics, threads: int | None = None) -> "Roofline":
        """This roofline with `traffics` measured once more now (the best of all counts)."""
        return Roofline(pd.concat([self.rows, measure(set(traffics), threads, placements=1)], ignore_index=True))

    def extended(self, traffics, threads: int | None = None) -> "Roofline":
        """This roofline with the traffics it lacks measured now."""
        missing = self.missing(traffics)
        return Roofline(pd.concat([self.rows, measure(missing, threads)], ignore_index=True)) if missing else self
