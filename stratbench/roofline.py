"""The memory roofline of this machine, measured like STREAM by a small compiled kernel
(impls/kernels/bandwidth/bandwidth.cc, no TensorFlow), and a case's roofline time.

A case reads and writes whole tensors of x's size (matrix.TRAFFIC: forward reads x and
writes y; backward reads x and dy and writes dx; forward_backward reads x, dy and writes
y, dx).  Its roofline time is the kernel's time for the same number of arrays read and
written, of the same bytes, on one thread or TensorFlow's thread count, with ordinary or
streaming stores, whichever is fastest: the same footprint stays in the same level of
cache, so a figure above 1.0 of it means the model (or the measurement) is wrong, not
that a kernel is good.  `stratbench run` times it as an entry of each comparison group
(`Paired`, the kernel loaded as a library), so a case's fraction of it is a paired ratio
of samples taken in the same seconds; the best-of-run times (`measure`, the kernel as a
tool in a subprocess) serve the pytest-benchmark suite and older commits under asv.  A TF
copy of the same bytes is no such limit: it is single-threaded, pays a
`tf.function` call and write-allocate, and two-thread kernels beat it by up to 2x.

The machine's own figures (read-only, write-only and copy bandwidth on buffers well past
the last-level cache, at TF's thread count and one thread, ordinary and streaming stores)
are recorded with each run (environment.json, "roofline")."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import weakref

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


def tool(shared: bool = False) -> pathlib.Path:
    """The built tool (or, `shared`, the library), compiled once per source and flags into
    stratbench's build cache."""
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if not cxx:
        raise Unmeasured("no C++ compiler (g++, or CXX) to build the bandwidth tool")
    try:
        isa = build.target_isa(cxx)
    except build.BuildError as e:
        raise Unmeasured(str(e)) from None
    flags = ["-O3", "-fopenmp", *build.ISAS[isa][1], *(["-fPIC", "-shared"] if shared else [])]
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join([cxx, *flags]).encode()).hexdigest()[:16]
    path = build.cache_root() / "bandwidth" / key / ("libbandwidth.so" if shared else "bandwidth")
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        out = pathlib.Path(tmp) / path.name
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

    def extended(self, traffics, threads: int | None = None) -> "Roofline":
        """This roofline with the traffics it lacks measured now."""
        missing = self.missing(traffics)
        return Roofline(pd.concat([self.rows, measure(missing, threads)], ignore_index=True)) if missing else self


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL:
    """The kernel as a library in this process.  Its OpenMP threads sleep at once when idle
    (OMP_WAIT_POLICY passive, unless set): spinning, they would take the cores from the
    group's next entry."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ.setdefault("OMP_PROC_BIND", "false")
    lib = ctypes.CDLL(str(tool(shared=True)))
    lib.stratbench_roofline_open.restype = ctypes.c_void_p
    lib.stratbench_roofline_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_int]
    lib.stratbench_roofline_seconds.restype = ctypes.c_double
    lib.stratbench_roofline_seconds.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    lib.stratbench_roofline_close.argtypes = [ctypes.c_void_p]
    return lib


class Paired:
    """A case's roofline as an entry of its comparison group, sampled in the group's rounds
    like a strategy (timing.Prepared's `run`): its arrays are allocated once, and the
    fastest of one thread and TF's threads, ordinary and streaming stores, is chosen
    once, at its first call, from `trials` interleaved samples of about `trial_s` each,
    unless given as `chosen` (run._sample_group: one worker chooses, alone, for all)."""

    def __init__(self, traffic, threads: int | None = None, trials: int = 5, trial_s: float = 0.005,
                 chosen: tuple[int, str] | None = None):
        reads, writes, array_bytes = traffic
        threads = threads or tf_threads()
        self.lib = library()
        self.handle = self.lib.stratbench_roofline_open(reads, writes, array_bytes, threads)
        if not self.handle:
            raise Unmeasured(f"the roofline kernel could not allocate {reads + writes} arrays of {array_bytes} bytes")
        weakref.finalize(self, self.lib.stratbench_roofline_close, self.handle)  # the arrays go with the entry
        self.configs = [(t, store) for t in sorted({1, threads}) for store in (STORES if writes else STORES[:1])]
        self.trials, self.trial_s = trials, trial_s
        if chosen is not None:
            if tuple(chosen) not in self.configs:
                raise ValueError(f"roofline config {chosen} is not one of {self.configs} (threads, store)")
            self.chosen = tuple(chosen)

    def _seconds(self, config, passes: int) -> float:
        threads, store = config
        return self.lib.stratbench_roofline_seconds(self.handle, store == "streaming", threads, passes)

    @functools.cached_property
    def chosen(self) -> tuple[int, str]:
        """(threads, store), chosen at the first call.  Each trial times every config in turn, so
        that a pause costs one trial, not a config: a group's workers warm up side by side, and
        with each config's trials in a row the other one's sweep took ordinary stores in 2 of 60
        choices (0 of 120 interleaved).  Published runs had one worker's roofline 1.3-1.9x
        slower than the other's in 3-7 of 45 groups; a run with this choice, in 2: two workers
        choosing at once on 2 cores still took ordinary stores (6.3 ms against 2.4 for 2 reads and
        a write of 32 MB) in 1 of 8, so a run has one worker choose while the others wait."""
        passes = {c: max(1, round(self.trial_s / self._seconds(c, 1))) for c in self.configs}
        best = dict.fromkeys(self.configs, float("inf"))
        for _ in range(self.trials):
            for config in self.configs:
                best[config] = min(best[config], self._seconds(config, passes[config]))
        return min(self.configs, key=best.get)

    @property
    def threads(self) -> int:
        return self.chosen[0]

    @property
    def store(self) -> str:
        return self.chosen[1]

    def run(self, calls: int = 1, input_set: int = 0) -> float:
        """Seconds per pass of `calls` passes with the chosen threads and stores."""
        return self._seconds(self.chosen, calls)
