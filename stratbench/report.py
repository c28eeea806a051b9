"""`stratbench report`: figures (PNG and SVG) and tables (Markdown and CSV) from any
stored results -- a `stratbench run` directory, asv results or pytest-benchmark JSON
(all read through stratbench.loaders.load_any into one tidy table).

With --publish it also writes results/README.md and the headline block of the
top-level README from the same run, so nothing published is edited by hand.
"""

from __future__ import annotations

import math
import os
import pathlib
import textwrap
import zlib

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import impls  # noqa: E402
from stratbench import capabilities, environment, matrix, metrics, status  # noqa: E402
from stratbench import results  # noqa: E402
from stratbench.measurement import rank_of, speedup_of, speedup_text  # noqa: E402
from stratbench.results import format_seconds  # noqa: E402


def color(strategy: str):
    """A strategy's colour, the same in every figure: the registered strategies in order from
    tab20 (a user's own strategy or an 11th never runs out: past the palette, from the name)."""
    palette = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    if strategy in impls.STRATEGIES and impls.STRATEGIES.index(strategy) < len(palette):
        return palette[impls.STRATEGIES.index(strategy)]
    return plt.get_cmap("hsv")(zlib.crc32(strategy.encode()) % 256 / 256)


FIGURE_FORMATS = ("png", "svg")
README_BEGIN = "<!-- stratbench report --publish: begin (generated; do not edit by hand) -->"
README_END = "<!-- stratbench report --publish: end -->"


def _fmt_count(n: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}"


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(
        _op=table["op"], _dir=table["direction"].map(matrix.DIRECTIONS.index),
        _strategy=table["strategy"].map(impls.STRATEGIES.index),
    ).sort_values(["_op", "_dir", "size", "_strategy"], kind="stable").drop(columns=["_op", "_dir", "_strategy"])


def _unit(direction: str) -> str:
    return "samples/s" if direction == matrix.TRAIN_STEP else "elements/s"


def metric_table(table: pd.DataFrame, op: str, direction: str, baseline: str = matrix.BASELINE):
    """(numbers, text): rows (shape, metric), columns strategies, for one op and direction.
    Text cells mark a noisy timing (metrics.marked)."""
    rows = _ordered(table[(table["op"] == op) & (table["direction"] == direction)])
    numbers, text = {}, {}
    for shape, group in rows.groupby("shape", sort=False):
        for r in group.itertuples():
            cells = {}
            if r.status == status.OK:
                speedup = speedup_of(r._asdict(), group, baseline).value
                cells = {
                    "median time": (r.median_s, metrics.marked(format_seconds(r.median_s), False, r.noisy,
                                                               **metrics.row_marks(r._asdict()))),
                    f"throughput ({_unit(direction)})": (r.elements_per_s, _fmt_count(r.elements_per_s, "/s")),
                    f"speedup over {baseline}": (speedup, speedup_text(r._asdict(), group, baseline) or None),
                    "roofline fraction": (r.roofline_fraction, None),
                    "call floor": ((r.floor_s, metrics.marked(format_seconds(r.floor_s), False, False,
                                                              call_bound=str(r.call_bound) == "True"))
                                   if pd.notna(getattr(r, "floor_s", None)) else (np.nan, "")),
                    "TF allocator peak (MB)": (r.peak_tf_bytes / 1e6, None) if pd.notna(r.peak_tf_bytes)
                    else (np.nan, "not measured"),  # the table's footer says why
                    "process above start (MB)": (r.own_rss_bytes / 1e6, None)
                    if pd.notna(getattr(r, "own_rss_bytes", None)) else (np.nan, "not measured"),
                    "kept for backward (bytes/element)": (r.kept_for_backward_bytes / r.size, None)
                    if pd.notna(getattr(r, "kept_for_backward_bytes", None)) else (np.nan, ""),
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


def headline(table: pd.DataFrame, baseline: str = matrix.BASELINE) -> pd.DataFrame:
    """Speedup over `baseline` at the largest size of each (op, direction), with its 95%
    interval where the run paired them: rows are (op, direction, shape), columns strategies;
    fastest, tied and noisy marked (metrics.marked)."""
    table = _ordered(table)
    cells = {}
    for (op, direction), group in table.groupby(["op", "direction"], sort=False):
        largest = group[group["size"] == group["size"].max()]
        row = {}
        for _, r in largest.iterrows():
            if r["status"] != status.OK:
                row[r["strategy"]] = r["status"]
            elif speedup := speedup_text(r, largest, baseline):
                fastest, tie = rank_of(r, largest)
                row[r["strategy"]] = metrics.marked(speedup, fastest, r["noisy"], tie, **metrics.row_marks(r))
        cells[(op, direction, largest["shape"].iloc[0])] = row
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = ["op", "direction", "shape"]
    return out.reindex(columns=[s for s in impls.STRATEGIES if s in out.columns]).fillna("")


# ---------------------------------------------------------------- figures


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
    return "; ".join(parts) + (". Medians of paired rounds; bands and error bars are 95% intervals (of the median time; "
                               "of the paired speedup), or the IQR for results kept without samples.")


def _finish(fig, env: dict, out: pathlib.Path, name: str, note: str | None = None) -> list[pathlib.Path]:
    """Caption (`note`, or the machine and settings of env), layout, and the figure in every format."""
    # The caption, wrapped to the figure's width; the axes are laid out above all its lines.
    lines = textwrap.wrap(note or caption(env), width=int(fig.get_figwidth() / 0.06))
    fig.text(0.5, 0.005, "\n".join(lines), ha="center", va="bottom", fontsize=7.5, color="0.3")
    fig.tight_layout(rect=(0, (len(lines) * 7.5 * 1.35 + 6) / (fig.get_figheight() * 72), 1, 0.93))
    paths = []
    for fmt in FIGURE_FORMATS:
        path = out / f"{name}{env.get('name_suffix', '')}.{fmt}"
        fig.savefig(path, dpi=110)
        paths.append(path)
    plt.close(fig)
    return paths


def _legend(fig, axes):
    handles = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="upper center", ncol=min(8, len(handles)), fontsize=8,
               frameon=False)


def _ok(table, op, direction=None):
    sel = (table["op"] == op) & (table["status"] == status.OK)
    if direction:
        sel &= table["direction"] == direction
    return table[sel].sort_values("size")


def throughput_figure(table, op, env, out):
    directions = [d for d in matrix.KERNEL_DIRECTIONS if len(_ok(table, op, d))]
    if not directions:
        return []
    fig, axes = plt.subplots(1, len(directions), figsize=(4.6 * len(directions), 4.2), squeeze=False, sharey=True)
    for ax, direction in zip(axes[0], directions):
        rows = _ok(table, op, direction)
        for strategy, s in sorted(rows.groupby("strategy"), key=lambda kv: impls.STRATEGIES.index(kv[0])):
            low_s, high_s = _band(s)
            fast, slow = s["size"] / low_s, s["size"] / high_s
            ax.plot(s["size"], s["elements_per_s"], marker="o", ms=3.5, label=strategy, color=color(strategy))
            ax.fill_between(s["size"], slow, fast, color=color(strategy), alpha=0.18, linewidth=0)
            floor = pd.to_numeric(s.get("floor_s"), errors="coerce") if "floor_s" in s else pd.Series(dtype=float)
            if floor.notna().any():  # what the strategy would reach if the op cost nothing but its call
                ax.plot(s["size"], s["size"] / floor, ls=":", lw=1, color=color(strategy))
        roof = rows.dropna(subset=["roofline_bytes_per_s"]).drop_duplicates("size")
        if len(roof):
            per_element = roof["bytes_per_s"] / roof["elements_per_s"]  # bytes the case moves per element
            ax.plot(roof["size"], roof["roofline_bytes_per_s"] / per_element, "k--", lw=1.2,
                    label="memory roofline (same traffic)")
        ax.plot([], [], ls=":", lw=1, color="0.4", label="call floor (dotted, per strategy)")
        ax.set(xscale="log", yscale="log", title=f"{op}: {direction}", xlabel="elements per call (an op along an axis: rows x cols)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("throughput (elements/s, higher is better)")
    _legend(fig, axes)
    return _finish(fig, env, out, f"throughput_{op}")


def _band(rows) -> tuple[pd.Series, pd.Series]:
    """(low, high) seconds around each row's median: its 95% interval where the run kept one
    (paired rounds), else the IQR (asv and pytest-benchmark results)."""
    number = lambda column: pd.to_numeric(rows[column], errors="coerce")  # noqa: E731  (None where not kept)
    median, half = number("median_s"), number("iqr_s").fillna(0) / 2
    low = number("ci_low_s").fillna((median - half).clip(lower=median * 0.05))
    high = number("ci_high_s").fillna(median + half)
    return low, high


def _bars(ax, values: pd.DataFrame, low=None, high=None):
    """Grouped bars: one group per row of `values`, one bar per column (strategy)."""
    width = 0.8 / max(1, len(values.columns))
    x = np.arange(len(values.index))
    for i, strategy in enumerate(values.columns):
        v = values[strategy].to_numpy(dtype=float)
        yerr = None
        if low is not None:
            yerr = np.vstack([v - low[strategy].to_numpy(dtype=float), high[strategy].to_numpy(dtype=float) - v])
            yerr = np.nan_to_num(np.clip(yerr, 0, None))
        ax.bar(x + (i - (len(values.columns) - 1) / 2) * width, v, width, yerr=yerr, capsize=2,
               label=strategy, color=color(strategy), error_kw={"lw": 0.8})
    ax.set_xticks(x, [str(i) for i in values.index])
    ax.grid(True, axis="y", alpha=0.3)


def _at_largest(rows):
    return rows[rows["size"] == rows["size"].max()]


def speedup_figure(table, op, env, out, baseline=matrix.BASELINE):
    rows = _ok(table, op)
    rows = pd.concat([_at_largest(g) for _, g in rows.groupby("direction")]) if len(rows) else rows
    base = rows[rows["strategy"] == baseline].set_index("direction")["median_s"]
    if base.empty:
        return []
    rows = rows[rows["direction"].isin(base.index)]
    pivot = lambda col: rows.pivot(index="direction", columns="strategy", values=col)  # noqa: E731
    median, iqr = pivot("median_s"), pivot("iqr_s").fillna(0)
    order = [d for d in matrix.DIRECTIONS if d in median.index]
    strategies = [s for s in impls.STRATEGIES if s in median.columns]
    median, iqr = median.loc[order, strategies], iqr.loc[order, strategies]
    b = base.loc[order]
    speedups = {(r["direction"], r["strategy"]): speedup_of(r, rows[rows["direction"] == r["direction"]], baseline)
                for _, r in rows.iterrows()}
    grid = lambda part: pd.DataFrame({s: [getattr(speedups[(d, s)], part) if (d, s) in speedups else np.nan  # noqa: E731
                                           for d in order] for s in strategies}, index=order)
    speedup, low, high = grid("value"), grid("low"), grid("high")
    if not np.isfinite(low.to_numpy(dtype=float)[speedup.notna().to_numpy()]).all():
        # results without paired intervals (before paired rounds, other tools): the IQR as a band
        low, high = (median + iqr / 2).rdiv(b, axis=0), (median - iqr / 2).clip(lower=1e-12).rdiv(b, axis=0)
    fig, ax = plt.subplots(figsize=(9, 4.4))
    _bars(ax, speedup, low, high)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    sizes = ", ".join(f"{d}: {rows.loc[rows['direction'] == d, 'shape'].iloc[0]}" for d in order)
    ax.set(ylabel=f"speedup over {baseline} (x, log scale)", title=f"{op}: speedup over {baseline} at the largest size\n({sizes})")
    ax.title.set_fontsize(10)
    _legend(fig, ax)
    return _finish(fig, env, out, f"speedup_{op}")


MEMORY_PANELS = (  # column, title: each a case's own memory, per element (per call = per element x elements)
    ("peak_tf_bytes", "TF allocator peak above the inputs"),
    ("own_rss_bytes", "process memory above the case's start"),
    ("kept_for_backward_bytes", "kept by the forward for its backward"),
)


def memory_figure(table, op, env, out, direction="forward_backward"):
    rows = _ok(table, op, direction)
    if rows.empty:
        return []
    panels = [(c, t) for c, t in MEMORY_PANELS if c in rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, (column, label) in zip(axes[0], panels):
        values = pd.to_numeric(rows[column], errors="coerce")
        for strategy, s in sorted(rows.assign(v=values).groupby("strategy"), key=lambda kv: impls.STRATEGIES.index(kv[0])):
            s = s[s["v"].notna()]
            ax.plot(s["size"], s["v"] / s["size"], marker="o", ms=3.5, label=strategy, color=color(strategy))
        ax.set(xscale="log", yscale="symlog", xlabel="elements per call", title=f"{op} {direction}:\n{label}")
        ax.title.set_fontsize(10)
        ax.grid(True, which="major", alpha=0.3)
        if values.isna().all():  # not measurable under this setting: say why, not an empty frame
            why = next((n.split(": ", 1)[1] for n in unmeasured_items(rows) if n.startswith(f"{column}: ")),
                       "not measured")
            ax.text(0.5, 0.5, "not measured here:\n" + textwrap.fill(why, 44), ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="0.3")
    axes[0][0].set_ylabel("bytes per element (symlog: 0 shown)")
    _legend(fig, axes)
    return _finish(fig, env, out, f"memory_{op}")


def compile_figure(table, op, env, out):
    rows = _ok(table, op)
    rows = rows[rows["direction"].isin(matrix.KERNEL_DIRECTIONS)]
    if rows.empty:
        return []
    rows = pd.concat([_at_largest(g) for _, g in rows.groupby("direction")])
    values = rows.pivot(index="direction", columns="strategy", values="compile_s")
    values = values.loc[[d for d in matrix.DIRECTIONS if d in values.index],
                        [s for s in impls.STRATEGIES if s in values.columns]]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    _bars(ax, values)
    ax.set(ylabel="first call minus a warm call (s)",
           title=f"{op}: tracing and compile time at the largest size (first call, excluded from the timings)")
    ax.title.set_fontsize(10)
    _legend(fig, ax)
    return _finish(fig, env, out, f"compile_{op}")


def train_figure(table, env, out):
    rows = table[(table["direction"] == matrix.TRAIN_STEP) & (table["status"] == status.OK)]
    ops = sorted(set(rows["op"]))
    if not ops:
        return []
    fig, axes = plt.subplots(1, len(ops), figsize=(4.8 * len(ops), 4.2), squeeze=False)
    for ax, op in zip(axes[0], ops):
        r = rows[rows["op"] == op]
        values = r.pivot(index="size", columns="strategy", values="elements_per_s")
        values = values[[s for s in impls.STRATEGIES if s in values.columns]]
        _bars(ax, values)
        ax.set(yscale="log", xlabel="batch size", title=f"MLP train step using {op}")
    axes[0][0].set_ylabel("samples/s (higher is better, log scale)")
    _legend(fig, axes)
    return _finish(fig, env, out, "train_step")


# ---------------------------------------------------------------- writing


def _markdown(frame: pd.DataFrame) -> str:
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
    ok = _ordered(table[table["status"] == status.OK])
    names = settings_of(table)
    cells = {}
    for (op, direction), group in ok.groupby(["op", "direction"], sort=False):
        largest = group[group["size"] == group["size"].max()]
        shape = largest["shape"].iloc[0]
        times = {(r.strategy, r.env): (r.median_s, r.noisy) for r in largest.itertuples()}
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


def settings_figure(table, op, env, out, direction="forward_backward"):
    """Median time per strategy under each setting, at the largest size of `direction`."""
    rows = _ok(table, op, direction)
    if rows.empty or rows["env"].nunique() < 2:
        return []
    rows = rows[rows["size"] == rows["size"].max()]
    values = rows.pivot(index="strategy", columns="env", values="median_s") * 1e3
    values = values.reindex(index=[s for s in impls.STRATEGIES if s in values.index],
                            columns=[n for n in settings_of(table) if n in values.columns])
    measured = rows.dropna(subset=["roofline_bytes_per_s"]).drop_duplicates("env")
    roof = pd.Series(roofline_seconds(measured).to_numpy(), index=measured["env"])
    fig, ax = plt.subplots(figsize=(9, 4.4))
    width = 0.8 / len(values.columns)
    x = np.arange(len(values.index))
    for i, name in enumerate(values.columns):
        ax.bar(x + (i - (len(values.columns) - 1) / 2) * width, values[name], width,
               label=describe_setting(env, name), color=plt.get_cmap("Set2").colors[i % 8])
        if name in roof.index:
            ax.axhline(roof[name] * 1e3, ls="--", lw=1, color=plt.get_cmap("Set2").colors[i % 8])
    ax.set_xticks(x, values.index)
    ax.set(yscale="log", ylabel="ms per call (lower is better, log scale)",
           title=f"{op} {direction} at {rows['shape'].iloc[0]}: each strategy under each environment setting\n"
                 "(dashed: the memory roofline of the same traffic)")
    ax.title.set_fontsize(10)
    ax.grid(True, axis="y", alpha=0.3)
    _legend(fig, ax)
    return _finish(fig, env, out, f"settings_{op}")


def unmeasured_items(rows: pd.DataFrame) -> list[str]:
    """Every 'metric: why' in the rows' `unmeasured` cells (each joins its items with '; ')."""
    return [n for text in rows["unmeasured"].dropna() for n in str(text).split("; ") if n]


def unmeasured_notes(table: pd.DataFrame) -> list[str]:
    """Each distinct 'metric: why' of the figures left empty, with how many cases it hit."""
    counts = pd.Series(unmeasured_items(table[table["status"] == status.OK])).value_counts()
    return [f"{note} ({count} cases)" for note, count in counts.items()]


def write(table: pd.DataFrame, out, env: dict | None = None, caps: dict | None = None,
          baseline: str = matrix.BASELINE, log=print) -> dict:
    """Writes every figure and table for `table` into `out`; with several environment
    settings, one set per setting (names end in _<setting>) and the settings comparison.
    Returns {"figures": [...], "tables": {(op, direction, setting): path of the .md},
    "capabilities": path or None, "settings": path or None}."""
    out = pathlib.Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    env = env or {"machine": ", ".join(sorted(map(str, table["machine"].dropna().unique()))) or "unknown",
                  "commit": str(table["commit"].dropna().iloc[0]) if table["commit"].notna().any() else ""}
    names = settings_of(table)
    written = {"figures": [], "tables": {}, "capabilities": None, "settings": None}
    for name in names:
        part = table[table["env"] == name]
        suffix = f"_{name}" if len(names) > 1 else ""
        measured_with = part["measured_with"].dropna().unique() if "measured_with" in part else []
        part_env = env | {"setting": name, "name_suffix": suffix, "measured_with": "; ".join(map(str, measured_with))}
        notes = unmeasured_notes(part)
        for op in sorted(set(part["op"])):
            for figure in (throughput_figure, speedup_figure, memory_figure, compile_figure):
                kwargs = {"baseline": baseline} if figure is speedup_figure else {}
                written["figures"] += figure(part, op, part_env, out, **kwargs)
            for direction in [d for d in matrix.DIRECTIONS if d in set(part.loc[part["op"] == op, "direction"])]:
                numbers, text = metric_table(part, op, direction, baseline)
                stem = out / "tables" / f"{op}_{direction}{suffix}"
                numbers.to_csv(f"{stem}.csv")
                footer = "".join(f"\n\nNot measured here: {n}" for n in notes) if notes else ""
                pathlib.Path(f"{stem}.md").write_text(_markdown(text) + footer + "\n")
                written["tables"][(op, direction, name)] = pathlib.Path(f"{stem}.md")
        written["figures"] += train_figure(part, part_env, out)
    preferred = headline_setting(table, env)
    headline(table[table["env"] == preferred], baseline).to_csv(out / "tables" / "headline.csv")
    if len(names) > 1:
        settings = settings_table(table, preferred)
        settings.to_csv(out / "tables" / "settings.csv")
        (out / "tables" / "settings.md").write_text(_markdown(settings) + "\n")
        written["settings"] = out / "tables" / "settings.md"
        for op in sorted(set(table["op"])):
            written["figures"] += settings_figure(table, op, env, out)
    if caps:
        caps_table = capabilities.table(caps)
        caps_table.to_csv(out / "tables" / "capabilities.csv")
        written["capabilities"] = out / "tables" / "capabilities.csv"
    log(f"report: {len(written['figures'])} figures and {len(written['tables'])} tables in {out}")
    return written


def source_of(path) -> tuple[pd.DataFrame, dict | None, dict | None, pathlib.Path]:
    """(table, environment, capabilities, report folder) of any stored results."""
    from stratbench import loaders

    path = pathlib.Path(path)
    table = loaders.load_any(path)
    run_dir = path if path.is_dir() else path.parent
    env_file = run_dir / "environment.json"
    env = results.read_json(env_file) if (run_dir / "cases.json").exists() and env_file.exists() else None
    caps = capabilities.load(run_dir) if env else None
    out = run_dir / "report" if env else run_dir / f"{path.stem}-report"
    return table, env, caps, out


def latest_run(results: pathlib.Path) -> pathlib.Path | None:
    """The most recently written `stratbench run` directory under `results`."""
    runs = sorted(results.glob("*/*/cases.json"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else None


# ---------------------------------------------------------------- machines side by side


def machine_runs(root) -> dict:
    """{machine identity: (run dir, its table at the setting that machine gets by default, env)}:
    per machine type under root, its newest run with oneDNN as that CPU has it by default
    (else its newest run)."""
    newest, names = {}, {}
    for run_dir in results.runs_under(root):
        env = results.read_json(run_dir / "environment.json") if (run_dir / "environment.json").exists() else {}
        if not env.get("cpu_model"):
            continue
        # runs that did not record their memory (before 2026-12) join the type they otherwise are
        identity = environment.machine_identity(env | {"memory_bytes": None})
        if env.get("memory_bytes"):
            names[identity] = environment.machine_identity(env)
        table = results.load(run_dir)
        # a run with oneDNN as the CPU has it unasked (what the machine gets by default) first,
        # then the newest, then the one with the most cases
        rank = (env.get("onednn") == environment.onednn_by_default(env.get("cpu_flags") or ""),
                results.run_time(run_dir), int((table["status"] == status.OK).sum()))
        if identity not in newest or rank > newest[identity][3]:
            newest[identity] = (run_dir, table, env, rank)
    out = {}
    for identity, (run_dir, table, env, _) in sorted(newest.items()):
        identity = names.get(identity, identity)
        table = table[table["env"] == headline_setting(table, env)]
        if not env.get("roofline"):  # before the roofline tool its fractions were of a TF copy: not comparable
            table = table.assign(roofline_fraction=np.nan)
        out[identity] = (run_dir, table, env)
    return out


def machines_table(runs: dict, baseline: str = matrix.BASELINE) -> pd.DataFrame:
    """Per op, direction and strategy, at the largest and the smallest size each machine
    measured: each machine's speedup over `baseline` (paired, with its 95% interval where
    the run kept one) and time; rows (op, direction, size, strategy), columns machines."""
    cells = {}
    for identity, (_, table, env) in runs.items():
        column = f"{identity} ({describe_setting(env, headline_setting(table, env))})"
        for (op, direction), group in _ordered(table).groupby(["op", "direction"], sort=False):
            for which, size in (("largest", group["size"].max()), ("smallest", group["size"].min())):
                at = group[group["size"] == size]
                for _, r in at.iterrows():
                    key = (op, direction, f"{which}: {r['shape']}", r["strategy"])
                    if r["status"] != status.OK:
                        cells.setdefault(key, {})[column] = r["status"]
                        continue
                    fastest, tie = rank_of(r, at)
                    speedup = speedup_text(r, at, baseline)
                    cells.setdefault(key, {})[column] = metrics.marked(
                        (f"{speedup} " if speedup else "") + f"({format_seconds(r['median_s'])})",
                        fastest, r["noisy"], tie, **metrics.row_marks(r))
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = ["op", "direction", "size", "strategy"]
    return out.fillna("")


def machines_figure(runs: dict, out: pathlib.Path, baseline: str = matrix.BASELINE, direction: str = "forward_backward"):
    """Speedup over `baseline` per strategy and machine at each op's largest size, one panel per op."""
    frames = []
    for identity, (_, table, _) in runs.items():
        for op, group in table[(table["direction"] == direction) & (table["status"] == status.OK)].groupby("op"):
            at = group[group["size"] == group["size"].max()]
            base = at.loc[at["strategy"] == baseline, "median_s"]
            if base.empty:
                continue
            speedups = [speedup_of(r, at, baseline) for _, r in at.iterrows()]
            value = [s.value for s in speedups]
            frames.append(pd.DataFrame({"machine": identity, "op": op, "strategy": at["strategy"].to_numpy(),
                                        "speedup": value, "shape": at["shape"].to_numpy(),
                                        "low": [s.low if math.isfinite(s.low) else s.value for s in speedups],
                                        "high": [s.high if math.isfinite(s.high) else s.value for s in speedups]}))
    if not frames:
        return []
    data = pd.concat(frames)
    ops = sorted(data["op"].unique())
    fig, axes = plt.subplots(1, len(ops), figsize=(4.8 * len(ops), 4.4), squeeze=False, sharey=True)
    palette = plt.get_cmap("Set2").colors
    machines = list(runs)
    for ax, op in zip(axes[0], ops):
        d = data[data["op"] == op]
        strategies = [s for s in impls.STRATEGIES if s in set(d["strategy"])]
        width = 0.8 / len(machines)
        for i, machine in enumerate(machines):
            m = d[d["machine"] == machine].set_index("strategy").reindex(strategies)
            x = np.arange(len(strategies)) + (i - (len(machines) - 1) / 2) * width
            err = np.nan_to_num(np.clip(np.vstack([m["speedup"] - m["low"], m["high"] - m["speedup"]]).astype(float), 0, None))
            ax.bar(x, m["speedup"], width, yerr=err, capsize=2, label=machine, color=palette[i % len(palette)],
                   error_kw={"lw": 0.8})
        ax.set_xticks(np.arange(len(strategies)), strategies, rotation=30, ha="right")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(yscale="log", title=f"{op} {direction} at {d['shape'].iloc[0]}")
        ax.title.set_fontsize(10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"speedup over {baseline} (log scale)")
    _legend(fig, axes)
    note = ("Each machine's newest run, at the setting it gets by default; error bars: the 95% interval of the paired "
            "speedup where the run kept one (runs before paired rounds: ratios of medians).")
    return _finish(fig, {}, out, "machines", note=note)


def machines_lines(base: pathlib.Path, rel, baseline: str = matrix.BASELINE) -> list[str]:
    """results/README.md's machines: a section per machine type (its newest run's headline)
    and the side-by-side table and figure (written to base/machines)."""
    try:
        written = write_machines(base, base / "machines", baseline, log=lambda m: None)
    except ValueError:
        return []
    lines = ["## Every machine type measured", "",
             "Results are filed under the machine type that made them (`stratbench/environment.py`, "
             "`machine_identity`: CPU model, vector ISA, logical CPUs, memory, GPUs; runs before 2026-12 did "
             "not record their memory). Each type's newest run:", ""]
    for identity, (run_dir, table, env) in written["runs"].items():
        lines += [f"### {identity}", "", f"From `{rel(run_dir)}`: {caption(env | {'setting': headline_setting(table, env)})}",
                  "", _markdown(headline(table, baseline)), ""]
    lines += ["### Side by side", "", f"![machines]({rel(written['figures'][0])})" if written["figures"] else "", "",
              f"Table: [{rel(written['table'])}]({rel(written['table'])}) (CSV beside it).", ""]
    return lines


def write_machines(root, out, baseline: str = matrix.BASELINE, log=print) -> dict:
    """machines.md, machines.csv and the machines figure for every machine type under root."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = machine_runs(root)
    if not runs:
        raise ValueError(f"no `stratbench run` results with a recorded CPU under {root}")
    table = machines_table(runs, baseline)
    table.to_csv(out / "machines.csv")
    lines = ["Each machine type's newest run under " + str(root) + ":", ""]
    for identity, (run_dir, _, env) in runs.items():
        lines.append(f"- **{identity}**: `{run_dir}` ({caption(env | {'setting': headline_setting(results.load(run_dir), env)})})")
    lines += ["", f"Speedup over {baseline} and median time at each op's largest and smallest size. {metrics.MARKS_LEGEND}.",
              "", _markdown(table), ""]
    (out / "machines.md").write_text("\n".join(lines))
    figures = machines_figure(runs, out, baseline)
    log(f"report: {len(runs)} machines side by side in {out}")
    return {"table": out / "machines.md", "figures": figures, "runs": runs}


# ---------------------------------------------------------------- TensorFlow releases


def _version_key(version) -> tuple:
    return tuple(int(part) for part in str(version).split(".") if part.isdigit())


def release_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the commit measured under the most TensorFlow releases (asv's release
    matrix, asv.releases.conf.json), at each op's largest size.  ValueError when no
    commit has two releases."""
    rows = table[table["tensorflow"].notna()]
    releases = rows.groupby("commit")["tensorflow"].nunique()
    if releases.empty or releases.max() < 2:
        raise ValueError("no commit measured under two or more TensorFlow releases in these results: run "
                         "`asv run --config asv.releases.conf.json HEAD^!` (README, \"Across TensorFlow releases\")")
    rows = rows[rows["commit"] == releases.idxmax()]
    return pd.concat([_at_largest(group) for _, group in rows.groupby("op")])


def release_table(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, text) of release_rows: rows (op, direction, strategy), a column per
    release, oldest first.  Text: the median per call and, in brackets, the speedup over
    the release before it (above 1: this release is faster); a case a release could not
    measure says so."""
    versions = sorted(rows["tensorflow"].unique(), key=_version_key)
    ordered = _ordered(rows)
    index = list(dict.fromkeys(zip(ordered["op"], ordered["direction"], ordered["strategy"])))
    numbers = (rows[rows["status"] == status.OK]
               .pivot_table(index=["op", "direction", "strategy"], columns="tensorflow", values="median_s", aggfunc="first")
               .reindex(index=pd.MultiIndex.from_tuples(index, names=["op", "direction", "strategy"]), columns=versions))
    text = numbers.copy().astype(object)
    for key, times in numbers.iterrows():
        before = None
        for version, t in times.items():
            if pd.isna(t):
                text.at[key, version] = "not measured"
                continue
            text.at[key, version] = format_seconds(t) + (f" ({before / t:.2f}x)" if before else "")
            before = t
    text.columns = [f"TF {v}" for v in versions]
    return numbers, text


def release_figure(numbers: pd.DataFrame, env: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Per op (rows) and direction (columns): median per call against TensorFlow release,
    a line per strategy."""
    ops = list(dict.fromkeys(numbers.index.get_level_values("op")))
    directions = [d for d in matrix.KERNEL_DIRECTIONS if d in set(numbers.index.get_level_values("direction"))]
    fig, axes = plt.subplots(len(ops), len(directions), figsize=(4.2 * len(directions), 3.0 * len(ops)),
                             squeeze=False, sharex=True)
    x = np.arange(len(numbers.columns))
    for (op, direction, strategy), times in numbers.iterrows():
        ax = axes[ops.index(op)][directions.index(direction)]
        ax.plot(x, times.to_numpy(dtype=float) * 1e3, marker="o", ms=4, label=strategy, color=color(strategy))
        ax.set(yscale="log", title=f"{op}: {direction}", xticks=x)
        ax.yaxis.set_major_formatter(matplotlib.ticker.LogFormatter())  # 20, not 2x10^1
        ax.yaxis.set_minor_formatter(matplotlib.ticker.LogFormatter(minor_thresholds=(2, 0.4)))
        ax.set_xticklabels([f"TF {v}" for v in numbers.columns])
        ax.grid(True, which="both", alpha=0.3)
    for row in axes:
        row[0].set_ylabel("ms per call (lower is better)")
    _legend(fig, axes)
    return _finish(fig, env, out, "releases",
                   note=f"{env['machine']}, commit {env['commit'][:8]}: one commit under each TensorFlow release "
                        "(asv.releases.conf.json); asv's timer at forward_backward, stratbench's harness in asv's "
                        "setup_cache (its median per call) elsewhere.")


def write_releases(table: pd.DataFrame, out, log=print) -> dict:
    """releases.md, releases.csv and the releases figure for one commit measured under
    several TensorFlow releases; returns {"table": path of the .md, "figures": [...]}."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = release_rows(table)
    numbers, text = release_table(rows)
    sizes = ", ".join(f"{op} {shape}" for op, shape in rows.groupby("op")["shape"].first().items())
    commit = str(rows["commit"].iloc[0])
    env = {"machine": ", ".join(sorted(map(str, rows["machine"].dropna().unique()))), "commit": commit}
    numbers.to_csv(out / "releases.csv")
    timers = "; ".join(f"{n} cases: {how}" for how, n in rows.loc[rows["status"] == status.OK, "measured_with"]
                       .value_counts().items())
    (out / "releases.md").write_text(
        f"Median per call at each op's largest size ({sizes}), commit {commit[:8]}, float32 on the CPU. "
        f"`(Nx)`: speedup over the release in the column before (above 1: faster). Timed by {timers}.\n\n"
        + _markdown(text) + "\n")
    figures = release_figure(numbers, env, out)
    log(f"report: releases table and figure for {len(numbers.columns)} TensorFlow releases in {out}")
    return {"table": out / "releases.md", "figures": figures}


# ---------------------------------------------------------------- publishing


def _environment_table(env: dict) -> str:
    keys = ["machine", "host", "cpu_model", "cpu_isa", "cpu_count", "memory_bytes", "gpus", "platform", "python", "tensorflow", "numpy",
            "tf_cuda_build", "onednn", "cpu_allocator", "tf_allocator_stats", "tf_intra_op_threads",
            "tf_inter_op_threads", "omp_num_threads", "variables", "custom_op_build", "commit", "dirty"]
    return pd.DataFrame({"value": [str(env.get(k, "")).replace("|", "/") for k in keys]},
                        index=keys).rename_axis("field").to_markdown()


def _settings_lines(table, env, preferred: str) -> list[str]:
    """The settings measured, how each was made, and what TensorFlow did under it."""
    lines = []
    for name in settings_of(table):
        variables = ((env.get("settings") or {}).get(name) or {}).get("variables")
        made = ", ".join(f"`{k}={v}`" for k, v in (variables or {}).items()) or "the shell's own variables"
        mark = " (what this machine gets by default)" if name == preferred else ""
        lines.append(f"- **{describe_setting(env, name)}**{mark}: {made}")
    return lines


def limits_lines(table: pd.DataFrame, env: dict) -> list[str]:
    """What the published figures are measured against: the machine's bandwidths (the
    roofline tool's), each strategy's call floor, the cases over the roofline (a defect)
    and the call-bound ones."""
    lines = []
    machine = pd.DataFrame((env.get("roofline") or {}).get("machine") or [])
    if len(machine):
        machine = machine.assign(gb_per_s=machine["bytes_per_s"] / 1e9, mib=machine["array_bytes"] / 2**20)
        wide = machine.pivot_table(index=["pattern", "store"], columns="threads", values="gb_per_s")
        wide.columns = [f"GB/s, {t} thread{'s' if t > 1 else ''}" for t in wide.columns]
        lines += [f"Memory bandwidth of this machine (stratbench/roofline.py: the best of repeated passes over arrays of "
                  f"{machine['mib'].iloc[0]:.0f} MiB each, past the last-level cache; read + written bytes per second). "
                  "A case's roofline is the same tool's best time for the case's own reads, writes and footprint, "
                  "so a small case is held to cache bandwidth, a large one to this:", "",
                  _markdown(wide.round(1)), ""]
    ok = table[table["status"] == status.OK]
    if "floor_s" in ok and ok["floor_s"].notna().any():
        floors = ok.dropna(subset=["floor_s"]).pivot_table(index=["env", "direction"], columns="strategy",
                                                             values="floor_s", aggfunc="median")
        floors = floors.reindex(columns=[c for c in impls.STRATEGIES if c in floors.columns])
        lines += [f"Call floor per strategy (the same step around an op that does nothing, timed in the rounds of "
                  f"each series' smallest size; median over ops). A case under {metrics.CALL_BOUND:g}x its floor is "
                  f"marked `{metrics.CALL_BOUND_MARK}` call-bound: its time is the call, not the op:", "",
                  _markdown(floors.map(lambda v: "" if pd.isna(v) else format_seconds(v))), ""]
        bound = ok[ok["call_bound"].astype(str) == "True"]
        if len(bound):
            counts = bound.groupby("size").size()
            lines += ["Call-bound cases by size: " + ", ".join(f"{size:g}: {n} of {(ok['size'] == size).sum()}"
                                                                for size, n in counts.items()) + ".", ""]
    fractions = pd.to_numeric(ok["roofline_fraction"], errors="coerce")
    if fractions.notna().any():
        over = ok[fractions > metrics.ROOFLINE_EXCEEDED]
        lines += [f"Roofline fractions: at most {fractions.max():.2f} "
                  f"({len(over)} cases over {metrics.ROOFLINE_EXCEEDED:g}, marked `{metrics.EXCEEDED_MARK}`"
                  + (": " + ", ".join(over["key"]) if len(over) else "") + ").", ""]
    return lines


def noise_check(folder: pathlib.Path, env: dict) -> str:
    """What `stratbench noise` found on this run's kind of CPU (the newest of its CSVs under
    `folder`), as a paragraph for the published tables; '' when none was run there."""
    from stratbench import compare

    found = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        table = pd.read_csv(path)
        if "cpu_model" in table and (table["cpu_model"] == env.get("cpu_model")).all():
            found.append((path.stat().st_mtime, path, table))
    if not found:
        return ""
    _, path, table = max(found, key=lambda f: f[0])
    case = f"{table['op'].iloc[0]} {table['strategy'].iloc[0]} {table['direction'].iloc[0]} {table['shape'].iloc[0]}" \
        if "op" in table else "one memory-bound case"
    said = compare.resolves(table).replace("\n", "; ")
    return (f"The change detector (`stratbench noise`, {case}, against itself and with 10% and 20% more elements, "
            f"{table['rerun'].nunique()} reruns, from `{path.name}`): {said}.")


def publish(run_dir: pathlib.Path, written: dict, table, env, caps, results_readme: pathlib.Path,
            top_readme: pathlib.Path | None, baseline: str = matrix.BASELINE, command: str = "") -> None:
    """results/README.md from the run, and the headline block of the top-level README."""
    base = results_readme.parent
    rel = lambda p: os.path.relpath(p, base)  # noqa: E731
    ok = table["status"].eq(status.OK).sum()
    names = settings_of(table)
    preferred = headline_setting(table, env)
    at_preferred = table[table["env"] == preferred]
    lines = [
        f"# Published results: {machine_name(env)}",
        "",
        f"Generated by `{command}` from the run in `{rel(run_dir)}` ({ok} of {len(table)} cases measured; "
        "the rest are recorded with their reason in cases.csv). Do not edit by hand: rerun the command.",
        "", "## Environment", "", _environment_table(env), "",
        "Environment settings measured (each in worker processes of its own):", "",
        *_settings_lines(table, env, preferred), "",
    ]
    notes = unmeasured_notes(table)
    if notes:
        lines += ["Figures left empty, and why (a missing metric never fails a case):", "",
                  *[f"- {n}" for n in notes], ""]
    limits = limits_lines(table, env)
    if limits:
        lines += ["## What each figure is measured against: the roofline and the call floors", "", *limits]
    lines += [
        f"## Headline: speedup over {baseline} at the largest size ({describe_setting(env, preferred)})",
        "", f"{metrics.MARKS_LEGEND}. train_step is samples/s of one MLP training step.",
        "", _markdown(headline(at_preferred, baseline)), "",
    ]
    noise = noise_check(base / "noise", env)
    if noise:
        lines += ["## What this machine resolves (`stratbench noise`)", "", noise, ""]
    if written.get("settings"):
        lines += [f"## What the environment setting changes, per strategy (speedup over {preferred})", "",
                  "Median per call at the largest size of each op and direction; `(Nx)` is the same strategy's "
                  f"speedup over its time under {preferred}.", "", written["settings"].read_text(), ""]
    if caps:
        lines += ["## Capability matrix (each cell exercised, see stratbench/capabilities.py)", "",
                  _markdown(capabilities.table(caps)), "",
                  "\n".join(f"- **{k}**: {v}" for k, v in capabilities.CHECKS.items()), ""]
    figures = {p.stem: p for p in written["figures"] if p.suffix == ".png"}
    suffixes = {name: f"_{name}" if len(names) > 1 else "" for name in names}
    for op in sorted(set(table["op"])):
        lines += [f"## {op}", ""]
        if f"settings_{op}" in figures:
            lines += [f"![settings_{op}]({rel(figures[f'settings_{op}'])})", ""]
        for name in names:
            if len(names) > 1:
                lines += [f"### {op} under {describe_setting(env, name)}", ""]
            for stem in (f"throughput_{op}", f"speedup_{op}", f"memory_{op}", f"compile_{op}"):
                if stem + suffixes[name] in figures:
                    lines += [f"![{stem}{suffixes[name]}]({rel(figures[stem + suffixes[name]])})", ""]
            for (o, direction, setting), path in written["tables"].items():
                if o == op and setting == name:
                    lines += [f"#### {op}, {direction}" + (f" ({name})" if len(names) > 1 else ""), "",
                              path.read_text(), f"CSV: [{rel(path.with_suffix('.csv'))}]"
                              f"({rel(path.with_suffix('.csv'))})", ""]
    for name in names:
        if "train_step" + suffixes[name] in figures:
            lines += [f"## Training step (small MLP, impls/keras.py), {describe_setting(env, name)}", "",
                      f"![train_step]({rel(figures['train_step' + suffixes[name]])})", ""]
    lines += machines_lines(base, rel, baseline)
    results_readme.write_text("\n".join(lines))
    if top_readme is None:
        return
    text = top_readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{top_readme} has no block between the markers {README_BEGIN!r} and {README_END!r}")
    top_base = top_readme.parent
    block = [
        README_BEGIN, "",
        f"Speedup over {baseline} at the largest size, from the run in "
        f"[{os.path.relpath(results_readme, top_base)}]({os.path.relpath(results_readme, top_base)}) "
        f"({caption(env | {'setting': preferred})}) {metrics.MARKS_LEGEND}.",
        "", _markdown(headline(at_preferred, baseline)), "",
    ]
    if noise:
        block += [noise, ""]
    if written.get("settings"):
        settings = settings_table(table, preferred)
        settings = settings[settings.index.get_level_values("direction") == "forward_backward"]
        block += [f"The same strategies under each environment setting (forward_backward at the largest size; "
                  f"`(Nx)`: speedup over the same strategy under {preferred}, what this machine gets by default; "
                  "every direction in the results README):", "", *_settings_lines(table, env, preferred), "",
                  _markdown(settings), ""]
    if caps:
        block += ["What each strategy survives (every cell exercised by `stratbench run`):", "",
                  _markdown(capabilities.table(caps)), ""]
    for op in sorted(set(table["op"])):
        name = f"throughput_{op}{suffixes.get(preferred, '')}"
        if name in figures:
            block += [f"![{op} throughput]({os.path.relpath(figures[name], top_base)})", ""]
    block.append(README_END)
    head, rest = text.split(README_BEGIN, 1)
    top_readme.write_text(head + "\n".join(block) + rest.split(README_END, 1)[1])
