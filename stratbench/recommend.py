"""`stratbench recommend`: the fastest strategy for one case that meets the user's needs,
from stored `stratbench run` results and their capability matrix."""

from __future__ import annotations

import math
import pathlib

import pandas as pd

from stratbench import capabilities, matrix, results, stats, status
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


def _runs(root: pathlib.Path):
    """Run directories under root (or root itself), newest first."""
    found = [root] if (root / "cases.json").exists() else [p.parent for p in root.glob("**/cases.json")]
    return sorted(found, key=lambda p: (p / "cases.json").stat().st_mtime, reverse=True)


def _fmt(s: float) -> str:
    return results.format_seconds(s)


def recommend(root, op: str, device: str, shape: str, direction: str, needs=(), dtype: str = "float32",
              envs=None) -> str:
    """The recommendation as text; NoResult when nothing stored covers the request.  When the
    run measured several environment settings (`stratbench run --env`), each (strategy,
    setting) is a candidate, e.g. "xla under bfc" against "custom_op under plain"; `envs`
    keeps only those settings."""
    root = pathlib.Path(root)
    command = (f"stratbench run --ops {op} --directions {direction} --devices {device} --dtypes {dtype} "
               + (f"--shapes {shape}" if "x" in shape else f"--sizes {shape}")
               + (f" --env {','.join(envs)}" if envs else ""))
    stored, unreadable = set(), []
    for run_dir in _runs(root):
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
            break
    else:
        have = f"stored sizes for it: {', '.join(sorted(stored, key=lambda t: math.prod(matrix.parse_size(t))))}. " if stored else ""
        skipped = "".join(f"\n  (skipped, unreadable: {u})" for u in unreadable)
        raise NoResult(f"no stored result under {root} measures {op} {direction} at {shape} on {device} ({dtype}); "
                       f"{have}Measure it with:\n  {command}{skipped}")
    caps = capabilities.load(run_dir)
    if needs and caps is None:
        raise NoResult(f"the run in {run_dir} has no capability matrix ({capabilities.FILE}), which --needs reads.\n"
                       f"Rerun `{command}` with this version of stratbench: it checks capabilities too.")
    env_file = run_dir / "environment.json"
    env = results.read_json(env_file) if env_file.exists() else {}
    ok = rows[rows["status"] == status.OK].sort_values("median_s")
    several = ok["env"].nunique() > 1
    ok = ok.assign(label=[f"{r.strategy} under {r.env}" if several else r.strategy for r in ok.itertuples()])

    def lacks(strategy) -> list[str]:
        cells = (caps or {}).get(f"{op}/{strategy}", {})
        return [n for n in needs if cells.get(n, {}).get("status") != capabilities.YES]

    eligible = ok[[not lacks(s) for s in ok["strategy"]]]
    lines = [f"Request: {op}, {direction}, {shape} on {device} ({dtype})" + (f", needs {', '.join(needs)}" if needs else ""),
             f"From: {run_dir} (machine {env.get('machine')}, TensorFlow {env.get('tensorflow')}, "
             f"commit {str(env.get('commit'))[:8]})", ""]
    if eligible.empty:
        lines.append("No measured strategy meets every need:")
        lines += [f"  {r.label}: lacks {', '.join(lacks(r.strategy))}" for r in ok.itertuples()]
        return "\n".join(lines)
    best = eligible.iloc[0]
    samples = results.read_samples(run_dir)
    paired = Measurement.from_frame(samples) if samples is not None else None
    ratios = {r.key: paired.ratio(r.key, best.key) for r in eligible.iloc[1:].itertuples()} if paired else {}
    tied = [r for r in eligible.iloc[1:].itertuples() if r.key in ratios and stats.verdict(ratios[r.key]) != "slower"]
    spread = f"IQR {_fmt(best.iqr_s)}" + (", noisy" if best.noisy else "")
    lines.append(f"Use {best.label}: {_fmt(best.median_s)} per call ({spread}), "
                 f"{best.elements_per_s:.3g} {'samples' if direction == 'train_step' else 'elements'}/s"
                 + (f", {best.roofline_fraction:.2f} of the memory roofline" if pd.notna(best.roofline_fraction) else ""))
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
    for r in ok[[bool(lacks(s)) for s in ok["strategy"]]].itertuples():
        if r.median_s < best.median_s:
            lines.append(f"  gives up {r.label}, {best.median_s / r.median_s:.2f}x faster ({_fmt(r.median_s)}), "
                         f"which lacks {', '.join(lacks(r.strategy))}")
        else:
            lines.append(f"  excluded by --needs: {r.label} (lacks {', '.join(lacks(r.strategy))})")
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
