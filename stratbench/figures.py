"""The report's figures (matplotlib, PNG and SVG), each captioned with the machine and the
settings it was measured with.  PER_OP lists the figures drawn for every op: `report.write`
draws them and `publishing.publish` links them, both by walking it."""

from __future__ import annotations

import math
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.patheffects  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import matplotlib.transforms  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import impls  # noqa: E402
from stratbench import matrix, metrics, status  # noqa: E402
from stratbench.measurement import speedup_of  # noqa: E402
from stratbench.plotting import (PlainLog, at_largest_measured, band, bars, by_strategy, color, finish,  # noqa: E402
                                 headroom, legend, legend_key, mark_unmeasured, measured_rows, missing_rows, rows_of)
from stratbench.tables import describe_setting, rank_in_group, roofline_seconds, settings_of, unmeasured_items  # noqa: E402


def throughput_figure(table, op, env, out, baseline=matrix.BASELINE):
    directions = [d for d in matrix.KERNEL_DIRECTIONS if len(rows_of(table, op, d))]
    if not directions:
        return []
    fig, axes = plt.subplots(1, len(directions), figsize=(4.6 * len(directions), 4.2), squeeze=False, sharey=True)
    for ax, direction in zip(axes[0], directions):
        rows = measured_rows(table, op, direction)
        for strategy, s in by_strategy(rows):
            low_s, high_s = band(s)
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
        mark_unmeasured(ax, rows_of(table, op, direction))
        ax.set(xscale="log", yscale="log", title=f"{op}: {direction}", xlabel="elements per call (an op along an axis: rows x cols)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("throughput (elements/s, higher is better)")
    legend(fig, axes)
    return finish(fig, env, out, f"throughput_{op}")


# The relative figure's top: the strategies a user weighs against each other lie within this factor of
# the fastest; a strategy beyond it is out of the running (its factor is in the tables and the throughput
# figure), and showing it would squeeze the 1.1x differences near 1 into a line.
RELATIVE_CEILING = 3.0


def relative_to_fastest(rows) -> pd.DataFrame:
    """Each measured row's time over the fastest strategy's at its size, with the 95% interval of
    that paired ratio where the run kept one (vs_fastest*), else the ratio of the medians (no interval):
    columns size, strategy, value, low, high.  The fastest is 1.0."""
    rows = rows[rows["status"] == status.OK]

    def number(column):  # a column read back from CSV or JSON as floats; all NaN where the table lacks it
        return pd.to_numeric(rows[column], errors="coerce") if column in rows else pd.Series(np.nan, index=rows.index)

    by_medians = number("median_s") / number("median_s").groupby(rows["size"]).transform("min")
    paired = number("vs_fastest").notna()
    return pd.DataFrame({"size": rows["size"], "strategy": rows["strategy"],
                         "value": number("vs_fastest").where(paired, by_medians),
                         "low": number("vs_fastest_low").where(paired), "high": number("vs_fastest_high").where(paired)})


def relative_figure(table, op, env, out, baseline=matrix.BASELINE):
    """Per direction: each strategy's time over the fastest's at each size, on a linear axis, where
    the 1.1-1.5x differences between the leading strategies are visible (the throughput figure's
    log axis spans six decades)."""
    directions = [d for d in matrix.KERNEL_DIRECTIONS if len(measured_rows(table, op, d))]
    if not directions:
        return []
    fig, axes = plt.subplots(1, len(directions), figsize=(4.6 * len(directions), 4.4), squeeze=False, sharey=True)
    bottom = 0.9
    for ax, direction in zip(axes[0], directions):
        ratios = relative_to_fastest(rows_of(table, op, direction))
        bottom = min(bottom, ratios["low"].min() - 0.02, ratios["value"].min() - 0.02)
        beyond = []
        for strategy, r in by_strategy(ratios):
            ax.plot(r["size"], r["value"], marker="o", ms=3.5, label=strategy, color=color(strategy))
            ax.fill_between(r["size"], r["low"], r["high"], color=color(strategy), alpha=0.2, linewidth=0)
            far = r[r["value"] > RELATIVE_CEILING]
            if len(far):  # off the scale: a triangle at the top edge, and its largest factor below the panel
                ax.plot(far["size"], [RELATIVE_CEILING] * len(far), "^", ms=6, color=color(strategy), clip_on=False)
                most = far["value"].max()
                beyond.append(f"{strategy} up to {most:.3g}x" if most < 1000 else f"{strategy} up to {most:,.0f}x")
        if beyond:
            legend_key(ax, "^", f"beyond {RELATIVE_CEILING:g}x (at the top edge)", ms=6)
        ax.axhline(1.0, color="k", lw=0.8)
        mark_unmeasured(ax, rows_of(table, op, direction), top=True)
        xlabel = "elements per call (an op along an axis: rows x cols)"
        if beyond:
            xlabel += "\n" + textwrap.fill(f"beyond {RELATIVE_CEILING:g}x: " + ", ".join(beyond), 60)
        ax.set(xscale="log", title=f"{op}: {direction}")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.yaxis.set_minor_locator(matplotlib.ticker.MultipleLocator(0.1))  # a 1.1x step is a grid line
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, axis="y", which="minor", alpha=0.12)
    for ax in axes[0]:
        ax.set_ylim(bottom, RELATIVE_CEILING)
    axes[0][0].set_ylabel("time / the fastest's time at that size\n(1 = fastest, lower is better; band: 95% interval)")
    legend(fig, axes)
    return finish(fig, env, out, f"relative_{op}")


def bar_label(row, group, baseline) -> str:
    """The text above a speedup bar: the speedup, marked fastest ('*') or tied for fastest ('=')
    as the tables decide it (tables.rank_in_group, metrics.marked); the noisy mark stays in the tables."""
    speedup = speedup_of(row, group, baseline)
    if not math.isfinite(speedup.value):
        return ""
    fastest, tie = rank_in_group(row, group)
    value = f"{speedup.value:.2f}x" if speedup.value >= 0.1 else f"{speedup.value:.2g}x"  # 0.012x, not 0.01x
    return metrics.marked(value, fastest, False, tie)


def speedup_figure(table, op, env, out, baseline=matrix.BASELINE):
    rows = at_largest_measured(rows_of(table, op))
    base = rows[(rows["strategy"] == baseline) & (rows["status"] == status.OK)].set_index("direction")["median_s"]
    if base.empty:
        return []
    rows = rows[rows["direction"].isin(base.index)]
    ok = rows[rows["status"] == status.OK]
    order = [d for d in matrix.DIRECTIONS if d in base.index]
    strategies = [s for s, _ in by_strategy(rows)]
    median = ok.pivot(index="direction", columns="strategy", values="median_s").reindex(index=order, columns=strategies)
    iqr = ok.pivot(index="direction", columns="strategy", values="iqr_s").reindex_like(median).fillna(0)
    b = base.loc[order]
    group = {d: rows[rows["direction"] == d] for d in order}
    speedups = {(r["direction"], r["strategy"]): speedup_of(r, group[r["direction"]], baseline) for _, r in ok.iterrows()}
    marks = {(r["direction"], r["strategy"]): bar_label(r, group[r["direction"]], baseline) for _, r in ok.iterrows()}
    grid = lambda cell: pd.DataFrame({s: [cell(d, s) for d in order] for s in strategies}, index=order)  # noqa: E731
    part = lambda name: grid(lambda d, s: getattr(speedups[(d, s)], name) if (d, s) in speedups else np.nan)  # noqa: E731
    speedup, low, high = part("value"), part("low"), part("high")
    if not np.isfinite(low.to_numpy(dtype=float)[speedup.notna().to_numpy()]).all():
        # results without paired intervals (before paired rounds, other tools): the IQR as a band
        low, high = (median + iqr / 2).rdiv(b, axis=0), (median - iqr / 2).clip(lower=1e-12).rdiv(b, axis=0)
    labels = grid(lambda d, s: marks.get((d, s), ""))
    fig, ax = plt.subplots(figsize=(10, 4.8))
    bars(ax, speedup, low, high, labels=labels, missing=missing_rows(rows, "direction", speedup))
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLog())  # 0.1 and 2, not 1e-01 and 2x10^0
    ax.yaxis.set_minor_formatter(PlainLog(minor_thresholds=(2, 0.4)))
    headroom(ax)
    ax.set_xticks(ax.get_xticks(), [f"{d}\n{rows.loc[rows['direction'] == d, 'shape'].iloc[0]}" for d in order])
    ax.set(ylabel=f"speedup over {baseline} (x, log scale)",
           title=f"{op}: speedup over {baseline} at the largest size (below each direction)\n"
                 f"above each bar: the speedup; {metrics.FASTEST_MARK} fastest beyond the 95% interval, "
                 f"{metrics.TIE_MARK} tied for fastest (interval within 5%)")
    ax.title.set_fontsize(10)
    legend(fig, ax)
    return finish(fig, env, out, f"speedup_{op}")


MEMORY_PANELS = (  # column, title: each a case's own memory, per element (per call = per element x elements)
    ("peak_tf_bytes", "TF allocator peak above the inputs"),
    ("own_rss_bytes", "process memory above the case's start"),
    ("kept_for_backward_bytes", "kept by the forward for its backward"),
)
# The memory axis is logarithmic (its values span 0.01 to 1000 bytes per element); a value at or
# below this floor (0, and the process shrinking during a case: a negative difference) is drawn on
# the floor with its own marker, and said so.
MEMORY_FLOOR = 0.1


def memory_figure(table, op, env, out, baseline=matrix.BASELINE, direction="forward_backward"):
    table = metrics.allocator_zeros_unmeasured(table)  # a 0 from TF's allocator is not measured, not 0 bytes
    rows = measured_rows(table, op, direction)
    if rows.empty:
        return []
    panels = [(c, t) for c, t in MEMORY_PANELS if c in rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False, sharex=True, sharey=True)
    for ax, (column, label) in zip(axes[0], panels):
        values = pd.to_numeric(rows[column], errors="coerce")
        for strategy, s in by_strategy(rows.assign(v=values / rows["size"])):
            # NaN stays NaN: the line breaks where a case was not measured, never drawn at 0
            ax.plot(s["size"], s["v"].clip(lower=MEMORY_FLOOR), marker="o", ms=3.5, label=strategy,
                    color=color(strategy))
            floored = s[s["v"] <= MEMORY_FLOOR]
            ax.plot(floored["size"], [MEMORY_FLOOR] * len(floored), "v", ms=6, mfc="white", color=color(strategy))
        if (values / rows["size"] <= MEMORY_FLOOR).any():
            legend_key(ax, "v", f"{MEMORY_FLOOR:g} or less (0; below 0: the process shrank): on the dotted floor",
                 ms=6, mfc="white")
        ax.axhline(MEMORY_FLOOR, color="0.5", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="elements per call", title=f"{op} {direction}:\n{label}")
        ax.title.set_fontsize(10)
        ax.grid(True, which="major", alpha=0.3)
        if values.isna().all():  # not measurable under this setting: say why, not an empty frame
            why = next((n.split(": ", 1)[1] for n in unmeasured_items(rows) if n.startswith(f"{column}: ")), "")
            ax.text(0.5, 0.5, "not measured here" + (":\n" + textwrap.fill(why, 44) if why else ""), ha="center",
                    va="center", transform=ax.transAxes, fontsize=9, color="0.3")
        else:  # the cases this panel lacks (too slow, or this metric not measured for them) at their sizes
            mark_unmeasured(ax, rows_of(table, op, direction), column)
    per_element = np.concatenate([pd.to_numeric(rows[c], errors="coerce") / rows["size"] for c, _ in panels])
    highest = np.nanmax(per_element, initial=MEMORY_FLOOR * 100)  # a panel with nothing measured still gets a scale
    axes[0][0].set_ylim(MEMORY_FLOOR / 4, highest * 2)  # below the floor: room for the not-measured marks
    axes[0][0].set_xlim(rows["size"].min() / 1.6, rows["size"].max() * 1.6)  # sharex: also a panel of gaps only
    axes[0][0].set_ylabel("bytes per element (log scale)")
    legend(fig, axes)
    return finish(fig, env, out, f"memory_{op}")


def compile_figure(table, op, env, out, baseline=matrix.BASELINE):
    rows = rows_of(table, op)
    rows = at_largest_measured(rows[rows["direction"].isin(matrix.KERNEL_DIRECTIONS)])
    if rows.empty:
        return []
    order = [d for d in matrix.DIRECTIONS if d in set(rows["direction"])]
    strategies = [s for s, _ in by_strategy(rows)]
    values = rows.pivot(index="direction", columns="strategy", values="compile_s").reindex(index=order, columns=strategies)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    bars(ax, values.astype(float), missing=missing_rows(rows, "direction", values, "compile_s"))
    highest = np.nanmax(values.to_numpy(dtype=float), initial=0)
    ax.set_ylim(0, highest * 1.1 if highest > 0 else 1)  # seconds from 0 (the scale of nothing measured: 0-1 s)
    ax.set(ylabel="first call minus a warm call (s)",
           title=f"{op}: tracing and compile time at the largest size (first call, excluded from the timings)")
    ax.title.set_fontsize(10)
    legend(fig, ax)
    return finish(fig, env, out, f"compile_{op}")


# The figures drawn for every op, each figure(table, op, env, out, baseline) -> its files: report.write
# draws them in this order and publishing links what it drew (the first, in the top README).
PER_OP = (throughput_figure, relative_figure, speedup_figure, memory_figure, compile_figure)


def train_figure(table, env, out):
    every = table[table["direction"] == matrix.TRAIN_STEP]
    ops = sorted(set(every.loc[every["status"] == status.OK, "op"]))
    if not ops:
        return []
    fig, axes = plt.subplots(1, len(ops), figsize=(4.8 * len(ops), 4.2), squeeze=False)
    for ax, op in zip(axes[0], ops):
        r = every[every["op"] == op]
        strategies = [s for s, _ in by_strategy(r)]
        values = r[r["status"] == status.OK].pivot(index="size", columns="strategy", values="elements_per_s")
        values = values.reindex(index=sorted(set(r["size"])), columns=strategies)
        bars(ax, values.astype(float), missing=missing_rows(r, "size", values))
        ax.set(yscale="log", xlabel="batch size", title=f"MLP train step using {op}")
    axes[0][0].set_ylabel("samples/s (higher is better, log scale)")
    legend(fig, axes)
    return finish(fig, env, out, "train_step")


def settings_figure(table, op, env, out, direction="forward_backward"):
    """Median time per strategy under each setting, at the largest size of `direction`."""
    rows = measured_rows(table, op, direction)
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
    legend(fig, ax)
    return finish(fig, env, out, f"settings_{op}")
