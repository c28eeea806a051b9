"""`stratbench noise`: the change detector checked against changes of known size, a case
against itself and with 10% and 20% more elements, in fresh workers each rerun."""

from __future__ import annotations

import dataclasses

import pandas as pd

from stratbench.compare import Pool, Version, kept_samples, measure_versions, with_confirm_columns
from stratbench.decision import (CONFIRM_BUDGET_S, FASTER, SLOWER, THRESHOLD, UNCHANGED, confirmed, for_confirming,
                                 judged, pooled, recorded_rule, rule)

NOISE_CHANGES = (("A again", 1.0), ("+10% elements", 1.1), ("+20% elements", 1.2))


def more_elements(case, factor: float):
    """`case` with `factor` times its elements (its first dimension scaled): a known change."""
    return case if factor == 1.0 else dataclasses.replace(case, shape=(round(case.shape[0] * factor),) + case.shape[1:])


def noise(case, settings, reruns: int = 3, processes: int = 2, threshold: float = THRESHOLD, progress=None,
          verbose: bool = False, confirm_budget_s: float = CONFIRM_BUDGET_S,
          written=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The detector checked against known changes: `case` against itself (A/A: no change) and
    against the same case with 10% and 20% more elements (a memory-bound case: about 1.1x and
    1.2x), in fresh workers each rerun.  (One row per (rerun, change); every sample, with its
    rerun and version.)  `written(table, samples)` is called after each rerun, so that a
    caller can keep the reruns done (Ctrl-C, a crash)."""
    progress = progress or (lambda items, desc: items)
    rows, samples = [], []
    for rerun in progress(range(reruns), "noise"):
        versions = {"A": Version(case)}
        for name, factor in NOISE_CHANGES:
            versions[name] = Version(more_elements(case, factor))
        verdicts, measured = {}, None
        for confirming in (False, True):  # then every screened change again, in fresh workers (as compare)
            names = [n for n, v in verdicts.items() if v["verdict"] in (SLOWER, FASTER)] if confirming else \
                [n for n, _ in NOISE_CHANGES]
            if not names:
                break
            pool = Pool(processes, case.env, verbose)
            try:
                m = measure_versions({n: versions[n] for n in ["A", *names]}, pool,
                                     for_confirming(settings, confirm_budget_s) if confirming else settings)
            finally:
                pool.close()
            measured = pooled(measured, m) if confirming else m
            for name in names:
                again = judged(m, name, "A", threshold)
                verdicts[name] = confirmed(verdicts[name], again, measured.ratio(name, "A"), threshold) \
                    if confirming else again
        for name, factor in NOISE_CHANGES:
            rows.append({"rerun": rerun, "op": case.op, "strategy": case.strategy, "direction": case.direction,
                         "shape": case.shape_text, "change": name, "elements_ratio": factor,
                         **recorded_rule(threshold), **verdicts[name]})
        samples.append(kept_samples(measured, case.key, rerun=rerun))
        table, kept = with_confirm_columns(pd.DataFrame(rows)), pd.concat(samples, ignore_index=True)
        if written:
            written(table, kept)
    return table, kept


def resolves(table: pd.DataFrame) -> str:
    """What the noise check says about this machine, in one paragraph."""
    threshold = table["threshold"].iloc[0] if "threshold" in table else None  # older files did not record it
    confirming = "confirm_verdict" in table  # a flag measured again in fresh workers (not in older files)
    lines = []
    for name, group in table.groupby("change", sort=False):
        flagged = int((group["verdict"] != UNCHANGED).sum())
        lines.append(f"{name}: ratio {group['ratio'].median():.3f} (median of {len(group)} reruns), "
                     f"flagged {flagged} of {len(group)}")
    aa = table[table["change"] == "A again"]["half_width"]
    if "pooled_ratio" in table:  # the rule that pools both passes (the screen's own margin: recorded with it)
        screen = table["screen_margin"].iloc[0] if "screen_margin" in table else table["margin"].iloc[0]
        text = rule(threshold, table["margin"].iloc[0], None if pd.isna(screen) else screen)
        text = text[0].upper() + text[1:]
    else:
        excludes = f"excludes 1 ± {table['margin'].iloc[0]:.0%}" if "margin" in table else "excludes 1"
        beyond = f"the {threshold:.0%} threshold" if threshold else "the threshold (not recorded in this file)"
        text = (f"A change is flagged where its interval {excludes} and it exceeds {beyond}, in every worker "
                "process's rounds too"
                + (", and again when measured once more in fresh worker processes" if confirming else ""))
    lines.append(f"A/A interval: ±{aa.median():.1%} (median over reruns). {text}: the flag rates above say which of "
                 "the known changes this machine resolves in this time")
    return "\n".join(lines)
