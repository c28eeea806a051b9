"""The report's tables (pandas; Markdown and CSV when written) and the text that labels
what they were measured on: the per-op metric tables, the headline, the settings comparison
(machines and releases: stratbench/across.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import impls
from stratbench import environment, matrix, metrics, stats, status
from stratbench.measurement import rank_of, speedup_of, speedup_text
from stratbench.results import format_seconds


def _fmt_count(n: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}"


def ordered(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(
        _op=table["op"], _dir=table["direction"].map(matrix.DIRECTIONS.index),
        _strategy=table["strategy"].map(impls.STRATEGIES.index),
    ).sort_values(["_op", "_dir", "size", "_strategy"], kind="stable").drop(columns=["_op", "_dir", "_strategy"])


def _unit(direction: str) -> str:
    return "samples/s" if direction == matrix.TRAIN_STEP else "elements/s"


def metric_table(table: pd.DataFrame, op: str, direction: str, baseline: str = matrix.BASELINE):
    """(numbers, text): rows (shape, metric), columns strategies, for one op and direction.
    Text cells mark a noisy timing (metrics.marked); a memory figure not measured (missing,
    or a 0 from an allocator that did not count the case, metrics.allocator_bytes) says so."""
    rows = ordered(table[(table["op"] == op) & (table["direction"] == direction)])
    numbers, text = {}, {}
    for shape, group in rows.groupby("shape", sort=False):
        for r in group.itertuples():
            cells = {}
            if r.status == status.OK:
                speedup = speedup_of(r._asdict(), group, baseline).value
                peak = metrics.allocator_bytes(r.peak_tf_bytes)
                kept = metrics.allocator_bytes(getattr(r, "kept_for_backward_bytes", None))
                cells = {
                    "median time": (r.median_s, metrics.marked(format_seconds(r.median_s), False,
                                                               metrics.is_noisy_row(r),
                                                               **metrics.row_marks(r._asdict()))),
                    f"throughput ({_unit(direction)})": (r.elements_per_s, _fmt_count(r.elements_per_s, "/s")),
                    f"speedup over {baseline}": (speedup, speedup_text(r._asdict(), group, baseline) or None),
                    "roofline fraction": (r.roofline_fraction, None),
                    "call floor": ((r.floor_s, metrics.marked(format_seconds(r.floor_s), False, False,
                                                              call_bound=str(r.call_bound) == "True"))
                                   if pd.notna(getattr(r, "floor_s", None)) else (np.nan, "")),
                    "TF allocator peak (MB)": (peak / 1e6, None) if peak is not None
                    else (np.nan, "not measured"),  # the table's footer says why
                    "process above start (MB)": (r.own_rss_bytes / 1e6, None)
                    if pd.notna(getattr(r, "own_rss_bytes", None)) else (np.nan, "not measured"),
                    "kept for backward (bytes/element)": (kept / r.size, None) if kept is not None
                    else (np.nan, "not measured" if direction == "forward_backward" else ""),
                }
            else:
                cells = {"median time": (np.nan, r.status)}
            for metric, (value, shown) in cells.items():
                numbers.setdefault((shape, metric), {})[r.strategy] = value
                if shown is None:
                    shown = "" if pd.isna(value) else (f"{value:.2f}x" if metric.startswith("speedup") else
                                                       f"{value:.2f}" if metric.startswith("roofline") else f"{value:.3g}")
                text.setdefault((shape, metric), {})[r.strategy] = shown
    order = [s for s in impls.STRATEGIES if s in set(rows["strategy"])]
    make = lambda d: pd.DataFrame.from_dict(d, orient="index").reindex(columns=order).rename_axis(["shape", "metric"])  # noqa: E731
    return make(numbers), make(text).fillna("")


def _cell(r, group, baseline: str, with_time: bool = False) -> str | None:
    """One strategy's cell among `group` (the cases it is compared with): its status if it was
    not measured, else its speedup over `baseline` with that speedup's interval, after its
    median time `with_time`, marked fastest, tied, call-bound, over the roofline and (with the
    time) noisy (metrics.marked); None for a speedup that cannot be given (no baseline)
    without the time."""
    if r["status"] != status.OK:
        return r["status"]
    speedup = speedup_text(r, group, baseline)
    if not with_time and not speedup:
        return None
    text = format_seconds(r["median_s"]) + (f" ({speedup})" if speedup else "") if with_time else speedup
    fastest, tie = rank_in_group(r, group)  # noisy is about a time: only on a cell that shows one
    return metrics.marked(text, fastest, with_time and metrics.is_noisy_row(r), tie, **metrics.row_marks(r))


def rank_in_group(r, group) -> tuple[bool, bool]:
    """(fastest, tied for fastest) of row r (a row of `group`, by its index label) within its
    comparison group: the paired rank where the run stored one (rank_of); for results kept
    without paired rounds, the lowest median is fastest only where its spread is clear of
    every other's (metrics.clearly_faster), else it ties those it is not clear of: the rule
    `stratbench recommend` words."""
    if "rank" in group and group["rank"].notna().any():
        return rank_of(r, group)
    ok = group[(group["status"] == status.OK) & group["median_s"].notna()]
    if r.name not in ok.index or ok.empty:
        return False, False
    best = ok.loc[ok["median_s"].idxmin()]
    tied = [label for label, other in ok.iterrows() if label != best.name and not metrics.clearly_faster(best, other)]
    if r.name == best.name:
        return len(ok) > 1 and not tied, bool(tied)
    return False, r.name in tied


def comparison(table: pd.DataFrame, baseline: str = matrix.BASELINE) -> pd.DataFrame:
    """Rows are cases, columns strategies; each cell the median with its speedup over
    `baseline` and that speedup's 95% interval where the rounds paired them, marked fastest,
    tied for fastest and noisy (metrics.marked)."""
    if table.empty:
        return pd.DataFrame()
    index = ["op", "direction", "device", "dtype", "shape"]
    if "env" in table and table["env"].nunique() > 1:  # each setting is its own row: strategies compare within it
        index.insert(3, "env")
    table = table.assign(
        direction_order=table["direction"].map(matrix.DIRECTIONS.index),
    ).sort_values(["op", "direction_order", "device", "dtype", "size"], kind="stable")
    cells = {}
    for keys, group in table.groupby(index, sort=False):
        cells[keys] = {r["strategy"]: _cell(r, group, baseline, with_time=True) for _, r in group.iterrows()}
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = index
    return out.reindex(columns=[s for s in impls.STRATEGIES if s in out.columns]).fillna("")


def headline(table: pd.DataFrame, baseline: str = matrix.BASELINE) -> pd.DataFrame:
    """Speedup over `baseline` at the largest size of each (op, direction), with its 95%
    interval where the run paired them: rows are (op, direction, shape), columns strategies;
    fastest and tied marked (metrics.marked; no time, so no noisy mark: metrics.SPEEDUP_MARKS_LEGEND)."""
    table = ordered(table)
    cells = {}
    for (op, direction), group in table.groupby(["op", "direction"], sort=False):
        largest = group[group["size"] == group["size"].max()]
        row = {r["strategy"]: _cell(r, largest, baseline) for _, r in largest.iterrows()}
        cells[(op, direction, largest["shape"].iloc[0])] = {s: c for s, c in row.items() if c is not None}
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = ["op", "direction", "shape"]
    return out.reindex(columns=[s for s in impls.STRATEGIES if s in out.columns]).fillna("")


def describe_setting(env: dict, name: str) -> str:
    """'bfc: oneDNN off, bfc allocator' from what the run's workers found TensorFlow doing."""
    found = ((env.get("settings") or {}).get(name) or {}).get("effective") or (env if name == "default" else {})
    if "onednn" not in found:
        return name
    return f"{name}: oneDNN {'on' if found['onednn'] else 'off'}, {found.get('cpu_allocator', '?')} allocator"


def machine_name(env: dict) -> str:
    """A run's machine type (environment.machine_identity) and its host label; the stored name
    for results without CPU details (asv, pytest-benchmark)."""
    if not env.get("cpu_model"):
        return str(env.get("machine", "unknown machine"))
    host = env.get("host") or env.get("machine")
    identity = environment.machine_identity(env)
    return identity + (f", host {host}" if host and host != identity else "")


def caption(env: dict) -> str:
    where = machine_name(env)
    if env.get("cpu_model"):
        isa = f", {env['cpu_isa']}" if env.get("cpu_isa") else ""
        where += f" ({env['cpu_model']}{isa}, {env.get('cpu_count', '?')} cores"
        where += f", GPU {', '.join(map(str, env['gpus']))})" if env.get("gpus") else ", no GPU)"
    parts = [where]
    if env.get("tensorflow"):
        parts.append(f"TensorFlow {env['tensorflow']}, Python {env.get('python', '?')}")
    if env.get("setting"):
        parts.append("setting " + describe_setting(env, env["setting"]))
    if "tf_intra_op_threads" in env:
        parts.append(f"TF threads intra {env['tf_intra_op_threads'] or 'default'}, "
                     f"inter {env.get('tf_inter_op_threads') or 'default'}")
    if env.get("commit"):
        parts.append(f"commit {env['commit'][:8]}")
    if env.get("measured_with"):  # how the figures were sampled, as the run stored it with each row
        parts.append(f"measured with {env['measured_with']}")
    measured_with = env.get("measured_with") or ""
    ratios = ("Hodges-Lehmann estimates of the per-round ratios" if stats.RATIO_ESTIMATOR in measured_with
              else "medians of the per-round ratios" if "paired rounds" in measured_with  # runs before the Hodges-Lehmann estimator
              else "paired ratios")  # how is not known here (the published headline's caption)
    return "; ".join(parts) + (f". Times are medians of paired rounds, speedups {ratios}; bands and error bars are 95% "
                               "intervals (of the median time; of the paired speedup), or the IQR for results kept "
                               "without samples." + (f" {env['repro'][0].upper()}{env['repro'][1:]}." if env.get("repro") else ""))


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table; a repeated value of the first index level is shown once."""
    if frame.empty:
        return "(no measured cases)"
    flat = frame.reset_index()
    first = flat.columns[0]
    flat[first] = flat[first].where(flat[first].ne(flat[first].shift()), "")
    return flat.to_markdown(index=False)


def settings_of(table: pd.DataFrame) -> list[str]:
    """The environment settings in a table, in the order they were run."""
    return list(dict.fromkeys(table["env"]))


def headline_setting(table: pd.DataFrame, env: dict | None) -> str:
    """The setting a user of this machine gets without changing anything: 'default' when
    measured, else the one whose oneDNN and allocator match the launching process's."""
    names = settings_of(table)
    if "default" in names or not env:
        return "default" if "default" in names else names[0]
    for name in names:
        found = ((env.get("settings") or {}).get(name) or {}).get("effective") or {}
        if found and found.get("onednn") == env.get("onednn") and found.get("cpu_allocator") == env.get("cpu_allocator"):
            return name
    return names[0]


def roofline_seconds(rows: pd.DataFrame) -> pd.Series:
    """Each row's roofline time: the best time of the bandwidth tool for its case's traffic
    (results before the tool: a TF copy of the same bytes)."""
    return rows["bytes_per_s"] * rows["median_s"] / rows["roofline_bytes_per_s"]


def settings_table(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """What each environment setting does to each strategy, at the largest size of every
    (op, direction): rows (op, direction, shape, strategy), columns settings; each cell the
    median and its speedup over the same strategy under `reference`.  The memory roofline
    of the case's traffic is a row of its own."""
    ok = ordered(table[table["status"] == status.OK])
    names = settings_of(table)
    cells = {}
    for (op, direction), group in ok.groupby(["op", "direction"], sort=False):
        largest = group[group["size"] == group["size"].max()]
        shape = largest["shape"].iloc[0]
        times = {(r.strategy, r.env): (r.median_s, metrics.is_noisy_row(r)) for r in largest.itertuples()}
        measured = largest.dropna(subset=["roofline_bytes_per_s"])
        for env_name, seconds in zip(measured["env"], roofline_seconds(measured)):
            times.setdefault(("memory roofline", env_name), (seconds, False))
        for strategy in dict.fromkeys(k[0] for k in times):
            ref = times.get((strategy, reference))
            row = {}
            for name in names:
                if (strategy, name) not in times:
                    continue
                median, noisy = times[(strategy, name)]
                row[name] = metrics.marked(format_seconds(median), False, noisy) + \
                    (f" ({ref[0] / median:.2f}x)" if ref else "")
            cells[(op, direction, shape, strategy)] = row
    out = pd.DataFrame.from_dict(cells, orient="index", columns=names)
    out.index.names = ["op", "direction", "shape", "strategy"]
    return out.fillna("")


def unmeasured_items(rows: pd.DataFrame) -> list[str]:
    """Every 'metric: why' in the rows' `unmeasured` cells (each joins its items with '; ')."""
    return [n for text in rows["unmeasured"].dropna() for n in str(text).split("; ") if n]


def unmeasured_notes(table: pd.DataFrame) -> list[str]:
    """Each distinct 'metric: why' of the figures left empty, with how many cases it hit (a
    0 from TF's allocator is one of them: metrics.allocator_bytes)."""
    ok = table[table["status"] == status.OK]
    zeros = [f"{column}: {metrics.ALLOCATOR_ZERO}" for column in metrics.ALLOCATOR_COLUMNS
             if column in ok for value in pd.to_numeric(ok[column], errors="coerce") if value == 0]
    counts = pd.Series(unmeasured_items(ok) + zeros, dtype=object).value_counts()
    return [f"{note} ({count} cases)" for note, count in counts.items()]


def steal_line(table: pd.DataFrame) -> str:
    """How much CPU time a hypervisor gave other guests while the run's cases were sampled
    (`cpu_steal`), in one line; '' where the system does not report it."""
    steal = pd.to_numeric(table.get("cpu_steal", pd.Series(dtype=float)), errors="coerce").dropna()
    if steal.empty:
        return ""
    said = "CPU time the hypervisor gave other guests during the rounds (steal)"
    if steal.max() == 0:
        return f"{said}: none"
    return f"{said}: {steal.median():.1%} in the median case, at most {steal.max():.1%} ({table.loc[steal.idxmax(), 'key']})"
