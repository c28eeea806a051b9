"""`stratbench report`: figures (PNG and SVG) and tables (Markdown and CSV) from any
stored results -- a `stratbench run` directory, asv results or pytest-benchmark JSON
(all read through stratbench.loaders.load_any into one tidy table).

With --publish it also writes results/README.md and the headline block of the
top-level README from the same run, so nothing published is edited by hand.
"""

from __future__ import annotations

import json
import os
import pathlib

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import impls  # noqa: E402
from stratbench import capabilities, matrix  # noqa: E402
from stratbench.results import format_seconds  # noqa: E402

COLORS = dict(zip(impls.STRATEGIES, plt.get_cmap("tab10").colors))
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
        _op=table["op"].map(impls.OPS.index), _dir=table["direction"].map(matrix.DIRECTIONS.index),
        _strategy=table["strategy"].map(impls.STRATEGIES.index),
    ).sort_values(["_op", "_dir", "size", "_strategy"], kind="stable").drop(columns=["_op", "_dir", "_strategy"])


def _unit(direction: str) -> str:
    return "samples/s" if direction == matrix.TRAIN_STEP else "elements/s"


def metric_table(table: pd.DataFrame, op: str, direction: str, baseline: str = "native"):
    """(numbers, text): rows (shape, metric), columns strategies, for one op and direction.
    Text cells carry '~' where the timing is noisy (IQR > 10% of the median)."""
    rows = _ordered(table[(table["op"] == op) & (table["direction"] == direction)])
    numbers, text = {}, {}
    for shape, group in rows.groupby("shape", sort=False):
        base = group.loc[(group["strategy"] == baseline) & (group["status"] == "ok"), "median_s"]
        for r in group.itertuples():
            cells = {}
            if r.status == "ok":
                cells = {
                    "median time": (r.median_s, format_seconds(r.median_s) + ("~" if r.noisy else "")),
                    f"throughput ({_unit(direction)})": (r.elements_per_s, _fmt_count(r.elements_per_s, "/s")),
                    f"speedup over {baseline}": ((float(base.iloc[0]) / r.median_s, None) if len(base) else (np.nan, None)),
                    "roofline fraction": (r.roofline_fraction, None),
                    "TF allocator peak (MB)": (r.peak_tf_bytes / 1e6 if pd.notna(r.peak_tf_bytes) else np.nan, None),
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


def headline(table: pd.DataFrame, baseline: str = "native") -> pd.DataFrame:
    """Speedup over `baseline` at the largest size of each (op, direction): rows are
    (op, direction, shape), columns strategies; '*' marks the fastest, '~' a noisy one."""
    table = _ordered(table)
    cells = {}
    for (op, direction), group in table.groupby(["op", "direction"], sort=False):
        largest = group[group["size"] == group["size"].max()]
        ok = largest[largest["status"] == "ok"]
        base = ok.loc[ok["strategy"] == baseline, "median_s"]
        row = {}
        for r in largest.itertuples():
            if r.status != "ok":
                row[r.strategy] = r.status
            elif len(base):
                row[r.strategy] = f"{float(base.iloc[0]) / r.median_s:.2f}x" + \
                    ("*" if r.median_s == ok["median_s"].min() else "") + ("~" if r.noisy else "")
        cells[(op, direction, largest["shape"].iloc[0])] = row
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = ["op", "direction", "shape"]
    return out.reindex(columns=[s for s in impls.STRATEGIES if s in out.columns]).fillna("")


# ---------------------------------------------------------------- figures


def caption(env: dict) -> str:
    where = env.get("machine", "unknown machine")
    if env.get("cpu_model"):
        where += f" ({env['cpu_model']}, {env.get('cpu_count', '?')} cores"
        where += f", GPU {', '.join(env['gpus'])})" if env.get("gpus") else ", no GPU)"
    parts = [where]
    if env.get("tensorflow"):
        parts.append(f"TensorFlow {env['tensorflow']}, Python {env.get('python', '?')}")
    if env.get("commit"):
        parts.append(f"commit {env['commit'][:8]}")
    return "; ".join(parts) + ". Medians of at least 5 samples; bands and error bars span the IQR."


def _finish(fig, env: dict, out: pathlib.Path, name: str) -> list[pathlib.Path]:
    fig.text(0.5, 0.005, caption(env), ha="center", va="bottom", fontsize=7.5, color="0.3", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    paths = []
    for fmt in FIGURE_FORMATS:
        path = out / f"{name}.{fmt}"
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
    sel = (table["op"] == op) & (table["status"] == "ok")
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
            fast = s["size"] / (s["median_s"] - s["iqr_s"].fillna(0) / 2).clip(lower=s["median_s"] * 0.05)
            slow = s["size"] / (s["median_s"] + s["iqr_s"].fillna(0) / 2)
            ax.plot(s["size"], s["elements_per_s"], marker="o", ms=3.5, label=strategy, color=COLORS[strategy])
            ax.fill_between(s["size"], slow, fast, color=COLORS[strategy], alpha=0.18, linewidth=0)
        roof = rows.dropna(subset=["roofline_bytes_per_s"]).drop_duplicates("size")
        if len(roof):
            per_element = roof["bytes_per_s"] / roof["elements_per_s"]  # bytes the case moves per element
            ax.plot(roof["size"], roof["roofline_bytes_per_s"] / per_element, "k--", lw=1.2,
                    label="copy roofline (same bytes)")
        ax.set(xscale="log", yscale="log", title=f"{op}: {direction}", xlabel="elements per call (softmax: rows x cols)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("throughput (elements/s, higher is better)")
    _legend(fig, axes)
    return _finish(fig, env, out, f"throughput_{op}")


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
               label=strategy, color=COLORS.get(strategy), error_kw={"lw": 0.8})
    ax.set_xticks(x, [str(i) for i in values.index])
    ax.grid(True, axis="y", alpha=0.3)


def _at_largest(rows):
    return rows[rows["size"] == rows["size"].max()]


def speedup_figure(table, op, env, out, baseline="native"):
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
    speedup = median.rdiv(b, axis=0)
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


def memory_figure(table, op, env, out, direction="forward_backward"):
    rows = _ok(table, op, direction)
    if rows.empty:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), squeeze=False)
    # The worker's RSS includes TensorFlow itself (hundreds of MB), so that panel is linear.
    for ax, column, label, yscale in ((axes[0][0], "peak_tf_bytes", "TF allocator peak above the inputs", "log"),
                                      (axes[0][1], "peak_rss_bytes", "worker process peak RSS", "linear")):
        for strategy, s in sorted(rows.groupby("strategy"), key=lambda kv: impls.STRATEGIES.index(kv[0])):
            s = s[s[column] > 0]
            ax.plot(s["size"], s[column] / 1e6, marker="o", ms=3.5, label=strategy, color=COLORS[strategy])
        if not (rows[column] > 0).any():  # nothing to draw on a log axis (small sizes: TF reuses its pool)
            yscale = "linear"
        ylabel = "MB (zero, at small sizes, not shown)" if yscale == "log" else "MB"
        ax.set(xscale="log", yscale=yscale, xlabel="elements per call", ylabel=ylabel, title=f"{op} {direction}: {label}")
        ax.title.set_fontsize(10)
        ax.grid(True, which="major", alpha=0.3)
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
    rows = table[(table["direction"] == matrix.TRAIN_STEP) & (table["status"] == "ok")]
    ops = [op for op in impls.OPS if op in set(rows["op"])]
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


def write(table: pd.DataFrame, out, env: dict | None = None, caps: dict | None = None,
          baseline: str = "native", log=print) -> dict:
    """Writes every figure and table for `table` into `out`; returns {"figures": [...],
    "tables": {(op, direction): path of the .md}, "capabilities": path or None}."""
    out = pathlib.Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    env = env or {"machine": ", ".join(sorted(map(str, table["machine"].dropna().unique()))) or "unknown",
                  "commit": str(table["commit"].dropna().iloc[0]) if table["commit"].notna().any() else ""}
    written = {"figures": [], "tables": {}, "capabilities": None}
    for op in [o for o in impls.OPS if o in set(table["op"])]:
        for figure in (throughput_figure, speedup_figure, memory_figure, compile_figure):
            kwargs = {"baseline": baseline} if figure is speedup_figure else {}
            written["figures"] += figure(table, op, env, out, **kwargs)
        for direction in [d for d in matrix.DIRECTIONS if d in set(table.loc[table["op"] == op, "direction"])]:
            numbers, text = metric_table(table, op, direction, baseline)
            stem = out / "tables" / f"{op}_{direction}"
            numbers.to_csv(f"{stem}.csv")
            pathlib.Path(f"{stem}.md").write_text(_markdown(text) + "\n")
            written["tables"][(op, direction)] = pathlib.Path(f"{stem}.md")
    written["figures"] += train_figure(table, env, out)
    headline(table, baseline).to_csv(out / "tables" / "headline.csv")
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
    env = json.loads(env_file.read_text()) if (run_dir / "cases.json").exists() and env_file.exists() else None
    caps = capabilities.load(run_dir) if env else None
    out = run_dir / "report" if env else run_dir / f"{path.stem}-report"
    return table, env, caps, out


def latest_run(results: pathlib.Path) -> pathlib.Path | None:
    """The most recently written `stratbench run` directory under `results`."""
    runs = sorted(results.glob("*/*/cases.json"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else None


# ---------------------------------------------------------------- publishing


def _environment_table(env: dict) -> str:
    keys = ["machine", "cpu_model", "cpu_count", "gpus", "platform", "python", "tensorflow", "numpy",
            "tf_cuda_build", "commit", "dirty"]
    return pd.DataFrame({"value": [str(env.get(k, "")) for k in keys]}, index=keys).rename_axis("field").to_markdown()


def publish(run_dir: pathlib.Path, written: dict, table, env, caps, results_readme: pathlib.Path,
            top_readme: pathlib.Path | None, baseline: str = "native", command: str = "") -> None:
    """results/README.md from the run, and the headline block of the top-level README."""
    base = results_readme.parent
    rel = lambda p: os.path.relpath(p, base)  # noqa: E731
    ok = table["status"].eq("ok").sum()
    lines = [
        f"# Published results: {env.get('machine', '?')}",
        "",
        f"Generated by `{command}` from the run in `{rel(run_dir)}` ({ok} of {len(table)} cases measured; "
        "the rest are recorded with their reason in cases.csv). Do not edit by hand: rerun the command.",
        "", "## Environment", "", _environment_table(env), "",
        f"## Headline: speedup over {baseline} at the largest size",
        "", "`*` fastest, `~` noisy (IQR > 10% of the median). train_step is samples/s of one MLP training step.",
        "", _markdown(headline(table, baseline)), "",
    ]
    if caps:
        lines += ["## Capability matrix (each cell exercised, see stratbench/capabilities.py)", "",
                  _markdown(capabilities.table(caps)), "",
                  "\n".join(f"- **{k}**: {v}" for k, v in capabilities.CHECKS.items()), ""]
    figures = {p.stem: p for p in written["figures"] if p.suffix == ".png"}
    for op in [o for o in impls.OPS if o in set(table["op"])]:
        lines += [f"## {op}", ""]
        for stem in (f"throughput_{op}", f"speedup_{op}", f"memory_{op}", f"compile_{op}"):
            if stem in figures:
                lines += [f"![{stem}]({rel(figures[stem])})", ""]
        for (o, direction), path in written["tables"].items():
            if o == op:
                lines += [f"### {op}, {direction}", "", path.read_text(), f"CSV: [{rel(path.with_suffix('.csv'))}]"
                          f"({rel(path.with_suffix('.csv'))})", ""]
    if "train_step" in figures:
        lines += ["## Training step (small MLP, impls/keras.py)", "", f"![train_step]({rel(figures['train_step'])})", ""]
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
        f"({caption(env)}) `*` fastest, `~` noisy.",
        "", _markdown(headline(table, baseline)), "",
    ]
    if caps:
        block += ["What each strategy survives (every cell exercised by `stratbench run`):", "",
                  _markdown(capabilities.table(caps)), ""]
    if "throughput_spiky" in figures:
        block += [f"![spiky throughput]({os.path.relpath(figures['throughput_spiky'], top_base)})", ""]
    block.append(README_END)
    head, rest = text.split(README_BEGIN, 1)
    top_readme.write_text(head + "\n".join(block) + rest.split(README_END, 1)[1])
