"""`stratbench report`: figures (PNG and SVG) and tables (Markdown and CSV) from any
stored results -- a `stratbench run` directory, asv results or pytest-benchmark JSON
(all read through stratbench.loaders.load_any into one tidy table).  The tables are built
in stratbench/tables.py, the figures drawn in stratbench/figures.py; with --publish,
stratbench/publishing.py writes results/README.md and the top-level README's headline.
"""

from __future__ import annotations

import pathlib

import pandas as pd

from stratbench import capabilities, figures, matrix, repro, results
from stratbench.tables import (headline, headline_setting, markdown, metric_table, settings_of, settings_table,
                               unmeasured_notes)


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
    if env is not None:
        env["repro"] = repro.describe(run_dir)
    caps = capabilities.load(run_dir) if env else None
    out = run_dir / "report" if env else run_dir / f"{path.stem}-report"
    return table, env, caps, out


def latest_run(results: pathlib.Path) -> pathlib.Path | None:
    """The most recently written `stratbench run` directory under `results`."""
    runs = sorted(results.glob("*/*/cases.json"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else None
