"""The tidy results table: one row per case, written atomically after every case.

A run lives in <out>/<machine>/<run_id>/ as cases.csv, cases.json and
environment.json.  Every finished case is on disk before the next one starts, so
Ctrl-C or a crash loses nothing finished, and a rerun with the same run id skips
the cases already measured.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile

import pandas as pd

COLUMNS = [
    "op", "strategy", "direction", "device", "dtype", "size", "shape", "mode",
    # the environment setting the case ran under, and what TensorFlow did in its worker
    "env", "onednn", "cpu_allocator",
    "median_s", "iqr_s", "samples", "calls_per_sample", "noisy",
    "elements_per_s", "bytes_per_s", "roofline_bytes_per_s", "roofline_fraction",
    "peak_tf_bytes", "peak_rss_bytes", "rss_start_bytes", "compile_s",
    "status", "reason", "unmeasured", "commit", "run_id", "machine", "key",
]
# unmeasured: "metric: why" for each figure this case could not measure here (it is empty,
# never a failure of the case)
# status values: ok | skipped | failed_verify | too_slow | timeout | oom | error | crashed
MEASURED = "ok"


def _write_atomic(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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
        self.rows: dict[str, dict] = {}
        cases_json = self.directory / "cases.json"
        if cases_json.exists():
            for row in json.loads(cases_json.read_text())["rows"]:
                self.rows[row["key"]] = row
        self.update_environment()

    def update_environment(self, **fields) -> None:
        """Adds fields (e.g. what each environment setting did) to environment.json."""
        self.environment.update(fields)
        _write_atomic(self.directory / "environment.json", json.dumps(self.environment, indent=1, sort_keys=True))

    def measured(self) -> set[str]:
        """Keys of the cases already measured in this run (status ok)."""
        return {k for k, row in self.rows.items() if row.get("status") == MEASURED}

    def add(self, row: dict) -> None:
        self.rows[row["key"]] = {c: _clean(row.get(c)) for c in COLUMNS}
        self._flush()

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows.values()), columns=COLUMNS)

    def _flush(self) -> None:
        rows = list(self.rows.values())
        _write_atomic(self.directory / "cases.json", json.dumps({"environment": self.environment, "rows": rows}, indent=1))
        _write_atomic(self.directory / "cases.csv", self.table().to_csv(index=False))


def format_seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def load(path) -> pd.DataFrame:
    """A results table from a run directory, its cases.json or its cases.csv."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "cases.json"
    if path.suffix == ".json":
        table = pd.DataFrame(json.loads(path.read_text())["rows"], columns=COLUMNS)
    else:
        table = pd.read_csv(path).reindex(columns=COLUMNS)
    table["env"] = table["env"].fillna("default")  # runs from before settings were recorded
    return table
