"""The report's figures (matplotlib, PNG and SVG), each captioned with the machine and the
settings it was measured with.  PER_OP lists the figures drawn for every op: `report.write`
draws them and `publishing.publish` links them, both by walking it."""

from __future__ import annotations

import math
import pathlib
import textwrap
import zlib

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import impls  # noqa: E402
from stratbench import matrix, status  # noqa: E402
from stratbench.measurement import speedup_of  # noqa: E402
from stratbench.tables import (at_largest, caption, describe_setting, roofline_seconds, settings_of,  # noqa: E402
                               unmeasured_items)


def color(strategy: str):
    """A strategy's colour, the same in every figure: the registered strategies in order from
    tab20 (a user's own strategy or an 11th never runs out: past the palette, from the name)."""
    palette = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    if strategy in impls.STRATEGIES and impls.STRATEGIES.index(strategy) < len(palette):
        return palette[impls.STRATEGIES.index(strategy)]
    return plt.get_cmap("hsv")(zlib.crc32(strategy.encode()) % 256 / 256)


FIGURE_FORMATS = ("png", "svg")


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


def throughput_figure(table, op, env, out, baseline=matrix.BASELINE):
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


def speedup_figure(table, op, env, out, baseline=matrix.BASELINE):
    rows = _ok(table, op)
    rows = pd.concat([at_largest(g) for _, g in rows.groupby("direction")]) if len(rows) else rows
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


def memory_figure(table, op, env, out, baseline=matrix.BASELINE, direction="forward_backward"):
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


def compile_figure(table, op, env, out, baseline=matrix.BASELINE):
    rows = _ok(table, op)
    rows = rows[rows["direction"].isin(matrix.KERNEL_DIRECTIONS)]
    if rows.empty:
        return []
    rows = pd.concat([at_largest(g) for _, g in rows.groupby("direction")])
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


# The figures drawn for every op, each figure(table, op, env, out, baseline) -> its files: report.write
# draws them in this order and publishing links what it drew (the first, in the top README).
PER_OP = (throughput_figure, speedup_figure, memory_figure, compile_figure)


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
