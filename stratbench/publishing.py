"""`stratbench report --publish`: results/README.md and the headline block of the top-level
README from one run, so nothing published is edited by hand."""

from __future__ import annotations

import os
import pathlib
import shutil

import pandas as pd

import impls
from stratbench import capabilities, figures, matrix, metrics, status
from stratbench.across import write_machines
from stratbench.results import format_seconds
from stratbench.tables import (caption, describe_setting, headline, headline_setting, machine_name, markdown,
                               settings_of, settings_table, unmeasured_notes)
from stratbench.which_run import FROM_RUN

README_BEGIN = "<!-- stratbench report --publish: begin (generated; do not edit by hand) -->"
README_END = "<!-- stratbench report --publish: end -->"


def machines_lines(base: pathlib.Path, rel, baseline: str = matrix.BASELINE, published=None) -> list[str]:
    """results/README.md's machines: a section per machine type (its published run's headline, else its newest)
    and the side-by-side table and figure (written to base/machines)."""
    try:
        written = write_machines(base, base / "machines", baseline, log=lambda m: None, published=published)
    except ValueError:
        return []
    lines = ["## Every machine type measured", "",
             "Results are filed under the machine type that made them (`stratbench/environment.py`, "
             "`machine_identity`: CPU model, vector ISA, logical CPUs, memory, GPUs; older runs did not "
             "record their memory). Each type's published run, else its newest:", ""]
    for identity, (run_dir, table, env) in written["runs"].items():
        lines += [f"### {identity}", "", f"From `{rel(run_dir)}`: {caption(env | {'setting': headline_setting(table, env)})}",
                  "", markdown(headline(table, baseline)), ""]
    lines += ["### Side by side", "", f"![machines]({rel(written['figures'][0])})" if written["figures"] else "", "",
              f"Table: [{rel(written['table'])}]({rel(written['table'])}) (CSV beside it).", ""]
    return lines


def _environment_table(env: dict) -> str:
    keys = ["machine", "host", "cpu_model", "cpu_isa", "cpu_count", "memory_bytes", "transparent_hugepages", "gpus", "platform", "python", "tensorflow", "numpy",
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
                  "A case's roofline is the same kernel for the case's own reads, writes and footprint (the fastest of "
                  "one thread and TF's threads, ordinary and streaming stores), timed in the rounds of the case's "
                  "group, so a small case is held to cache bandwidth, a large one to about this, in the same seconds:",
                  "",
                  markdown(wide.round(1)), ""]
    ok = table[table["status"] == status.OK]
    if "floor_s" in ok and ok["floor_s"].notna().any():
        floors = ok.dropna(subset=["floor_s"]).pivot_table(index=["env", "direction"], columns="strategy",
                                                             values="floor_s", aggfunc="median")
        floors = floors.reindex(columns=[c for c in impls.STRATEGIES if c in floors.columns])
        lines += [f"Call floor per strategy (the same step around an op that does nothing, timed in the rounds of "
                  f"each series' smallest size; median over ops). A case under {metrics.CALL_BOUND:g}x its floor is "
                  f"marked `{metrics.CALL_BOUND_MARK}` call-bound: its time is the call, not the op:", "",
                  markdown(floors.map(lambda v: "" if pd.isna(v) else format_seconds(v))), ""]
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
    """What `stratbench noise` found on this run's kind of CPU, as a paragraph for the published
    tables ('' when none was run there): of its CSVs under `folder`, one made with the rule
    `stratbench compare` ships (decision.recorded_rule), else one that records its threshold,
    then the one with the most reruns, the newest, the last by name (a clone gives every
    file one mtime)."""
    from stratbench import decision, noise

    shipped = decision.recorded_rule(decision.THRESHOLD)

    def made_with_shipped_rule(table) -> bool:
        return all(name in table and (table[name].isna() if value is None else table[name].eq(value)).all()
                   for name, value in shipped.items())

    found = []
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        table = pd.read_csv(path)
        if "cpu_model" in table and (table["cpu_model"] == env.get("cpu_model")).all():
            found.append((made_with_shipped_rule(table), "threshold" in table, table["rerun"].nunique(),
                          path.stat().st_mtime, path.name, path, table))
    if not found:
        return ""
    *_, path, table = max(found, key=lambda f: f[:5])
    case = f"{table['op'].iloc[0]} {table['strategy'].iloc[0]} {table['direction'].iloc[0]} {table['shape'].iloc[0]}" \
        if "op" in table else "one memory-bound case"
    said = noise.resolves(table).replace("\n", "; ")
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
        f"Generated by `{command}` {FROM_RUN.format(rel(run_dir))} ({ok} of {len(table)} cases measured; "
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
        "", f"{metrics.SPEEDUP_MARKS_LEGEND}. train_step is samples/s of one MLP training step.",
        "", markdown(headline(at_preferred, baseline)), "",
        # the tables below show times, and with them the noisy mark (the headline shows none)
        f"Marks in the tables below, which show times: {metrics.MARKS_LEGEND}.", "",
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
                  markdown(capabilities.table(caps)), "",
                  "\n".join(f"- **{k}**: {v}" for k, v in capabilities.CHECKS.items()), ""]
    lines += _per_op_lines(written, table, env, names, rel)
    for name, png in written["train"].items():
        lines += [f"## Training step (small MLP, impls/keras.py), {describe_setting(env, name)}", "", _image(png, rel), ""]
    lines += machines_lines(base, rel, baseline, published=run_dir)
    results_readme.write_text("\n".join(lines))
    if top_readme is not None:
        _publish_headline(top_readme, results_readme, written, table, env, caps, baseline, noise)


def _image(png: pathlib.Path, relative) -> str:
    return f"![{png.stem}]({relative(png)})"


def _per_op_lines(written: dict, table, env, names, rel) -> list[str]:
    """Each op's figures and tables, under each environment setting."""
    lines = []
    for op in sorted(set(table["op"])):
        lines += [f"## {op}", ""]
        if op in written["settings_figures"]:
            lines += [_image(written["settings_figures"][op], rel), ""]
        for name in names:
            if len(names) > 1:
                lines += [f"### {op} under {describe_setting(env, name)}", ""]
            for png in written["per_op"].get((op, name), {}).values():
                lines += [_image(png, rel), ""]
            for (o, direction, setting), path in written["tables"].items():
                if o == op and setting == name:
                    lines += [f"#### {op}, {direction}" + (f" ({name})" if len(names) > 1 else ""), "",
                              path.read_text(), f"CSV: [{rel(path.with_suffix('.csv'))}]"
                              f"({rel(path.with_suffix('.csv'))})", ""]
    return lines


def _publish_headline(top_readme: pathlib.Path, results_readme: pathlib.Path, written: dict, table, env, caps,
                      baseline: str, noise: str) -> None:
    """The headline block of the top-level README, between its markers."""
    preferred = headline_setting(table, env)
    at_preferred = table[table["env"] == preferred]
    text = top_readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{top_readme} has no block between the markers {README_BEGIN!r} and {README_END!r}")
    top_base = top_readme.parent
    block = [
        README_BEGIN, "",
        f"Speedup over {baseline} at the largest size, from the run in "
        f"[{os.path.relpath(results_readme, top_base)}]({os.path.relpath(results_readme, top_base)}) "
        f"({caption(env | {'setting': preferred})}) {metrics.SPEEDUP_MARKS_LEGEND}.",
        "", markdown(headline(at_preferred, baseline)), "",
    ]
    if noise:
        block += [noise, ""]
    if written.get("settings"):
        settings = settings_table(table, preferred)
        settings = settings[settings.index.get_level_values("direction") == "forward_backward"]
        block += [f"The same strategies under each environment setting (forward_backward at the largest size; "
                  f"`(Nx)`: speedup over the same strategy under {preferred}, what this machine gets by default; "
                  f"{metrics.NOISY_LEGEND}; every direction in the results README):", "",
                  *_settings_lines(table, env, preferred), "", markdown(settings), ""]
    if caps:
        block += ["What each strategy survives (every cell exercised by `stratbench run`):", "",
                  markdown(capabilities.table(caps)), ""]
    # Each op's time relative to the fastest (where a 1.1x difference shows), copied to a
    # fixed place so the README's links do not change with every published run.
    headline_figures = results_readme.parent / "headline"
    headline_figures.mkdir(exist_ok=True)
    for op in sorted(set(table["op"])):
        png = written["per_op"].get((op, preferred), {}).get(figures.relative_figure)
        if png:
            shutil.copyfile(png, headline_figures / png.name)
            block += [_image(headline_figures / png.name, lambda p: os.path.relpath(p, top_base)), ""]
    block.append(README_END)
    head, rest = text.split(README_BEGIN, 1)
    top_readme.write_text(head + "\n".join(block) + rest.split(README_END, 1)[1])
