"""`stratbench recommend`: the fastest strategy for one case that meets the user's needs,
from stored `stratbench run` results and their capability matrix."""

from __future__ import annotations

import math
import pathlib

import pandas as pd

from stratbench import capabilities, environment, matrix, metrics, repro, results, stats, status
from stratbench.measurement import Measurement
from stratbench.which_run import NoResult, env_of, pick_run, whose_run

# what --needs accepts: capability checks, plus "xla" as the everyday name of jit_compile
NEEDS = {"xla": "jit_compile"} | {name: name for name in capabilities.CHECKS if name not in ("forward", "gradient", "dtypes")}


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
    inputs (TF's allocator plus the process outside it); None when not measured: a figure of
    TF's allocator missing, or a 0 from an allocator that did not count the case
    (metrics.allocator_bytes), is never 0 bytes."""
    if row["direction"] == "forward_backward":
        kept = metrics.allocator_bytes(row.get("kept_for_backward_bytes"))
        return (kept / row["size"] if kept is not None else None), "kept for the backward"
    peak = metrics.allocator_bytes(row.get("peak_tf_bytes"))
    if peak is None:
        return None, "peak above the inputs"
    outside = row.get("own_rss_bytes")
    return (peak + (outside if pd.notna(outside) else 0)) / row["size"], "peak above the inputs"


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
    candidates, unreadable = _candidates(root, op, device, shape, direction, dtype, envs, command)
    run_dir, table, rows, env, why = pick_run(candidates, mine, machine, command)
    caps = capabilities.load(run_dir)
    if needs and caps is None:
        raise NoResult(f"the run in {run_dir} has no capability matrix ({capabilities.FILE}), which --needs reads.\n"
                       f"Rerun `{command}` with this version of stratbench: it checks capabilities too.")
    ok = _ranked(rows, caps, op, needs, by, max_memory_per_element)
    eligible = ok[[not lacking for lacking in ok["lacking"]]]
    asked = list(needs) + ([f"at most {max_memory_per_element:g} bytes per element"] if max_memory_per_element is not None else [])
    lines = [whose_run(run_dir, env), f"Why this run: {why}", f"Intervals: {repro.describe(run_dir)}",
             f"Request: {op}, {direction}, {shape} on {device} ({dtype})" + (f", needs {', '.join(asked)}" if asked else "")
             + (", ranked by memory" if by == "memory" else ""), ""]
    if eligible.empty:
        lines.append("No measured strategy meets every need:")
        lines += [f"  {r.label}: lacks {', '.join(r.lacking)}" for r in ok.itertuples()]
        return "\n".join(lines)
    lines += _answer(run_dir, table, ok, eligible, op, direction, by)
    best = eligible.iloc[0]
    if caps:
        missing = [f"{name} ({cell['detail'][:90] or cell['status']})" for name, cell in caps.get(f"{op}/{best.strategy}", {}).items()
                   if cell["status"] == capabilities.NO]
        lines.append(f"  {best.strategy} cannot: " + ("; ".join(missing) if missing else "nothing checked fails"))
    others = rows[rows["status"] != status.OK]
    if len(others):
        several = ok["env"].nunique() > 1
        lines.append("  not measured here: " + ", ".join(f"{r.strategy} under {r.env} ({r.status})" if several
                                                          else f"{r.strategy} ({r.status})" for r in others.itertuples()))
    lines += [f"  (skipped, unreadable: {u})" for u in unreadable]
    return "\n".join(lines)


def _candidates(root, op, device, shape, direction, dtype, envs, command) -> tuple[list, list]:
    """([(run_dir, table, the case's rows, environment)] of every stored run that measured the case,
    newest first; the runs that could not be read), or NoResult saying which sizes are stored."""
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
            candidates.append((run_dir, table, rows, env_of(run_dir)))
    if not candidates:
        have = f"stored sizes for it: {', '.join(sorted(stored, key=lambda t: math.prod(matrix.parse_size(t))))}. " if stored else ""
        skipped = "".join(f"\n  (skipped, unreadable: {u})" for u in unreadable)
        raise NoResult(f"no stored result under {root} measures {op} {direction} at {shape} on {device} ({dtype}); "
                       f"{have}Measure it with:\n  {command}{skipped}")
    return candidates, unreadable


def _ranked(rows, caps, op, needs, by, max_memory_per_element) -> pd.DataFrame:
    """The case's measured strategies, fastest first (or least memory), each with its label,
    memory per element and what of the request it lacks."""
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

    return ok.assign(lacking=[lacks(r.strategy, r.memory) for r in ok.itertuples()])


def _answer(run_dir, table, ok, eligible, op, direction, by) -> list[str]:
    """The strategy to use, with its figures, the ties, the others met, and what was given up."""
    best = eligible.iloc[0]
    samples = results.read_samples(run_dir)
    paired = Measurement.from_frame(samples) if samples is not None else None
    # each other strategy against the one named, by key (a row holding NaN never equals itself)
    between = repro.Between(repro.read_spread(run_dir), table)
    against = {r.key: _against(best, r, paired, between) for r in ok.itertuples() if r.key != best.key}
    tied = [r for r in eligible.itertuples() if r.key in against and against[r.key][0] == "tie"]
    per = "sample" if direction == matrix.TRAIN_STEP else "element"
    roofline = (f", {best.roofline_fraction:{'.2g' if best.roofline_fraction < 0.1 else '.2f'}} of the memory roofline"
                if pd.notna(best.roofline_fraction) else "")
    lines = [f"Use {best.label}: {_fmt(best.median_s)} per call ({_spread(best)}), "
             f"{best.elements_per_s:.3g} {per}s/s{roofline}; "
             + (f"{best.memory:.3g} bytes per {per} {best.memory_is}" if pd.notna(best.memory)
                else f"memory not measured ({best.memory_is})")]
    lines += _call_bound(best, eligible, op, direction)
    if by == "memory":
        lines += [f"  {r.label}: {r.memory:.3g} bytes per {per} {r.memory_is}, {_fmt(r.median_s)} per call"
                  if pd.notna(r.memory) else f"  {r.label}: memory not measured, {_fmt(r.median_s)} per call"
                  for r in eligible.iloc[1:].itertuples()]
    if tied:
        how = ("their paired intervals do not exclude a difference under "
               f"{stats.TIE_MARGIN:.0%}" if all(against[r.key][2] for r in tied) else "not told apart beyond their spread")
        names = ", ".join(r.label for r in tied)
        lines.append(f"  It ties {names} ({how}): {best.label} is named for its lower median only; any of them will "
                     "do, so choose among them by what else you need (--needs)." if by == "time" else
                     f"  In time it ties {names} ({how}); {best.label} is named for its memory.")
    lines += [f"  {against[r.key][1]}" for r in eligible.iloc[1:].itertuples()]
    for r in ok[[bool(lacking) for lacking in ok["lacking"]]].itertuples():
        verdict, _, was_paired = against.get(r.key, ("slower", "", False))
        if verdict == "faster":
            ratio = _ratio(best, r, paired, between) if was_paired else None
            by_how_much = (f"{1 / ratio.value:.2f}x [{1 / ratio.high:.2f}, {1 / ratio.low:.2f}] faster (paired rounds, "
                           "95% interval)" if ratio else f"{best.median_s / r.median_s:.2f}x faster by its median")
            lines.append(f"  gives up {r.label}, {by_how_much} ({_fmt(r.median_s)}), which lacks {', '.join(r.lacking)}")
        elif verdict == "tie":
            lines.append(f"  excluded by what you asked: {r.label} (lacks {', '.join(r.lacking)}), "
                         f"which ties {best.label} in time")
        else:
            lines.append(f"  excluded by what you asked: {r.label} (lacks {', '.join(r.lacking)})")
    return lines


def _spread(row) -> str:
    """The spread of a row's median: its 95% interval where the run kept one, else its IQR;
    'noisy' where metrics.is_noisy_row says so."""
    if pd.notna(row.ci_low_s) and pd.notna(row.ci_high_s):
        text = f"95% interval {_fmt(row.ci_low_s)} to {_fmt(row.ci_high_s)}"
    else:
        text = f"IQR {_fmt(row.iqr_s)}" if pd.notna(row.iqr_s) else "spread not recorded"
    return text + (", noisy" if metrics.is_noisy_row(row) else "")


def _ratio(best, r, paired, between) -> stats.Interval | None:
    """r's time over best's from the rounds that sampled both, its interval widened by the
    pair's between-run spread where this machine type has one (`between`, repro.Between);
    None where no rounds sampled both: no samples kept, or another setting (another
    comparison group: its rounds were not taken together with best's, so their round
    numbers pair nothing)."""
    if paired is None or r.env != best.env:
        return None
    ratio = paired.ratio(r.key, best.key)
    widened = repro.widen(ratio, between(r._asdict(), best.strategy))
    ratio = widened if math.isfinite(widened.low) else ratio
    return ratio if math.isfinite(ratio.value) else None


def _against(best, r, paired, between) -> tuple[str, str, bool]:
    """(verdict, line, paired) of row r against the one named: verdict 'slower' (r is slower
    beyond the 95% interval and the tie margin), 'faster' (r is faster beyond it: possible
    when ranked by memory) or 'tie'; the line words exactly that verdict, and a ratio is
    worded "faster" only above 1."""
    ratio = _ratio(best, r, paired, between)
    if ratio is not None:
        verdict = stats.verdict(ratio)
        where = f"{_fmt(r.median_s)}; paired rounds, 95% interval"
        if verdict == "slower":
            return verdict, (f"{ratio.value:.2f}x [{ratio.low:.2f}, {ratio.high:.2f}] faster than {r.label} ({where}): "
                             f"{best.label} is faster beyond the 95% interval"), True
        if verdict == "faster":
            return verdict, (f"{1 / ratio.value:.2f}x [{1 / ratio.high:.2f}, {1 / ratio.low:.2f}] slower than {r.label} "
                             f"({where}): {r.label} is faster beyond the 95% interval"), True
        interval = (f"[{ratio.low:.2f}, {ratio.high:.2f}]" if math.isfinite(ratio.low) and math.isfinite(ratio.high)
                    else f"(interval unknown: {ratio.n} rounds)")
        return verdict, (f"ties {r.label} ({_fmt(r.median_s)}; its time over {best.label}'s: {ratio.value:.2f}x "
                         f"{interval}, paired rounds, 95% interval): a tie, not a reliable difference"), True
    times = r.median_s / best.median_s
    what = "95% intervals of the medians" if pd.notna(best.ci_low_s) and pd.notna(r.ci_low_s) else "IQRs"
    where = f"{_fmt(r.median_s)}, {_spread(r)}" + ("; not paired: another setting" if r.env != best.env else "")
    if metrics.clearly_faster(best, r):
        return "slower", f"{times:.2f}x faster than {r.label} ({where}): clear win (the {what} do not overlap)", False
    if metrics.clearly_faster(r, best):
        return "faster", (f"{1 / times:.2f}x slower than {r.label} ({where}): {r.label} is faster (the {what} "
                          "do not overlap)"), False
    return "tie", f"ties {r.label} ({where}): within the spread, a tie, not a reliable difference", False


def _call_bound(best, eligible, op: str, direction: str) -> list[str]:
    """What to say when the strategy named is call-bound (under metrics.CALL_BOUND x its call
    floor): its time is the call from Python, and where to measure the op inside a step."""
    if str(best.call_bound) != "True":
        return []
    bound = [r.label for r in eligible.itertuples() if str(r.call_bound) == "True"]
    others = [label for label in bound if label != best.label]
    unbound = [r.label for r in eligible.itertuples() if r.label not in bound]
    if not unbound:
        which = "so is every strategy measured here" if others else "it is the only one measured"
    elif others:
        which = f"so {'are' if len(others) > 1 else 'is'} {', '.join(others)} (not {', '.join(unbound)})"
    else:
        which = f"{', '.join(unbound)} {'are' if len(unbound) > 1 else 'is'} not"
    in_model = "forward" if direction == "forward" else "forward_backward"
    return [f"  {best.label} is call-bound: under {metrics.CALL_BOUND:g}x its call floor ({_fmt(best.floor_s)}), "
            f"and {which}: at this size the ranking is of the cost of a call from Python, not of the op. Inside a "
            "model the op is one node of a step that is already running; measure that cost with "
            f"`stratbench in-model --ops {op} --directions {in_model} --sizes {int(best['size'])}`."]
