"""`stratbench report`: figures (PNG and SVG) and tables (Markdown and CSV) from any
stored results -- a `stratbench run` directory, asv results or pytest-benchmark JSON
(all read through stratbench.loaders.load_any into one tidy table).  The tables are built
in stratbench/tables.py, the figures drawn in stratbench/figures.py; with --publish,
stratbench/publishing.py writes results/README.md and the top-level README's headline.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

from stratbench import capabilities, environment, figures, matrix, metrics, results, status
from stratbench.tables import (caption, headline, headline_setting, machines_table, markdown, metric_table,
                               release_rows, release_table, settings_of, settings_table, unmeasured_notes)


def _png(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    return [p for p in paths if p.suffix == ".png"]


def write(table: pd.DataFrame, out, env: dict | None = None, caps: dict | None = None,
          baseline: str = matrix.BASELINE, log=print) -> dict:
    """Writes every figure and table for `table` into `out`; with several environment
    settings, one set per setting (names end in _<setting>) and the settings comparison.
    Returns {"figures": [every file], "per_op": {(op, setting): {each of figures.PER_OP drawn:
    its PNG}}, "train": {setting: PNG}, "settings_figures": {op: PNG}, "tables": {(op, direction,
    setting): path of the .md}, "capabilities": path or None, "settings": path or None}: what
    publishing links, so that nothing names a figure's file but figures.py."""
    out = pathlib.Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    env = env or {"machine": ", ".join(sorted(map(str, table["machine"].dropna().unique()))) or "unknown",
                  "commit": str(table["commit"].dropna().iloc[0]) if table["commit"].notna().any() else ""}
    names = settings_of(table)
    written = {"figures": [], "per_op": {}, "train": {}, "settings_figures": {}, "tables": {}, "capabilities": None,
               "settings": None}
    for name in names:
        part = table[table["env"] == name]
        suffix = f"_{name}" if len(names) > 1 else ""
        measured_with = part["measured_with"].dropna().unique() if "measured_with" in part else []
        part_env = env | {"setting": name, "name_suffix": suffix, "measured_with": "; ".join(map(str, measured_with))}
        notes = unmeasured_notes(part)
        for op in sorted(set(part["op"])):
            for figure in figures.PER_OP:
                paths = figure(part, op, part_env, out, baseline)
                written["figures"] += paths
                written["per_op"].setdefault((op, name), {}).update({figure: png for png in _png(paths)})
            for direction in [d for d in matrix.DIRECTIONS if d in set(part.loc[part["op"] == op, "direction"])]:
                numbers, text = metric_table(part, op, direction, baseline)
                stem = out / "tables" / f"{op}_{direction}{suffix}"
                numbers.to_csv(f"{stem}.csv")
                footer = "".join(f"\n\nNot measured here: {n}" for n in notes) if notes else ""
                pathlib.Path(f"{stem}.md").write_text(markdown(text) + footer + "\n")
                written["tables"][(op, direction, name)] = pathlib.Path(f"{stem}.md")
        paths = figures.train_figure(part, part_env, out)
        written["figures"] += paths
        written["train"].update({name: png for png in _png(paths)})
    preferred = headline_setting(table, env)
    headline(table[table["env"] == preferred], baseline).to_csv(out / "tables" / "headline.csv")
    if len(names) > 1:
        settings = settings_table(table, preferred)
        settings.to_csv(out / "tables" / "settings.csv")
        (out / "tables" / "settings.md").write_text(markdown(settings) + "\n")
        written["settings"] = out / "tables" / "settings.md"
        for op in sorted(set(table["op"])):
            paths = figures.settings_figure(table, op, env, out)
            written["figures"] += paths
            written["settings_figures"].update({op: png for png in _png(paths)})
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
              "", markdown(table), ""]
    (out / "machines.md").write_text("\n".join(lines))
    drawn = figures.machines_figure(runs, out, baseline)
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
    drawn = figures.release_figure(numbers, env, out)
    log(f"report: releases table and figure for {len(numbers.columns)} TensorFlow releases in {out}")
    return {"table": out / "releases.md", "figures": drawn}
