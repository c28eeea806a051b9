"""The tidy results table: one row per case, written atomically after every case.

A run lives in <out>/<machine>/<run_id>/ as cases.csv, cases.json, environment.json
and samples.csv.gz (every per-call sample, with its process and round).  Every finished case is on disk before the next one starts, so
Ctrl-C or a crash loses nothing finished, and a rerun with the same run id skips
the cases already measured with the same measuring settings (`measured_with`).
Writers take a file lock and merge with what is on disk, so runs writing into one
folder at once keep each other's cases.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import pathlib
import tempfile

import pandas as pd

from stratbench import status
from stratbench.repro import REPRO_COLUMNS, read_spread, with_repro

COLUMNS = [
    "op", "strategy", "direction", "device", "dtype", "size", "shape", "mode",
    # the environment setting the case ran under, and what TensorFlow did in its worker
    "env", "onednn", "cpu_allocator",
    "median_s", "ci_low_s", "ci_high_s", "iqr_s", "samples", "calls_per_sample", "processes", "noisy",
    # the share of the machine's CPU time a hypervisor gave other guests during the case's rounds
    # (steal time, /proc/stat; empty where not reported): a disturbed measurement shows here
    "cpu_steal",
    # paired figures of the case's comparison group (stratbench/measurement.py): speedup over the
    # baseline strategy, time over the group's fastest, each with its 95% interval, and the rank
    "baseline", "speedup", "speedup_low", "speedup_high", "vs_fastest", "vs_fastest_low", "vs_fastest_high", "rank",
    # the same widened by this machine type's between-run spread, where one is stored (stratbench/repro.py)
    *REPRO_COLUMNS,
    # roofline_*: the memory roofline of the case's traffic (stratbench/roofline.py), timed in the
    # group's rounds: its bandwidth, and the case's fraction of it (roofline time / the case's
    # time, paired, with its 95% interval); floor_s: its strategy's call floor in the same step,
    # call_bound: under metrics.CALL_BOUND x the floor
    "elements_per_s", "bytes_per_s", "roofline_bytes_per_s", "roofline_fraction", "roofline_fraction_low",
    "roofline_fraction_high", "floor_s", "call_bound",
    # memory (stratbench/timing.py): TF's allocator peak above the inputs, the process's resident
    # peak above the case's start, and (forward_backward) what a forward keeps for its backward
    "peak_tf_bytes", "own_rss_bytes", "kept_for_backward_bytes", "peak_rss_bytes", "rss_start_bytes", "compile_s",
    "status", "reason", "unmeasured", "measured_with", "measuring_settings", "commit", "tensorflow", "run_id", "machine", "key",
]
# unmeasured: "metric: why" for each figure this case could not measure here (it is empty,
# never a failure of the case); measured_with: the measuring settings in words,
# measuring_settings: the same as JSON (timing.Settings.as_data), what resuming compares

# The version of a run's files (cases.json, environment.json): 1, files that do not say (rows
# without measuring_settings, compared by their measured_with); 2, rows with it.
SCHEMA_VERSION = 2


_UMASK = os.umask(0)
os.umask(_UMASK)


def _write_atomic(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are to be shared
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunStore:
    def __init__(self, directory: pathlib.Path, environment: dict):
        self.directory = pathlib.Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.environment = environment
        self.spread = read_spread(self.directory)  # its machine type's, for the repro columns of every write
        with self._locked():
            self.rows = self._read()
        self.update_environment()

    @contextlib.contextmanager
    def _locked(self):
        """Held while reading and rewriting the files: another run may share the folder."""
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> dict[str, dict]:
        path = self.directory / "cases.json"
        if not path.exists():
            return {}
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise NotResults(f"{path} is JSON but not a stratbench cases file (no list of rows)")
        return {row["key"]: row for row in data["rows"]}

    def update_environment(self, **fields) -> None:
        """Adds fields (e.g. what each environment setting did) to environment.json,
        keeping the settings another run into this folder recorded."""
        with self._locked():
            path = self.directory / "environment.json"
            on_disk = read_json(path) if path.exists() else {}
            settings = (on_disk.get("settings") or {}) | (self.environment.get("settings") or {}) | \
                (fields.get("settings") or {})
            for key, value in on_disk.items():  # what an earlier run into this folder measured (its roofline)
                self.environment.setdefault(key, value)
            self.environment.update(fields)
            if settings:
                self.environment["settings"] = settings
            _write_atomic(path, json.dumps(self.environment, indent=1, sort_keys=True))

    def measured(self, settings=None) -> set[str]:
        """Keys of the cases already measured in this run (status ok), with these measuring
        settings (a timing.Settings) when given: compared as data, or where a row has none
        (schema 1) by their description."""
        def same(row) -> bool:
            if settings is None:
                return True
            if row.get("measuring_settings"):
                return json.loads(row["measuring_settings"]) == settings.as_data()
            return row.get("measured_with") == settings.describe()

        return {k for k, row in self.rows.items() if row.get("status") == status.OK and same(row)}

    def add(self, *rows: dict) -> None:
        """Stores `rows` (replacing those of the same keys) in one write of the files."""
        if not rows:
            return
        rows = [{c: _clean(row.get(c)) for c in COLUMNS} for row in rows]
        with self._locked():
            self.rows = self._read()  # what other runs into this folder wrote meanwhile
            self.rows.update((row["key"], row) for row in rows)
            self._flush()

    def add_samples(self, frame: pd.DataFrame) -> None:
        """Keeps every per-call sample (samples.csv.gz), replacing the stored ones of the same keys."""
        with self._locked():
            stored = read_samples(self.directory)
            if stored is not None:
                frame = pd.concat([stored[~stored["key"].isin(set(frame["key"]))], frame], ignore_index=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{SAMPLES}.", suffix=".tmp")
            os.close(fd)
            try:
                frame.to_csv(tmp, index=False, compression="gzip")
                os.chmod(tmp, 0o666 & ~_UMASK)
                os.replace(tmp, self.directory / SAMPLES)
            except BaseException:
                os.unlink(tmp)
                raise

    def table(self) -> pd.DataFrame:
        return with_repro(pd.DataFrame(list(self.rows.values()), columns=COLUMNS), self.spread)

    def _flush(self) -> None:
        rows = list(self.rows.values())
        _write_atomic(self.directory / "cases.json", json.dumps({"schema_version": SCHEMA_VERSION,
                                                                 "environment": self.environment, "rows": rows}, indent=1))
        _write_atomic(self.directory / "cases.csv", self.table().to_csv(index=False))


SAMPLES = "samples.csv.gz"  # key, process, round, seconds, calls, steal: every per-call sample of the run


def measuring_columns(settings) -> dict:
    """A row's measured_with and measuring_settings for a timing.Settings."""
    return {"measured_with": settings.describe(), "measuring_settings": json.dumps(settings.as_data(), sort_keys=True)}


def read_samples(directory) -> pd.DataFrame | None:
    """A run's per-call samples, or None when it kept none (runs before paired rounds)."""
    path = pathlib.Path(directory) / SAMPLES
    return pd.read_csv(path) if path.exists() else None


def run_time(run_dir) -> float:
    """When a run was made: its environment's `started_at`, else its commit's time (older
    runs), else its file's time (which a fresh clone resets)."""
    run_dir = pathlib.Path(run_dir)
    env_file = run_dir / "environment.json"
    env = read_json(env_file) if env_file.exists() else {}
    if env.get("started_at"):
        return float(env["started_at"])
    commit = env.get("commit")
    if commit and commit != "unknown":
        import subprocess

        try:
            out = subprocess.run(["git", "-C", str(run_dir), "log", "-1", "--format=%ct", commit],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return float(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return (run_dir / "cases.json").stat().st_mtime


def runs_under(root) -> list[pathlib.Path]:
    """`stratbench run` directories under root (or root itself), newest first (run_time)."""
    root = pathlib.Path(root)
    found = [root] if (root / "cases.json").exists() else [p.parent for p in root.glob("**/cases.json")]
    return sorted(found, key=run_time, reverse=True)


def format_seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


class NotResults(ValueError):
    """A path that holds no readable stratbench results; the message names it and says why."""


def read_json(path: pathlib.Path) -> dict:
    """A JSON file's content, or NotResults naming the file and what is wrong with it."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except FileNotFoundError:
        raise NotResults(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NotResults(f"{path} cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise NotResults(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                         "it may be cut short or not a stratbench file") from None


def load(path, repro: bool = True) -> pd.DataFrame:
    """A results table from a run directory, its cases.json or its cases.csv, with the repro
    columns from its machine type's spread (repro); NotResults (a ValueError) naming the path
    when it holds none."""
    path = pathlib.Path(path)
    if path.is_dir():
        if not (path / "cases.json").exists():
            raise NotResults(f"{path} holds no stratbench results: expected a `stratbench run` directory (with "
                             "cases.json), an asv results folder or a pytest-benchmark JSON")
        path = path / "cases.json"
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise NotResults(f"{path} is JSON but not a stratbench cases file (no list of rows)")
        table = pd.DataFrame(data["rows"], columns=COLUMNS)
    else:
        try:
            table = pd.read_csv(path).reindex(columns=COLUMNS)
        except (OSError, ValueError) as e:
            raise NotResults(f"{path} cannot be read as a cases table: {e}") from None
    table["env"] = table["env"].fillna("default")  # runs from before settings were recorded
    return with_repro(table, read_spread(path.parent)) if repro else table


MACHINE_COLUMNS = ("machine", "host", "cpu_model", "cpu_isa", "cpu_count", "memory_bytes", "onednn", "cpu_allocator",
                   "tensorflow", "python", "commit")


def with_machine(table: pd.DataFrame) -> pd.DataFrame:
    """The table with what its figures hold for: machine, CPU, ISA, oneDNN, allocator, TF, commit."""
    from stratbench import environment

    env = environment.capture()
    return table.assign(**{k: env.get(k) for k in MACHINE_COLUMNS})
