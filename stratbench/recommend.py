"""`stratbench recommend`: the fastest strategy for one case that meets the user's needs,
from stored `stratbench run` results and their capability matrix."""

from __future__ import annotations

import math
import pathlib

import pandas as pd

from stratbench import capabilities, environment, matrix, results, stats, status
from stratbench.measurement import Measurement

# what --needs accepts: capability checks, plus "xla" as the everyday name of jit_compile
NEEDS = {"xla": "jit_compile"} | {name: name for name in capabilities.CHECKS if name not in ("forward", "gradient", "dtypes")}


class NoResult(Exception):
    """No stored run covers the request; the message says how to make one."""


def parse_needs(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in NEEDS]
    if bad:
        raise ValueError(f"unknown need {', '.join(map(repr, bad))}; accepted: {', '.join(NEEDS)}")
    return [NEEDS[n] for n in names]


def _fmt(s: float) -> str:
    return results.format_seconds(s)


BY = ("time", "memory")


def memory_per_element(row) -> tuple[float | None, str]:
    """(bytes per element, what they are) of a tidy row: in forward_backward what the forward
    keeps for its backward (what limits a training batch), else the case's peak above its
    inputs (TF's allocator plus the process outside it); None when not measured."""
    if row["direction"] == "forward_backward":
        kept = row.get("kept_for_backward_bytes")
        return (kept / row["size"] if pd.notna(kept) else None), "kept for the backward"
    parts = [row.get(c) for c in ("peak_tf_bytes", "own_rss_bytes") if pd.notna(row.get(c))]
    return (sum(parts) / row["size"] if parts else None), "peak above the inputs"


def _env_of(run_dir: pathlib.Path) -> dict:
    path = run_dir / "environment.json"
    return results.read_json(path) if path.exists() else {}


def _same_type(mine: dict, theirs: dict) -> str | None:
    """'' when `theirs` is this machine's type, a note when it is except for parts it did
    not record (memory, before 2026-12), None when it is another type."""
    if environment.machine_identity(theirs) == environment.machine_identity(mine):
        return ""
    if not theirs.get("memory_bytes") and \
            environment.machine_identity(theirs) == environment.machine_identity(mine | {"memory_bytes": None}):
        return "the same type, though that run did not record its memory"
    return None


def differences(mine: dict, theirs: dict) -> str:
    """How another machine differs from this one, part by part."""
    a, b = environment.identity_parts(mine), environment.identity_parts(theirs)
    return "; ".join(f"{k} {b[k]} (here: {a[k]})" for k in a if a[k] != b[k]) or "nothing recorded"


def _pick_run(candidates, mine: dict, machine: str | None, command: str) -> tuple:
    """(run_dir, table, rows, env, why) among `candidates` (newest first, each measured the
    case): the one `machine` names, else the newest made on this machine's type, else the
    newest of any machine, saying which and how it differs."""
    if machine:
        named = [c for c in candidates if machine in (environment.machine_identity(c[3]), c[3].get("machine"),
                                                      c[3].get("host"))]
        if not named:
            have = sorted({environment.machine_identity(c[3]) for c in candidates})
            raise NoResult(f"no stored run from machine {machine!r} measures this case; machines that do: "
                           f"{', '.join(have)}")
        return (*named[0], f"the newest run of machine {machine} that measured this case")
    same = [(c, _same_type(mine, c[3])) for c in candidates]
    same = [(c, note) for c, note in same if note is not None]
    if same:  # oneDNN as this machine has it by default first: it changes rankings (softmax)
        (candidate, note), = sorted(same, key=lambda cn: cn[0][3].get("onednn") != mine.get("onednn"))[:1]
        onednn = {True: "on", False: "off"}.get(candidate[3].get("onednn"), "unrecorded")
        return (*candidate, f"the newest run made on this machine's type that measured this case, with oneDNN "
                f"{onednn}" + (" as here" if candidate[3].get("onednn") == mine.get("onednn") else
                               " (no run of this type with oneDNN as here)") + (f"; {note}" if note else ""))
    newest = candidates[0]
    return (*newest, f"no stored run from this machine's type ({environment.machine_identity(mine)}) measures this "
            f"case, so this is the newest from another machine, which differs in: {differences(mine, newest[3])}. "
            f"Figures here can rank strategies differently. Measure it here with:\n  {command}")


def recommend(root, op: str, device: str, shape: str, direction: str, needs=(), dtype: str = "float32",
              envs=None, by: str = "time", max_memory_per_element: float | None = None,
              machine: str | None = None, this_machine: dict | None = None) -> str:
    """The recommendation as text; NoResult when nothing stored covers the request.  When the
    run measured several environment settings (`stratbench run --env`), each (strategy,
    setting) is a candidate, e.g. "xla under bfc" against "custom_op under plain"; `envs`
    keeps only those settings.  `by` ranks by time or by memory (memory_per_element, then
    time); `max_memory_per_element` excludes what needs more (or was not measured).  The
    run read is the newest from this machine's type (`this_machine`, default: read here),
    or the one `machine` names, or else the newest from another machine, and the text says
    which and why."""
    if by not in BY:
        raise ValueError(f"unknown ranking {by!r}; accepted: {', '.join(BY)}")
    root = pathlib.Path(root)
    mine = this_machine if this_machine is not None else environment.this_machine()
    command = (f"stratbench run --ops {op} --directions {direction} --devices {device} --dtypes {dtype} "
               + (f"--shapes {shape}" if "x" in shape else f"--sizes {shape}")
               + (f" --env {','.join(envs)}" if envs else ""))
    stored, unreadable, candidates = set(), [], []
    for run_dir in results.runs_under(root):
        try:
            table = results.load(run_dir)
        except results.NotResults as e:  # one damaged run must not hide the others
            unreadable.append(str(e))
            continue
        if envs:
            table = table[table["env"].isin(envs)]
        series = table[(table["op"] == op) & (table["direction"] == direction) & (table["device"] == device)
                       & (table["dtype"] == dtype) & (table["status"] == status.OK)]
        stored |= set(series["shape"].astype(str))
        rows = table[(table["op"] == op) & (table["direction"] == direction) & (table["device"] == device)
                     & (table["dtype"] == dtype) & (table["shape"].astype(str) == shape)]
        if (rows["status"] == status.OK).any():
            candidates.append((run_dir, table, rows, _env_of(run_dir)))
    if not candidates:
        have = f"stored sizes for it: {', '.join(sorted(stored, key=lambda t: math.prod(matrix.parse_size(t))))}. " if stored else ""
        skipped = "".join(f"\n  (skipped, unreadable: {u})" for u in unreadable)
        raise NoResult(f"no stored result under {root} measures {op} {direction} at {shape} on {device} ({dtype}); "
                       f"{have}Measure it with:\n  {command}{skipped}")
    run_dir, table, rows, env, why = _pick_run(candidates, mine, machine, command)
    caps = capabilities.load(run_dir)
    if needs and caps is None:
        raise NoResult(f"the run in {run_dir} has no capability matrix ({capabilities.FILE}), which --needs reads.\n"
                       f"Rerun `{command}` with this version of stratbench: it checks capabilities too.")
    ok = rows[rows["status"] == status.OK].sort_values("median_s")
    several = ok["env"].nunique() > 1
    memory = [memory_per_element(r) for _, r in ok.iterrows()]
    ok = ok.assign(label=[f"{r.strategy} under {r.env}" if several else r.strategy for r in ok.itertuples()],
                   memory=[m for m, _ in memory], memory_is=[what for _, what in memory])
    if by == "memory":
        ok = ok.sort_values(["memory", "median_s"], na_position="last", kind="stable")

    def lacks(strategy, memory=None) -> list[str]:
        cells = (caps or {}).get(f"{op}/{strategy}", {})
        missing = [n for n in needs if cells.get(n, {}).get("status") != capabilities.YES]
        if max_memory_per_element is not None and not (pd.notna(memory) and memory <= max_memory_per_element):
            missing.append(f"memory within {max_memory_per_element:g} bytes per element ("
                           + (f"has {memory:.3g}" if pd.notna(memory) else "not measured") + ")")
        return missing

    ok = ok.assign(lacking=[lacks(r.strategy, r.memory) for r in ok.itertuples()])
    eligible = ok[[not lacking for lacking in ok["lacking"]]]
    asked = list(needs) + ([f"at most {max_memory_per_element:g} bytes per element"] if max_memory_per_element is not None else [])
    lines = [f"Request: {op}, {direction}, {shape} on {device} ({dtype})" + (f", needs {', '.join(asked)}" if asked else "")
             + (", ranked by memory" if by == "memory" else ""),
             f"From: {run_dir} (machine {environment.machine_identity(env)}, host {env.get('host') or env.get('machine')}, "
             f"TensorFlow {env.get('tensorflow')}, commit {str(env.get('commit'))[:8]})",
             f"Why this run: {why}", ""]
    if eligible.empty:
        lines.append("No measured strategy meets every need:")
        lines += [f"  {r.label}: lacks {', '.join(r.lacking)}" for r in ok.itertuples()]
        return "\n".join(lines)
    best = eligible.iloc[0]
    samples = results.read_samples(run_dir)
    paired = Measurement.from_frame(samples) if samples is not None else None
    ratios = {r.key: paired.ratio(r.key, best.key) for r in eligible.iloc[1:].itertuples()} if paired else {}
    tied = [r for r in eligible.iloc[1:].itertuples() if r.key in ratios and stats.verdict(ratios[r.key]) != "slower"]
    spread = f"IQR {_fmt(best.iqr_s)}" + (", noisy" if best.noisy else "")
    lines.append(f"Use {best.label}: {_fmt(best.median_s)} per call ({spread}), "
                 f"{best.elements_per_s:.3g} {'samples' if direction == 'train_step' else 'elements'}/s"
                 + (f", {best.roofline_fraction:.2f} of the memory roofline" if pd.notna(best.roofline_fraction) else "")
                 + (f"; {best.memory:.3g} bytes per element {best.memory_is}" if pd.notna(best.memory) else ""))
    if by == "memory":
        lines += [f"  {r.label}: {r.memory:.3g} bytes per element {r.memory_is}, {_fmt(r.median_s)} per call"
                  if pd.notna(r.memory) else f"  {r.label}: memory not measured, {_fmt(r.median_s)} per call"
                  for r in eligible.iloc[1:].itertuples()]
    if tied:
        lines.append(f"  It ties {', '.join(r.label for r in tied)} (their paired intervals do not exclude a difference "
                     f"under {stats.TIE_MARGIN:.0%}): {best.label} is named for its lower median only; any of them will do, "
                     "so choose among them by what else you need (--needs).")
    for r in eligible.iloc[1:].itertuples():
        if r.key in ratios:
            ratio = ratios[r.key]
            verdict = ("a tie: not a reliable difference" if r in tied
                       else f"{best.label} is faster beyond the 95% interval")
            lines.append(f"  {ratio.value:.2f}x [{ratio.low:.2f}, {ratio.high:.2f}] faster than {r.label} "
                         f"({_fmt(r.median_s)}; paired rounds, 95% interval): {verdict}")
            continue
        clear = best.median_s + best.iqr_s / 2 < r.median_s - r.iqr_s / 2  # a run without samples: IQRs only
        verdict = "clear win (IQRs do not overlap)" if clear else "within the spread: not a reliable difference"
        lines.append(f"  {r.median_s / best.median_s:.2f}x faster than {r.label} ({_fmt(r.median_s)}, IQR {_fmt(r.iqr_s)}): {verdict}")
    for r in ok[[bool(lacking) for lacking in ok["lacking"]]].itertuples():
        if r.median_s < best.median_s:
            lines.append(f"  gives up {r.label}, {best.median_s / r.median_s:.2f}x faster ({_fmt(r.median_s)}), "
                         f"which lacks {', '.join(r.lacking)}")
        else:
            lines.append(f"  excluded by what you asked: {r.label} (lacks {', '.join(r.lacking)})")
    if caps:
        missing = [f"{name} ({cell['detail'][:90] or cell['status']})" for name, cell in caps.get(f"{op}/{best.strategy}", {}).items()
                   if cell["status"] == capabilities.NO]
        lines.append(f"  {best.strategy} cannot: " + ("; ".join(missing) if missing else "nothing checked fails"))
    others = rows[rows["status"] != status.OK]
    if len(others):
        lines.append("  not measured here: " + ", ".join(f"{r.strategy} under {r.env} ({r.status})" if several
                                                          else f"{r.strategy} ({r.status})" for r in others.itertuples()))
    lines += [f"  (skipped, unreadable: {u})" for u in unreadable]
    return "\n".join(lines)
