"""What `stratbench compare` prints and writes: the text table (a terminal), compare.md (a pull
request's summary: $GITHUB_STEP_SUMMARY) and compare.json (a dashboard, a script), all from
one document (`document`), and the exit status a CI job fails on (`exit_status`).

compare.json holds one object; its fields (SCHEMA says the same, field by field):

    version        1: this format's version (a field's meaning never changes within one)
    old, new       OLD and NEW as given on the command line ("." is the working tree)
    repositories   [{path, holds, old, new}]: each git repository code was taken from, what of it
                   was measured (stratbench's ops and strategies, a user's module paths) and the
                   full commit hash of each side ("." for the working tree)
    rule           {text, threshold, margin, screen_margin}: the rule the verdicts were given by
                   (stratbench.decision.rule), its figures as fractions
    machine        {machine, host, cpu_model, cpu_count, memory_bytes, onednn, cpu_allocator,
                   tensorflow, python}: where it ran (machine: the identity results are filed by)
    selection      the lines --changed printed (one per op: selected and why), or null
    cases          one object per case: key, op, strategy, direction, shape, env; old_s and new_s
                   (seconds per call); ratio, low, high: the time ratio NEW/OLD the verdict was
                   given on (both passes' rounds where the case was measured again, else the
                   first pass's) and its 95% interval; first_ratio, first_low, first_high (the
                   first pass), confirm_ratio (the second, or null), rounds, by_process (the
                   first pass's ratio in each worker process); verdict (slower, faster,
                   unchanged or "not measured"); reason (why not measured, else "")
    counts         {slower, faster, unchanged, not measured, total}
    fail_on        slower, changed or never (--fail-on)
    exit_status    what the command exited with: 1 where fail_on says so, else 0 (also where
                   --changed found no measured code changed)
    wall_s         seconds the compare took

A ratio above 1 is slower: NEW takes that many times OLD's time.  Missing figures are null.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from stratbench import decision, environment

FORMAT_VERSION = 1
FORMATS = ("text", "md", "json")
FAIL_ON = ("slower", "changed", "never")
NOT_MEASURED = "not measured"
VERDICTS = (decision.SLOWER, decision.FASTER, decision.UNCHANGED, NOT_MEASURED)
MACHINE_FIELDS = ("machine", "host", "cpu_model", "cpu_count", "memory_bytes", "onednn", "cpu_allocator", "tensorflow",
                  "python")
CASE_FIELDS = ("key", "op", "strategy", "direction", "shape", "env", "old_s", "new_s", "ratio", "low", "high",
               "first_ratio", "first_low", "first_high", "confirm_ratio", "rounds", "by_process", "verdict", "reason")

SCHEMA = {  # compare.json, field by field (the module docstring says the same in prose)
    "version": "int: this format's version, 1",
    "old": "str: OLD as given ('.' is the working tree)",
    "new": "str: NEW as given ('.' is the working tree)",
    "repositories": "list of {path: str, holds: [str], old: str, new: str}: full commit hashes ('.': working tree)",
    "rule": "{text: str, threshold: float, margin: float, screen_margin: float or null}",
    "machine": "{" + ", ".join(MACHINE_FIELDS) + "}",
    "selection": "list of str (--changed: one line per op) or null",
    "cases": "list of {" + ", ".join(CASE_FIELDS) + "}; ratio = time at NEW / time at OLD, above 1 slower",
    "counts": "{slower, faster, unchanged, not measured, total}: ints",
    "fail_on": "str: slower, changed or never",
    "exit_status": "int: 0 or 1",
    "wall_s": "float: seconds",
}


def empty_table() -> pd.DataFrame:
    """A compare's table with no case (--changed found nothing measured changed)."""
    return pd.DataFrame(columns=["key", "op", "strategy", "direction", "shape", "env", "verdict", "reason"])


def exit_status(table: pd.DataFrame, fail_on: str = "slower") -> int:
    """1 where `fail_on` says the compare fails: a case slower (slower), slower or faster
    (changed), or no case measured at all (both: a gate that measured nothing has not passed);
    0 otherwise and always with `never`."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on {fail_on!r}: accepted: {', '.join(FAIL_ON)}")
    if fail_on == "never":
        return 0
    verdicts = set(table["verdict"]) if len(table) else set()
    if not verdicts - {NOT_MEASURED}:
        return 1
    failing = {decision.SLOWER} | ({decision.FASTER} if fail_on == "changed" else set())
    return int(bool(verdicts & failing))


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _case(row: dict) -> dict:
    again = _number(row.get("pooled_ratio"))
    judged = ("pooled_ratio", "pooled_low", "pooled_high") if again is not None else ("ratio", "low", "high")
    text = {k: (row.get(k) if isinstance(row.get(k), str) else "") for k in ("key", "op", "strategy", "direction",
                                                                             "env", "by_process", "reason")}
    rounds = _number(row.get("rounds"))
    return {**text, "shape": str(row.get("shape", "")),
            "old_s": _number(row.get("old_s")), "new_s": _number(row.get("new_s")),
            "ratio": _number(row.get(judged[0])), "low": _number(row.get(judged[1])), "high": _number(row.get(judged[2])),
            "first_ratio": _number(row.get("ratio")), "first_low": _number(row.get("low")),
            "first_high": _number(row.get("high")), "confirm_ratio": _number(row.get("confirm_ratio")),
            "rounds": None if rounds is None else int(rounds), "verdict": row.get("verdict")}


def document(table: pd.DataFrame, old: str, new: str, threshold: float = decision.THRESHOLD, machine: dict | None = None,
             repositories=(), selection: list[str] | None = None, fail_on: str = "slower",
             wall_s: float | None = None) -> dict:
    """compare.json's object (module docstring) for a compare's table (compare.compare_commits)."""
    cases = [_case(row) for row in table.to_dict("records")]
    counts = {v: sum(c["verdict"] == v for c in cases) for v in VERDICTS} | {"total": len(cases)}
    return {
        "version": FORMAT_VERSION, "old": old, "new": new,
        "repositories": [{"path": str(r.top),
                          "holds": (["stratbench ops and strategies"] if r.holds_impls else [])
                          + [rel.as_posix() for *_, rel in r.modules],
                          "old": r.commits.get(old), "new": r.commits.get(new)} for r in repositories],
        "rule": {"text": decision.rule(threshold), **decision.recorded_rule(threshold)},
        "machine": {k: (machine or {}).get(k) for k in MACHINE_FIELDS},
        "selection": list(selection) if selection is not None else None,
        "cases": cases, "counts": counts, "fail_on": fail_on,
        # --changed found nothing measured changed: nothing to compare, nothing failed
        "exit_status": 0 if selection is not None and not cases else exit_status(table, fail_on),
        "wall_s": None if wall_s is None else round(wall_s, 1),
    }


def to_json(doc: dict) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def _ratio(case: dict) -> str:
    if case["ratio"] is None:
        return case["reason"] or NOT_MEASURED
    interval = f" [{case['low']:.3f}, {case['high']:.3f}]" if case["low"] is not None else ""
    return f"{case['ratio']:.3f}{interval}"


def _machine_line(machine: dict) -> str:
    if not machine.get("machine"):
        return "Machine: not recorded."
    onednn = environment.onednn_words(machine.get("onednn"), "?")
    parts = [machine.get("cpu_model"), f"{machine.get('cpu_count')} logical CPUs" if machine.get("cpu_count") else None,
             f"oneDNN {onednn}", f"TensorFlow {machine['tensorflow']}" if machine.get("tensorflow") else None,
             f"host {machine['host']}" if machine.get("host") else None]
    return f"Machine: `{machine['machine']}` ({', '.join(p for p in parts if p)})."


def _counts_line(doc: dict) -> str:
    c = doc["counts"]
    return ", ".join(f"{c[v]} {v}" for v in VERDICTS if c[v] or v in (decision.SLOWER, decision.UNCHANGED)) + \
        f" of {c['total']} cases"


def markdown(doc: dict) -> str:
    """compare.md: the changed cases (slower first) in a table, then the count of the unchanged
    ones, the cases not measured, the rule in force and the machine."""
    changed = sorted((c for c in doc["cases"] if c["verdict"] in (decision.SLOWER, decision.FASTER)),
                     key=lambda c: (c["verdict"] != decision.SLOWER, -(c["ratio"] or 0)))
    unmeasured = [c for c in doc["cases"] if c["verdict"] == NOT_MEASURED]
    status = {0: "passed", 1: "failed"}[doc["exit_status"]]
    lines = [f"### stratbench compare: `{doc['old']}` → `{doc['new']}`", "",
             f"**{_counts_line(doc)}**; the check {status} (fails on: {doc['fail_on']}).", ""]
    if changed:
        lines += ["| op | strategy | direction | shape | env | time NEW/OLD [95% interval] | verdict |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {c['op']} | {c['strategy']} | {c['direction']} | {c['shape']} | {c['env']} | {_ratio(c)} | "
                  f"**{c['verdict']}** |" for c in changed]
        lines.append("")
    if doc.get("selection") is not None and not doc["cases"]:
        lines[2] = f"**Nothing measured changed between `{doc['old']}` and `{doc['new']}`**: no case compared."
    unchanged = doc["counts"][decision.UNCHANGED]
    if doc["cases"]:
        lines.append(f"{unchanged} case{'s' if unchanged != 1 else ''} unchanged"
                     + (" (no case changed)." if not changed else "."))
    if unmeasured:
        lines += ["", f"Not measured ({len(unmeasured)}):"]
        lines += [f"- {c['op']} {c['strategy']} {c['direction']} {c['shape']} {c['env']}: {c['reason']}"
                  for c in unmeasured[:20]]
        lines += [f"- and {len(unmeasured) - 20} more (compare.json)"] if len(unmeasured) > 20 else []
    if doc.get("selection") is not None:
        lines += ["", "Selected by --changed:", "", "```", *[line.strip() for line in doc["selection"]], "```"]
    lines += ["", f"Time NEW/OLD above 1 is slower. Rule: {doc['rule']['text']}.", "", _machine_line(doc["machine"])]
    return "\n".join(lines) + "\n"


def text(table: pd.DataFrame, doc: dict, out=None) -> str:
    """The terminal's table: every case with its ratio, its ratio in each process and, where it
    was measured again, the second pass's and both passes' together; then the counts and rule."""
    if len(table):
        shown = table.assign(ratio=[f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}]" if r.verdict != NOT_MEASURED
                                    else r.reason for r in table.itertuples()])
        if "confirm_ratio" in table:  # the screened cases, measured again in fresh workers
            shown["again"] = [f"{r.confirm_ratio:.3f} ({r.confirm_by_process})" if pd.notna(r.confirm_ratio) else ""
                              for r in table.itertuples()]
            shown["both"] = [f"{r.pooled_ratio:.3f} [{r.pooled_low:.3f}, {r.pooled_high:.3f}]"
                             if pd.notna(r.pooled_ratio) else "" for r in table.itertuples()]
        columns = ["op", "strategy", "direction", "shape", "env", "ratio", "by_process", "again", "both", "verdict"]
        with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_rows", None):
            body = shown[[c for c in columns if c in shown]].to_string(index=False)
    elif doc.get("selection") is not None:
        body = f"nothing measured changed between {doc['old']} and {doc['new']}: no case compared"
    else:
        body = "(no case)"
    wall = f"; wall time {doc['wall_s']:.0f} s" if doc.get("wall_s") is not None else ""
    return (body + f"\n\n{_counts_line(doc)}; ratio = time at {doc['new']} / time at {doc['old']} (above 1: slower), "
            "Hodges-Lehmann estimate of the paired rounds [95% interval], and in each worker process's rounds "
            f"(by_process); {doc['rule']['text']} (again: the second pass; both: the two together){wall}"
            + (f"; written to {out}" if out else "") + "\n")


def render(fmt: str, table: pd.DataFrame, doc: dict, out=None) -> str:
    """What `stratbench compare --format FMT` prints."""
    if fmt == "json":
        return to_json(doc)
    if fmt == "md":
        return markdown(doc)
    return text(table, doc, out)


def write(folder, doc: dict) -> None:
    """compare.md and compare.json into `folder` (which exists)."""
    import pathlib

    folder = pathlib.Path(folder)
    (folder / "compare.md").write_text(markdown(doc))
    (folder / "compare.json").write_text(to_json(doc))
