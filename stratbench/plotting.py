"""How every figure is drawn: each strategy's colour, grouped bars with their intervals, a legend
for the whole figure, marks for what was not measured (shown, not dropped), and the figure saved
with its caption in every format."""

from __future__ import annotations

import pathlib
import textwrap
import zlib

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import matplotlib.transforms  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import impls  # noqa: E402
from stratbench import status  # noqa: E402
from stratbench.tables import caption  # noqa: E402


def color(strategy: str):
    """A strategy's colour, the same in every figure: the registered strategies in order from
    tab20 (a user's own strategy or an 11th never runs out: past the palette, from the name)."""
    palette = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]
    if strategy in impls.STRATEGIES and impls.STRATEGIES.index(strategy) < len(palette):
        return palette[impls.STRATEGIES.index(strategy)]
    return plt.get_cmap("hsv")(zlib.crc32(strategy.encode()) % 256 / 256)


FIGURE_FORMATS = ("png", "svg")


def finish(fig, env: dict, out: pathlib.Path, name: str, note: str | None = None) -> list[pathlib.Path]:
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


def legend(fig, axes):
    handles = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    # matplotlib fills a legend column by column: given in that order, a second row reads on from the first
    labels, ncol = list(handles), min(10, len(handles))
    labels = [labels[i] for c in range(ncol) for i in range(c, len(labels), ncol)]
    fig.legend([handles[k] for k in labels], labels, loc="upper center", ncol=ncol, fontsize=8, frameon=False,
               handletextpad=0.4, columnspacing=1.2)


def legend_key(ax, marker: str, label: str, **style):
    """A grey legend entry for a marker drawn in every strategy's colour (the marker itself gets none)."""
    ax.plot([], [], marker, color="0.4", label=label, **style)


def measured_rows(table, op, direction=None):
    rows = rows_of(table, op, direction)
    return rows[rows["status"] == status.OK]


def rows_of(table, op, direction=None):
    """The rows of an op (and direction), measured or not, by size."""
    sel = table["op"] == op
    if direction:
        sel &= table["direction"] == direction
    return table[sel].sort_values("size", kind="stable")


def by_strategy(rows):
    """(strategy, its rows), in the registry's order (a strategy it does not know: last, by name)."""
    known = list(impls.STRATEGIES)
    return sorted(rows.groupby("strategy"), key=lambda kv: (known.index(kv[0]) if kv[0] in known else len(known), kv[0]))


def why_not(row, column=None) -> str | None:
    """Why a case has no value to draw ('too slow', 'skipped', ...; 'not measured' for a measured
    case without `column`), or None where it has one."""
    if row["status"] != status.OK:
        return str(row["status"]).replace("_", " ")
    if column is not None and pd.isna(pd.to_numeric(row.get(column), errors="coerce")):
        return "not measured"
    return None


UNMEASURED_LABEL = "not measured (at the edge; why beside it)"


def mark_unmeasured(ax, rows, column=None, top=False):
    """A hollow marker in the strategy's colour at each size a strategy has no value, stacked at the
    panel's bottom (top) edge, and why beside the stack: a case that was not measured is shown, not dropped."""
    missing = pd.DataFrame([{"size": r["size"], "strategy": r["strategy"], "why": why}
                            for _, r in rows.iterrows() if (why := why_not(r, column))])
    if missing.empty:
        return
    ax.update_datalim([(size, 1.0) for size in missing["size"]], updatey=False)  # a panel of marks only: its sizes
    edge = ax.get_xaxis_transform()  # x in data, y in axes fractions
    sign, y = (-1, 1.0) if top else (1, 0.0)
    middle = np.sqrt(rows["size"].min() * rows["size"].max())  # the why goes towards the panel's middle
    for size, group in missing.groupby("size"):
        for i, strategy in enumerate(group["strategy"]):
            at = matplotlib.transforms.offset_copy(edge, ax.figure, y=sign * (6 + 7 * i), units="points")
            ax.plot([size], [y], "o", ms=5, mfc="none", mew=1.3, color=color(strategy), transform=at, clip_on=False)
        left = size > middle
        at = matplotlib.transforms.offset_copy(edge, ax.figure, x=-6 if left else 6, y=sign * 6, units="points")
        ax.text(size, y, " / ".join(dict.fromkeys(group["why"])), transform=at, fontsize=7, color="0.25",
                ha="right" if left else "left", va="center")
    legend_key(ax, "o", UNMEASURED_LABEL, ms=5, mfc="none", mew=1.3)


def band(rows) -> tuple[pd.Series, pd.Series]:
    """(low, high) seconds around each row's median: its 95% interval where the run kept one
    (paired rounds), else the IQR (asv and pytest-benchmark results)."""
    number = lambda column: pd.to_numeric(rows[column], errors="coerce")  # noqa: E731  (None where not kept)
    median, half = number("median_s"), number("iqr_s").fillna(0) / 2
    low = number("ci_low_s").fillna((median - half).clip(lower=median * 0.05))
    high = number("ci_high_s").fillna(median + half)
    return low, high


def bars(ax, values: pd.DataFrame, low=None, high=None, labels=None, missing=None):
    """Grouped bars: one group per row of `values`, one bar per column (strategy); `labels` (text per
    cell) written above each bar, `missing` (why per cell) written at the place of a bar not drawn."""
    width = 0.8 / max(1, len(values.columns))
    x = np.arange(len(values.index))
    edge = ax.get_xaxis_transform()  # x in data, y in axes fractions
    for i, strategy in enumerate(values.columns):
        at = x + (i - (len(values.columns) - 1) / 2) * width
        v = values[strategy].to_numpy(dtype=float)
        yerr, top = None, v
        if low is not None:
            yerr = np.vstack([v - low[strategy].to_numpy(dtype=float), high[strategy].to_numpy(dtype=float) - v])
            yerr = np.nan_to_num(np.clip(yerr, 0, None))
            top = v + yerr[1]
        ax.bar(at, v, width, yerr=yerr, capsize=2, label=strategy, color=color(strategy), error_kw={"lw": 0.8})
        for j in range(len(values.index)):
            if labels is not None and np.isfinite(top[j]) and labels[strategy].iloc[j]:
                ax.annotate(labels[strategy].iloc[j], (at[j], top[j]), xytext=(0, 2), textcoords="offset points",
                            rotation=90, ha="center", va="bottom", fontsize=7,
                            path_effects=[matplotlib.patheffects.withStroke(linewidth=2, foreground="white")])
            if missing is not None and isinstance(missing[strategy].iloc[j], str):  # a case not measured: say so
                ax.text(at[j], 0.02, missing[strategy].iloc[j], transform=edge, rotation=90, ha="center",
                        va="bottom", fontsize=7, color=color(strategy), fontweight="bold")
    ax.set_xticks(x, [str(i) for i in values.index])
    ax.set_xlim(-0.5, len(values.index) - 0.5)  # every group's place, also of a bar not drawn
    ax.grid(True, axis="y", alpha=0.3)


class PlainLog(matplotlib.ticker.LogFormatter):
    """A log axis's labels as plain numbers; which ticks get one, as LogFormatter decides."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def headroom(ax, fraction=0.22):
    """Room above the highest bar for the labels written above the bars (log or linear axis)."""
    bottom, top = ax.get_ylim()
    if ax.get_yscale() == "log":
        ax.set_ylim(bottom, top * (top / bottom) ** fraction)
    else:
        ax.set_ylim(bottom, top + (top - bottom) * fraction)


def missing_rows(rows, index: str, like: pd.DataFrame, column=None) -> pd.DataFrame:
    """Why each (index, strategy) cell of `rows` has no value (NaN where it has one), shaped like the bars."""
    why = rows.assign(why=[why_not(r, column) for _, r in rows.iterrows()])
    return why.pivot(index=index, columns="strategy", values="why").reindex(index=like.index, columns=like.columns)


def at_largest_measured(rows):
    """Per direction, its rows (measured or not) at the largest size where something was measured:
    a strategy too slow there stays in, to be marked."""
    return pd.concat([g[g["size"] == g.loc[g["status"] == status.OK, "size"].max()]
                      for _, g in rows.groupby("direction") if (g["status"] == status.OK).any()] or [rows.iloc[:0]])
