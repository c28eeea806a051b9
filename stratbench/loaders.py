"""Results from asv and pytest-benchmark, as the same tidy table `stratbench run` writes
(stratbench.results.COLUMNS), so every report works from any of the three sources."""

from __future__ import annotations

import ast
import itertools
import pathlib


import numpy as np
import pandas as pd

from stratbench import matrix, metrics, results, status
from stratbench.results import COLUMNS

# asv benchmark name (the method) -> tidy column it fills.  Two timers fill median_s:
# asv's own (time_*, the cases a regression shows in) and stratbench's harness, run once
# per commit in asv's setup_cache (track_seconds_per_call, the whole matrix); where both
# timed a case, asv's is kept, and measured_with says which a row has.
ASV_TIMERS = {"time_step": "asv timer",
              "track_seconds_per_call": "stratbench harness in asv setup_cache"}
ASV_METRICS = {
    **{name: "median_s" for name in ASV_TIMERS},
    "peakmem_step": "peak_rss_bytes",
    "track_peak_rss_bytes": "peak_rss_bytes",
    "track_peak_tf_bytes": "peak_tf_bytes",
    "track_own_rss_bytes": "own_rss_bytes",
    "track_kept_for_backward_bytes": "kept_for_backward_bytes",
    "track_compile_s": "compile_s",
    "track_speedup_over_native": "speedup",
    # older suites (results/asv/vm)
    "track_elements_per_s": "elements_per_s",
    "track_roofline_fraction": "roofline_fraction",
}


def _op_of_class(class_name: str) -> str | None:
    """The op of an asv class name: SoftmaxNosgTime -> softmax_nosg (read from the name, so
    results of ops not registered here load too)."""
    for suffix in ("Time", "Tracked"):
        if class_name.endswith(suffix) and len(class_name) > len(suffix):
            stem = class_name[: -len(suffix)]
            return "".join("_" + c.lower() if c.isupper() else c for c in stem).lstrip("_")
    return None


def _finish(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in table:
            table[col] = np.nan
    table["size"] = [int(np.prod(matrix.parse_size(s))) for s in table["shape"]]
    for i, r in table[table["median_s"].notna()].iterrows():  # what the runner did not store, derived as run does
        case = matrix.Case(r["op"], r["strategy"], r["direction"], r["dtype"], r["device"], matrix.parse_size(r["shape"]))
        roofline = r["roofline_bytes_per_s"] if pd.notna(r["roofline_bytes_per_s"]) else None
        for column, value in metrics.throughput(case.size, case.bytes_moved, r["median_s"], roofline).items():
            if pd.isna(table.at[i, column]):
                table.at[i, column] = value
    table["env"] = table["env"].fillna("default")  # asv and pytest-benchmark run in the shell's environment
    table["key"] = [matrix.Case.from_row(r).key for _, r in table.iterrows()]
    return table[COLUMNS]


def load_asv(path) -> pd.DataFrame:
    """asv result files (a results directory, a machine folder or one file) as the tidy table."""
    path = pathlib.Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*.json") if p.name not in ("machine.json", "benchmarks.json")]
    rows = {}
    for file in files:
        data = results.read_json(file)
        run_id = f"asv-{data['commit_hash'][:8]}-{data['env_name']}"
        # asv's own timer first, so that the harness's time fills only what asv did not time
        names = sorted(data["results"], key=lambda name: not name.rsplit(".", 1)[-1].startswith("time_"))
        for name in names:
            module_class, method = name.rsplit(".", 1)
            op, column = _op_of_class(module_class.rsplit(".", 1)[-1]), ASV_METRICS.get(method)
            if op is None or column is None:
                continue
            result = dict(zip(data["result_columns"], data["results"][name]))
            params = [[ast.literal_eval(p) for p in axis] for axis in result["params"]]
            q25, q75 = result.get("stats_q_25") or [], result.get("stats_q_75") or []
            for i, (strategy, shape, direction) in enumerate(itertools.product(*params)):
                key = (data["commit_hash"], data["env_name"], op, strategy, direction, shape)
                row = rows.setdefault(key, {
                    "op": op, "strategy": strategy, "direction": direction, "shape": shape, "dtype": "float32",
                    "device": "CPU", "commit": data["commit_hash"], "machine": data["params"].get("machine"),
                    "tensorflow": data["params"].get("tensorflow-cpu") or data["params"].get("tensorflow"),
                    "run_id": run_id, "status": status.SKIPPED, "reason": "not timed in asv",
                })
                value = result["result"][i] if result["result"] else None
                if column == "median_s" and row["status"] == status.OK:
                    continue  # timed by asv's own timer already
                if value is None or value != value:  # asv writes None for a failure, NaN for a skip
                    if column == "median_s":
                        row["status"], row["reason"] = (
                            (status.ERROR, "failed in asv") if value is None else
                            (status.SKIPPED, "skipped in asv: unavailable, absent at this commit, or too slow"))
                    continue
                row[column] = value
                if column == "speedup":  # paired over the baseline in the harness's rounds
                    row["baseline"] = matrix.BASELINE
                if column == "median_s":
                    row["status"], row["reason"], row["measured_with"] = status.OK, "", ASV_TIMERS.get(method, method)
                    if i < len(q25) and q25[i] is not None and q75[i] is not None:
                        row["iqr_s"] = q75[i] - q25[i]
    if not rows:
        raise ValueError(f"no asv results of stratbench's suites under {path}")
    return _finish(list(rows.values()))


def load_pytest_benchmark(path) -> pd.DataFrame:
    """A pytest-benchmark JSON file (--benchmark-json) of benchmarks/pytest_suite as the tidy table."""
    data = results.read_json(pathlib.Path(path))
    commit = data.get("commit_info", {}).get("id", "unknown")
    machine = data.get("machine_info", {}).get("node")
    rows = []
    for bench in data["benchmarks"]:
        info, stats = bench["extra_info"], bench["stats"]
        rows.append({
            **{k: info[k] for k in ("op", "strategy", "direction", "dtype", "device", "shape", "mode") if k in info},
            "median_s": stats["median"], "iqr_s": stats["iqr"], "samples": stats["rounds"],
            "calls_per_sample": stats.get("iterations", 1), "noisy": metrics.is_noisy(stats["median"], stats["iqr"]),
            "elements_per_s": info.get("elements_per_s"), "roofline_bytes_per_s": info.get("roofline_bytes_per_s"),
            "roofline_fraction": info.get("roofline_fraction"), "status": status.OK, "reason": "",
            "commit": commit, "machine": machine, "run_id": f"pytest-benchmark-{data.get('datetime', '')}",
        })
    return _finish(rows)


def load_any(path) -> pd.DataFrame:
    """A `stratbench run` directory or file, asv results, or a pytest-benchmark JSON."""
    path = pathlib.Path(path)
    if path.is_file() and path.suffix == ".json":
        data = results.read_json(path)
        if "benchmarks" in data and "machine_info" in data:
            return load_pytest_benchmark(path)
        if "result_columns" in data:
            return load_asv(path)
    if path.is_dir() and not (path / "cases.json").exists() and list(path.rglob("machine.json")):
        return load_asv(path)
    return results.load(path)


