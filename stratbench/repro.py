"""The reproducibility interval: a ratio's interval widened by how much the same ratio moves
between runs of the same command on the same machine type, so that a published figure says
what a rerun will see, not only what this run resolved.

The between-run part comes from A/A runs (the same selection, run after run, in fresh
processes): for each comparison group and pair of strategies, the log of their time ratio in
each run, `x_i`, with its within-run variance `v_i` (from the run's 95% interval); the
between-run variance is the method-of-moments estimate of a random-effects model (Kalibera
and Jones, "Rigorous benchmarking in reasonable time", ISMM 2013),
`tau2 = max(0, var(x_i) - mean(v_i))`, averaged over the sizes of one (op, direction,
setting, pair) in two classes, each series' largest size and its smaller ones (a ratio at
the largest size moved about half as much between runs), and never below the mean of the
same pair and class over every op and direction (few runs make one cell's estimate loose).
It is stored per machine type as results/<machine>/spread.csv (`write_spread`) with the runs
it rests on and their oneDNN setting, which moves every ratio: a run of the other setting
gets none. A run read from under that folder gets, beside each within-run interval, the
interval a rerun's figure lands in (`with_repro`: speedup_repro_*, vs_fastest_repro_*, and
rank_repro, the `*` / `=` rank from those intervals): this run's error, a rerun's, and
`tau2` for each of the two runs. Where no spread is stored the repro columns stay empty and
every table shows the within-run figures.
"""

from __future__ import annotations

import itertools
import math
import pathlib

import numpy as np
import pandas as pd

from stratbench import environment, stats, status

SPREAD_FILE = "spread.csv"
Z = 1.959963984540054  # the 95% normal quantile: intervals are read back as log-normal
PAIR = ["op", "direction", "dtype", "device", "env", "a", "b"]  # a < b: the spread of log(a/b) is that of log(b/a)
GROUP = ["op", "direction", "dtype", "device", "shape", "env"]
SERIES = ["op", "direction", "dtype", "device", "env"]  # a group without its size
LARGEST, SMALLER = "largest", "smaller"  # the size classes of a spread: each series' largest size in its run, the rest
REPRO_COLUMNS = ["speedup_repro_low", "speedup_repro_high", "vs_fastest_repro_low", "vs_fastest_repro_high",
                 "rank_repro"]


def log_variance(low: float, high: float) -> float:
    """The variance of a log ratio from its 95% interval (nan without one)."""
    if not (low > 0 and high > 0 and math.isfinite(low) and math.isfinite(high)):
        return math.nan
    return ((math.log(high) - math.log(low)) / (2 * Z)) ** 2


def largest_sizes(table: pd.DataFrame) -> dict:
    """{series: its largest size} in a run's table (a series: op, direction, dtype, device, setting)."""
    return table.groupby(SERIES)["size"].max().to_dict() if len(table) else {}


def size_class(row, largest: dict) -> str:
    """A row's size class in its run: LARGEST at its series' largest size there, else SMALLER."""
    top = largest.get(tuple(row[c] for c in SERIES))
    return LARGEST if top is not None and row["size"] >= top else SMALLER


def _pair_ratios(run_dir) -> dict:
    """(group, a, b) -> (log ratio a/b, its within-run variance, the group's size class) for
    every pair of measured strategies of every comparison group of one run, from its samples
    (paired rounds)."""
    from stratbench import results
    from stratbench.measurement import Measurement

    table = results.load(run_dir, repro=False)
    largest = largest_sizes(table)
    table = table[table["status"] == status.OK]
    samples = results.read_samples(run_dir)
    if samples is None:
        raise ValueError(f"{run_dir} kept no samples (a run before paired rounds): no spread from it")
    by_key = {k: Measurement.from_frame(f).samples for k, f in samples.groupby("key", sort=False)}
    out = {}
    for group, rows in table.groupby(GROUP):
        keys = dict(zip(rows["strategy"], rows["key"]))
        m = Measurement([s for k in keys.values() for s in by_key.get(k, [])])
        for a, b in itertools.combinations(sorted(keys), 2):
            ratio = m.ratio(keys[a], keys[b])
            if ratio.value > 0 and math.isfinite(ratio.value):
                out[(group, a, b)] = (math.log(ratio.value), log_variance(ratio.low, ratio.high),
                                      size_class(rows.iloc[0], largest))
    return out


def spread(run_dirs) -> pd.DataFrame:
    """The between-run variance of each pair's log ratio over `run_dirs` (A/A runs of one
    machine type), one row per (op, direction, dtype, device, setting, pair, size class): its
    own estimate (`cell_var`), the pair's over every op and direction (`pair_var`), the larger
    of the two (`between_var`, what intervals are widened by), the `runs` it rests on (the
    fewest of its sizes), the `sizes` averaged, and the largest `within_var` seen, for scale."""
    if len(run_dirs) < 2:
        raise ValueError(f"a spread needs at least two runs of the same command, got {len(run_dirs)}")
    per_run = [_pair_ratios(d) for d in run_dirs]
    cells = {}
    for key in set().union(*per_run):
        seen = [r[key] for r in per_run if key in r and math.isfinite(r[key][1])]
        if len(seen) < 2:
            continue
        x, v = np.array([s[:2] for s in seen]).T
        (op, direction, dtype, device, shape, env), a, b = key
        cells.setdefault((op, direction, dtype, device, env, a, b, seen[0][2]), []).append(
            (max(0.0, float(np.var(x, ddof=1) - np.mean(v))), len(seen), float(np.max(v))))
    rows = [dict(zip(PAIR + ["size_class"], k)) | {"cell_var": float(np.mean([c[0] for c in cs])),
                                                  "runs": min(c[1] for c in cs), "sizes": len(cs),
                                                  "within_var": max(c[2] for c in cs)}
            for k, cs in sorted(cells.items())]
    table = pd.DataFrame(rows, columns=PAIR + ["size_class", "cell_var", "runs", "sizes", "within_var"])
    # A cell's variance from three runs is a chi-square of two degrees of freedom: it can be a
    # tenth of the truth.  The same pair of strategies over every op and direction is one
    # estimate from many cells; a cell gets the larger of its own and its pair's.
    pair_var = table.groupby(["dtype", "device", "env", "a", "b", "size_class"])["cell_var"].transform("mean")
    return table.assign(pair_var=pair_var, between_var=np.maximum(table["cell_var"], pair_var))


def onednn(run_dir) -> str:
    """A run's oneDNN setting as its environment.json records it: "on", "off", or "" where it does not say."""
    from stratbench.which_run import env_of  # which_run imports results, which imports this module

    try:
        value = env_of(pathlib.Path(run_dir)).get("onednn")
    except ValueError:  # a damaged environment.json: the setting is not known
        return ""
    return environment.onednn_words(value, "")


def write_spread(run_dirs, machine_dir) -> pathlib.Path:
    """Stores the spread of `run_dirs` as machine_dir/spread.csv, with the runs it came from and
    their oneDNN setting (runs of both settings are refused)."""
    settings = {onednn(d) for d in run_dirs}
    if len(settings) > 1:
        raise ValueError("the runs mix oneDNN on and off: a spread holds for one setting; "
                         "give runs of one (environment.json's onednn)")
    table = spread(run_dirs)
    if table.empty:
        raise ValueError("the runs share no comparison group measured in at least two of them: no spread")
    path = pathlib.Path(machine_dir) / SPREAD_FILE
    table.assign(onednn=settings.pop(), made_from=" ".join(pathlib.Path(d).name for d in run_dirs)).to_csv(
        path, index=False)
    return path


def _stored_spread(run_dir) -> pd.DataFrame | None:
    path = pathlib.Path(run_dir).parent / SPREAD_FILE
    if not path.exists():
        return None
    table = pd.read_csv(path)
    return table.assign(onednn=table["onednn"].fillna("")) if "onednn" in table else table


def _other_setting(table: pd.DataFrame, run_dir) -> str:
    """The run's oneDNN setting where the stored spread is of the other one, else ""."""
    stored = set(table["onednn"]) - {""} if "onednn" in table else set()
    setting = onednn(run_dir)
    return setting if setting and stored and setting not in stored else ""


def read_spread(run_dir) -> pd.DataFrame | None:
    """The spread stored for the machine type of a run folder (OUT/MACHINE/RUN_ID) and the run's
    oneDNN setting, or None."""
    table = _stored_spread(run_dir)
    return None if table is None or _other_setting(table, run_dir) else table


# A run whose call floors (each strategy's call of an op that does no work) ran this many times
# slower or faster than in the A/A runs was made in another state of the machine, which the
# spread does not cover: 19 runs of the 2-core Intel VM over a week came within 0.89-1.19x of
# its A/A runs; two made in an hour when the previous commit ran 1.46x slower too came at
# 1.36x and 1.64x, and 62% of the second's speedups landed in the first's interval.
STATE_BEYOND = 1.25
FLOOR_SERIES = ["op", "strategy", "direction", "dtype", "device", "env"]


def floor_ratio(run_dir, table: pd.DataFrame, machine_dir=None) -> float | None:
    """A run's call floors over those of the A/A runs its spread `table` was made from (in
    `machine_dir`, by default the run's own folder's: the median over the series both
    measured), or None where either has none."""
    from stratbench import results  # results imports this module

    def floors(folder) -> pd.Series:
        rows = results.load(folder, repro=False)
        return rows.dropna(subset=["floor_s"]).groupby(FLOOR_SERIES)["floor_s"].min()

    names = " ".join(table["made_from"].dropna()).split() if "made_from" in table else []
    made_from = [pathlib.Path(machine_dir or pathlib.Path(run_dir).parent) / n for n in dict.fromkeys(names)]
    try:
        theirs = pd.concat([floors(d) for d in made_from if d.exists()], axis=1).median(axis=1)
        ratio = (floors(run_dir) / theirs).dropna()
    except (ValueError, OSError):  # no A/A run here, or one that cannot be read
        return None
    return float(ratio.median()) if len(ratio) else None


def describe(run_dir) -> str:
    """What a run's intervals are, for its captions and recommend's answer."""
    table = _stored_spread(run_dir)
    if table is None or table.empty:
        return ("no A/A spread is stored for this machine type: every interval is this run's own, and says "
                "nothing of how far a rerun may move")
    if setting := _other_setting(table, run_dir):
        return (f"no A/A spread is stored for this machine type with oneDNN {setting} (only with oneDNN "
                f"{'on' if setting == 'off' else 'off'}): every interval is this run's own, and says nothing "
                "of how far a rerun may move")
    runs = sorted({int(table["runs"].min()), int(table["runs"].max())})
    state = floor_ratio(run_dir, table)
    other_state = "" if state is None or 1 / STATE_BEYOND <= state <= STATE_BEYOND else (
        f"; but this run's call floors ran {state:.2f}x those of the A/A runs: the machine was in another state "
        "(a neighbour, another clock), which the spread does not cover, and a rerun may land outside")
    return (f"speedup intervals and the `*` / `=` marks are reproducibility intervals, where a rerun lands: this "
            f"run's, widened by how far the same ratio moved between {'-'.join(map(str, runs))} A/A runs of this "
            f"machine type ({SPREAD_FILE}){other_state}")


class Between:
    """The between-run variance of a pair's log ratio, looked up in a stored spread: the cell of
    its op, direction and size class, else the pair's over every op and direction in that class
    (a pair some op did not measure in the A/A runs), else nan.  A row's size class is taken
    from `table`, the run it is in; a spread stored before the classes holds for every size."""

    def __init__(self, spread_table: pd.DataFrame | None, table: pd.DataFrame):
        spread_table = spread_table if spread_table is not None else pd.DataFrame(
            columns=PAIR + ["size_class", "between_var", "pair_var"])
        if "size_class" not in spread_table:
            spread_table = pd.concat([spread_table.assign(size_class=c) for c in (LARGEST, SMALLER)])
        keys = [tuple(r) for r in spread_table[PAIR + ["size_class"]].itertuples(index=False)]
        self.cell = dict(zip(keys, spread_table["between_var"]))
        self.pair = {k[2:]: v for k, v in zip(keys, spread_table["pair_var"])}
        self.largest = largest_sizes(table)

    def __call__(self, row, other: str) -> float:
        a, b = sorted((row["strategy"], other))
        pair = (row["dtype"], row["device"], row["env"], a, b, size_class(row, self.largest))
        return self.cell.get((row["op"], row["direction"], *pair), self.pair.get(pair, math.nan))


def widen(ratio: stats.Interval, between_var: float) -> stats.Interval:
    """Where a rerun's `ratio` lands, from its own interval (whose asymmetry it keeps) and the
    pair's between-run variance; NO_INTERVAL where either is unknown."""
    low, high = _widened(ratio.value, ratio.low, ratio.high, between_var)
    if not math.isfinite(low):
        return stats.NO_INTERVAL
    return stats.Interval(ratio.value, float(low), float(high), ratio.n)


def _widened(value, low, high, between_var) -> tuple[np.ndarray, np.ndarray]:
    """The repro interval's ends, over columns or scalars: where a rerun's figure lands, 95%.
    A rerun's log ratio differs from this run's by both runs' within-run errors and both runs'
    between-run deviations, var = v_this + v_rerun + 2 tau2, the rerun's v taken as this
    run's (the same command): each side of the run's interval, in logs, grown to
    sqrt(2 side^2 + 2 (Z sd_between)^2).  nan where any part is unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value, low, high, var = (np.asarray(v, dtype=float) for v in (value, low, high, between_var))
        centre, extra = np.log(value), Z * Z * var
        return (np.exp(centre - np.sqrt(2 * ((centre - np.log(low)) ** 2 + extra))),
                np.exp(centre + np.sqrt(2 * ((np.log(high) - centre) ** 2 + extra))))


def with_repro(table: pd.DataFrame, spread_table: pd.DataFrame | None) -> pd.DataFrame:
    """`table` (a run's rows) with the repro columns filled where `spread_table` holds the pair:
    each speedup's interval and each time-over-the-fastest's widened by the pair's between-run
    variance, and the rank those intervals give (as the run's own rank: tied where the interval
    does not exclude the tie margin); a group gets a rank only where every rival has its interval."""
    table = table.copy()
    for column in REPRO_COLUMNS:
        table[column] = None if column == "rank_repro" else math.nan
    ok = table[table["status"] == status.OK] if spread_table is not None and len(table) else table.iloc[:0]
    if ok.empty:
        return table
    between = Between(spread_table, table)
    fastest = ok.loc[ok.groupby(GROUP, sort=False)["median_s"].idxmin()].set_index(GROUP)["strategy"]
    fastest_of = [fastest[g] for g in ok[GROUP].itertuples(index=False, name=None)]
    rows = ok.to_dict("records")
    base_var = [between(r, r["baseline"]) if isinstance(r.get("baseline"), str) and r["strategy"] != r["baseline"]
                else math.nan for r in rows]
    fast_var = [between(r, f) if r["strategy"] != f else math.nan for r, f in zip(rows, fastest_of)]
    low, high = _widened(ok["speedup"], ok["speedup_low"], ok["speedup_high"], base_var)
    table.loc[ok.index, "speedup_repro_low"], table.loc[ok.index, "speedup_repro_high"] = low, high
    low, high = _widened(ok["vs_fastest"], ok["vs_fastest_low"], ok["vs_fastest_high"], fast_var)
    table.loc[ok.index, "vs_fastest_repro_low"], table.loc[ok.index, "vs_fastest_repro_high"] = low, high
    is_fastest = pd.Series([r["strategy"] == f for r, f in zip(rows, fastest_of)], index=ok.index)
    known = pd.Series(np.isfinite(low), index=ok.index)
    tied = pd.Series(~(low > 1 + stats.TIE_MARGIN), index=ok.index)  # stats.verdict is not 'slower'
    for _, group in ok.groupby(GROUP, sort=False):
        rivals = group.index[~is_fastest[group.index]]
        if len(rivals) and known[rivals].all():
            table.loc[rivals, "rank_repro"] = ["tie" if tied[i] else "" for i in rivals]
            table.loc[group.index[is_fastest[group.index]], "rank_repro"] = "tie" if tied[rivals].any() else "fastest"
    return table
