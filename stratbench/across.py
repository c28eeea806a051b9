"""Comparisons across runs: machine types side by side (`stratbench report --machines`, and the
published results' section on machines) and one commit under several TensorFlow releases
(`stratbench report --releases`): their tables, figures and files."""

from __future__ import annotations

import math
import pathlib

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

import impls
from stratbench import environment, matrix, metrics, results, status
from stratbench.plotting import color, finish, legend
from stratbench.measurement import speedup_of, speedup_text
from stratbench.results import format_seconds
from stratbench.tables import caption, describe_setting, headline_setting, markdown, ordered, rank_in_group
from stratbench.which_run import is_published_run


def machine_runs(root, published=None) -> dict:
    """{machine identity: (run dir, its table at the setting that machine gets by default, env)}:
    per machine type under root, its published run, else its newest, with oneDNN as that CPU
    has it by default (else with the other setting).  `published`: the run being published
    (else the one a results/README.md names)."""
    newest, names = {}, {}
    for run_dir in results.runs_under(root):
        env = results.read_json(run_dir / "environment.json") if (run_dir / "environment.json").exists() else {}
        if not env.get("cpu_model"):
            continue
        # runs that did not record their memory (older runs) join the type they otherwise are
        identity = environment.machine_identity(env | {"memory_bytes": None})
        if env.get("memory_bytes"):
            names[identity] = environment.machine_identity(env)
        table = results.load(run_dir)
        # a run with oneDNN as the CPU has it unasked (what the machine gets by default) first,
        # then the published one, then the newest, then the one with the most cases
        rank = (env.get("onednn") == environment.onednn_by_default(env.get("cpu_flags") or ""),
                run_dir.resolve() == pathlib.Path(published).resolve() if published else is_published_run(run_dir),
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


def _shown(path) -> str:
    """A path as the reader can follow it: relative to where the command ran, where it is below it."""
    path = pathlib.Path(path).resolve()
    return str(path.relative_to(pathlib.Path.cwd())) if path.is_relative_to(pathlib.Path.cwd()) else str(path)


def write_machines(root, out, baseline: str = matrix.BASELINE, log=print, published=None) -> dict:
    """machines.md, machines.csv and the machines figure for every machine type under root."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = machine_runs(root, published)
    if not runs:
        raise ValueError(f"no `stratbench run` results with a recorded CPU under {root}")
    table = machines_table(runs, baseline)
    table.to_csv(out / "machines.csv")
    lines = [f"Each machine type's published run (else its newest) under {_shown(root)}:", ""]
    for identity, (run_dir, _, env) in runs.items():
        lines.append(f"- **{identity}**: `{_shown(run_dir)}` ({caption(env | {'setting': headline_setting(results.load(run_dir), env)})})")
    lines += ["", f"Speedup over {baseline} and median time at each op's largest and smallest size. {metrics.MARKS_LEGEND}.",
              "", markdown(table), ""]
    (out / "machines.md").write_text("\n".join(lines))
    drawn = machines_figure(runs, out, baseline)
    log(f"report: {len(runs)} machines side by side in {out}")
    return {"table": out / "machines.md", "figures": drawn, "runs": runs}


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
        + markdown(text) + "\n")
    drawn = release_figure(numbers, env, out)
    log(f"report: releases table and figure for {len(numbers.columns)} TensorFlow releases in {out}")
    return {"table": out / "releases.md", "figures": drawn}


def machines_table(runs: dict, baseline: str = matrix.BASELINE) -> pd.DataFrame:
    """Per op, direction and strategy, at the largest and the smallest size each machine
    measured: each machine's speedup over `baseline` (paired, with its 95% interval where
    the run kept one) and time; rows (op, direction, size, strategy), columns machines."""
    cells = {}
    for identity, (_, table, env) in runs.items():
        column = f"{identity} ({describe_setting(env, headline_setting(table, env))})"
        for (op, direction), group in ordered(table).groupby(["op", "direction"], sort=False):
            for which, size in (("largest", group["size"].max()), ("smallest", group["size"].min())):
                at = group[group["size"] == size]
                for _, r in at.iterrows():
                    key = (op, direction, f"{which}: {r['shape']}", r["strategy"])
                    if r["status"] != status.OK:
                        cells.setdefault(key, {})[column] = r["status"]
                        continue
                    fastest, tie = rank_in_group(r, at)
                    speedup = speedup_text(r, at, baseline)
                    cells.setdefault(key, {})[column] = metrics.marked(
                        (f"{speedup} " if speedup else "") + f"({format_seconds(r['median_s'])})",
                        fastest, metrics.is_noisy_row(r), tie, **metrics.row_marks(r))
    out = pd.DataFrame.from_dict(cells, orient="index")
    out.index.names = ["op", "direction", "size", "strategy"]
    return out.fillna("")


def version_key(version) -> tuple:
    return tuple(int(part) for part in str(version).split(".") if part.isdigit())


def at_largest(rows):
    return rows[rows["size"] == rows["size"].max()]


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
    return pd.concat([at_largest(group) for _, group in rows.groupby("op")])


def release_table(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, text) of release_rows: rows (op, direction, strategy), a column per
    release, oldest first.  Text: the median per call and, in brackets, the speedup over
    the release before it (above 1: this release is faster); a case a release could not
    measure says so."""
    versions = sorted(rows["tensorflow"].unique(), key=version_key)
    in_order = ordered(rows)
    index = list(dict.fromkeys(zip(in_order["op"], in_order["direction"], in_order["strategy"])))
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
    legend(fig, axes)
    note = ("Each machine type's published run (else its newest), at the setting it gets by default; error bars: "
            "the 95% interval of the paired speedup where the run kept one (runs before paired rounds: ratios of medians).")
    return finish(fig, {}, out, "machines", note=note)


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
    legend(fig, axes)
    return finish(fig, env, out, "releases",
                   note=f"{env['machine']}, commit {env['commit'][:8]}: one commit under each TensorFlow release "
                        "(asv.releases.conf.json); asv's timer at forward_backward, stratbench's harness in asv's "
                        "setup_cache (its median per call) elsewhere.")
