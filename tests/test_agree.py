"""`stratbench agree`: do two runs of the same command agree?  On small synthetic run folders:
one case (spiky forward, 1000 elements) of three strategies, sampled in paired rounds as
`stratbench run` stores them (cases.json, samples.csv.gz)."""

import math

import numpy as np
import pandas as pd

import pytest

from stratbench import agree, commands, repro, results
from stratbench.measurement import Measurement, group_figures

STRATEGIES = ("native", "xla", "custom_op")
ROUNDS = 12
JITTER = (0.99, 1.0, 1.01, 1.02, 0.98, 1.0)  # per-round factors: paired ratios with a little spread


def key(strategy, size=1000):
    return f"spiky/{strategy}/forward/float32/CPU/default/{size}"


def make_run(folder, seconds: dict, steal: float | None = None, size: int = 1000, onednn: bool | None = None,
             floor_s: float | None = None):
    """A run folder of one comparison group: `seconds` {strategy: seconds per call}, sampled in
    ROUNDS rounds over two processes; its rows' figures (speedup over native, rank) as a run
    stores them (measurement.group_figures); `onednn`: the setting its environment.json records;
    `floor_s`: every strategy's call floor."""
    m = Measurement()
    for r in range(ROUNDS):
        for i, (strategy, s) in enumerate(seconds.items()):
            m.add(key(strategy, size), r % 2, r, s * JITTER[(r + 2 * i) % len(JITTER)], 10, steal)
    figures = group_figures(m, {key(s, size): s for s in seconds}, "native")
    env = {"machine": "m", "commit": "c" * 40} | ({} if onednn is None else {"onednn": onednn})
    store = results.RunStore(folder, env)
    store.add(*[{"op": "spiky", "strategy": s, "direction": "forward", "device": "CPU", "dtype": "float32",
                 "size": size, "shape": str(size), "env": "default", "status": "ok", "key": key(s, size),
                 "median_s": m.median(key(s, size)), "baseline": "native", "cpu_steal": m.steal(key(s, size)),
                 "floor_s": floor_s, **figures[key(s, size)]} for s in seconds])
    store.add_samples(m.frame())
    return folder


@pytest.fixture
def runs(tmp_path):
    first = make_run(tmp_path / "a", {"native": 2e-3, "xla": 1e-3, "custom_op": 1.5e-3}, steal=0.02)
    again = make_run(tmp_path / "b", {"native": 2.04e-3, "xla": 1.01e-3, "custom_op": 1.52e-3}, steal=0.0)
    flipped = make_run(tmp_path / "c", {"native": 2e-3, "xla": 1e-3, "custom_op": 0.8e-3})
    return first, again, flipped


def test_two_runs_that_agree(runs):
    first, again, _ = runs
    [p] = agree.agree([first, again]).pairs
    assert (p.groups, p.speedups, p.within) == (1, 6, 6)  # every ordered pair of the 3 strategies
    assert p.contradictions == [] and p.winner_changes == [] and p.outside == []
    assert (p.largest.speedups, p.largest.agreeing, p.largest.off) == (2, 2, [])  # 2.02x and 1.34x: within 5%
    assert (p.largest.groups, p.largest.ties, p.largest.winner_changes) == (1, 0, [])
    figures = agree.figures([first])
    group = ("spiky", "forward", "float32", "CPU", "1000", "default")
    assert figures.winners[group] == "xla" and figures.fastest[group] == "xla"
    assert math.isclose(figures.ratios[(group, "native", "xla")], 2.0, rel_tol=0.02)
    assert math.isclose(figures.ratios[(group, "custom_op", "xla")], 1.5, rel_tol=0.02)


def test_a_contradicted_ranking_and_a_winner_change(runs):
    first, _, flipped = runs
    [p] = agree.agree([first, flipped]).pairs
    group = ("spiky", "forward", "float32", "CPU", "1000", "default")
    assert (p.speedups, p.within) == (6, 2)  # only native/xla and xla/native agree (2.0 both times)
    [(g, a, b, before, after)] = p.contradictions  # custom_op 1.5x behind xla, then 1.25x ahead
    assert (g, a, b) == (group, "custom_op", "xla")
    assert math.isclose(before, 1.5, rel_tol=0.02) and math.isclose(after, 0.8, rel_tol=0.02)
    assert p.winner_changes == [(group, "xla", "custom_op")]
    # custom_op over the first run's fastest (xla): 1.5x then 0.8x; native: 2.0x both times
    [(g, s, best, interval, other)] = p.outside
    assert (s, best) == ("custom_op", "xla") and math.isclose(interval.value, 1.5, rel_tol=0.02)
    assert math.isclose(other, 0.8, rel_tol=0.02)
    # over native at the largest size: xla 2.0x both times; custom_op 1.33x then 2.5x
    assert (p.largest.speedups, p.largest.agreeing) == (2, 1)
    [(_, strategy, speedup, low, high, then)] = p.largest.off
    assert strategy == "custom_op" and math.isclose(speedup, 4 / 3, rel_tol=0.02) and math.isclose(then, 2.5, rel_tol=0.02)
    assert p.largest.winner_changes == [(group, "xla", "custom_op")]
    text = agree.text(agree.agree([first, flipped]))
    assert "runs 1 and 2: 1 comparison groups in both; 2 of 6 in-group speedups within 10% (33%); " \
           "1 rankings contradicted by more than 5%" in text
    assert "contradiction: spiky/forward/1000 custom_op/xla: 1.50 then 0.80" in text
    assert "spiky/forward/1000: xla then custom_op" in text


def test_each_runs_steal_is_said(runs):
    first, again, _ = runs
    said = agree.agree([first, again]).steal
    assert [k for k, _ in said] == [1, 2]
    assert "2.0% in the median case" in said[0][1] and said[1][1].endswith(": none")


def test_pooled_sets(runs, tmp_path):
    first, again, flipped = runs
    other = make_run(tmp_path / "d", {"native": 2e-3, "xla": 1e-3, "custom_op": 0.8e-3})
    result = agree.agree([first, again, flipped, other], pool=2)
    assert [len(s) for s in result.sets] == [2, 2]
    [p] = result.pairs
    assert p.largest is None and len(p.contradictions) == 1  # pooled: custom_op/xla 1.5 then 0.8
    assert agree.text(result).startswith("set 1: ")
    with pytest.raises(ValueError, match="want at least two sets of 2"):
        agree.agree([first, again, flipped], pool=2)


def test_runs_before_paired_rounds_are_compared_by_their_medians(runs):
    first, _, flipped = runs
    (first / "samples.csv.gz").unlink()
    [p] = agree.agree([first, flipped]).pairs
    assert len(p.contradictions) == 1 and p.outside == []  # no intervals without samples
    assert agree.figures([first]).winners[("spiky", "forward", "float32", "CPU", "1000", "default")] == "xla"


def test_the_command_prints_what_the_library_says(runs, capsys):
    first, _, flipped = runs
    assert commands.main(["agree", str(first), str(flipped)]) == 0
    assert capsys.readouterr().out.strip() == agree.text(agree.agree([first, flipped]))


def test_the_command_refuses_one_run_and_a_folder_without_results(runs, tmp_path, capsys):
    first, *_ = runs
    with pytest.raises(SystemExit) as exit_:
        commands.main(["agree", str(first)])
    assert exit_.value.code == 2
    capsys.readouterr()
    assert commands.main(["agree", str(first), str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert commands.main(["agree", str(first), str(tmp_path / "empty")]) == 2
    assert "holds no stratbench results" in capsys.readouterr().err


def test_group_labels_name_what_is_not_the_default():
    assert agree.label(("softmax", "backward", "float32", "CPU", "4096x2048", "default")) == "softmax/backward/4096x2048"
    assert agree.label(("gelu", "forward", "float16", "GPU", "1000", "onednn")) == "gelu/forward/1000/float16/GPU/onednn"


# --- the reproducibility interval (stratbench/repro.py) ---------------------------------
def test_identical_runs_have_no_between_run_spread(tmp_path):
    runs = [make_run(tmp_path / "m" / f"r{i}", {"native": 1e-3, "xla": 5e-4, "custom_op": 4.9e-4}) for i in range(3)]
    table = repro.spread(runs)
    assert len(table) == 3 and (table["between_var"] == 0).all() and set(table["runs"]) == {3}


def test_a_spread_widens_the_intervals_and_a_close_winner_becomes_a_tie(tmp_path):
    """xla's time moves by 10% from run to run: its ratios to the others get that spread, a 1.09x
    lead over custom_op stops being a win, and native (2x slower) stays behind."""
    machine = tmp_path / "m"
    moving = [make_run(machine / f"r{i}", {"native": 1e-3, "xla": 4.5e-4 * f, "custom_op": 4.9e-4})
              for i, f in enumerate((1.0, 1.1, 0.9))]
    table = repro.spread(moving)
    pair = table[(table["a"] == "custom_op") & (table["b"] == "xla")].iloc[0]
    assert 0.005 < pair["between_var"] < np.var(np.log([1.0, 1.1, 0.9]), ddof=1)  # less the within-run part
    assert table[(table["a"] == "custom_op") & (table["b"] == "native")].iloc[0]["between_var"] == 0

    before = results.load(moving[0]).set_index("strategy")
    assert before["rank"]["xla"] == "fastest" and before["rank_repro"].isna().all()  # no spread stored yet
    assert commands.main(["agree", *map(str, moving), "--spread"]) == 0
    after = results.load(moving[0]).set_index("strategy")
    assert after["rank"]["xla"] == "fastest" and after["rank_repro"]["xla"] == "tie"  # the run's own rank kept
    assert after["rank_repro"]["native"] == ""
    xla = after.loc["xla"]
    assert xla["speedup_repro_low"] < xla["speedup_low"] <= xla["speedup"] <= xla["speedup_high"] < xla["speedup_repro_high"]
    assert "A/A runs" in repro.describe(moving[0]) and "no A/A spread" in repro.describe(tmp_path / "x" / "r")


@pytest.mark.parametrize("within_sd, between_sd", [(0.03, 0.0), (0.03, 0.06), (0.01, 0.08)])
def test_a_rerun_lands_in_the_repro_interval_95_percent_of_the_time(within_sd, between_sd):
    """Simulated pairs of runs of one ratio: each run's log ratio is the truth, plus a between-run
    deviation, plus its own error.  Run B lands inside run A's repro interval 95% of the time,
    not the 83% an interval for the mean alone (tau2 added once) would give."""
    rng = np.random.default_rng(7)
    a, b = (rng.normal(0, between_sd, 20000) + rng.normal(0, within_sd, 20000) for _ in range(2))
    low, high = repro._widened(np.exp(a), np.exp(a - repro.Z * within_sd), np.exp(a + repro.Z * within_sd),
                               between_sd ** 2)
    inside = np.mean((np.exp(b) >= low) & (np.exp(b) <= high))
    assert 0.94 < inside < 0.96


def test_a_winner_far_ahead_stays_the_winner_under_the_spread(tmp_path):
    machine = tmp_path / "m"
    runs = [make_run(machine / f"r{i}", {"native": 1e-3, "xla": 3e-4 * f, "custom_op": 4.9e-4})
            for i, f in enumerate((1.0, 1.1, 0.9))]
    repro.write_spread(runs, machine)
    assert results.load(runs[0]).set_index("strategy")["rank_repro"]["xla"] == "fastest"  # 1.6x ahead


def test_spread_takes_runs_of_one_machine_type(tmp_path, capsys):
    runs = [make_run(tmp_path / f"m{i}" / "r", {"native": 1e-3, "xla": 5e-4}) for i in range(2)]
    assert commands.main(["agree", *map(str, runs), "--spread"]) == 2
    assert "--spread takes runs of one machine type" in capsys.readouterr().err


def test_a_spread_holds_for_the_onednn_setting_of_its_runs(tmp_path):
    """A/A runs with oneDNN on: a run of the machine type with oneDNN off gets no repro interval,
    and its caption says why; runs of both settings make no spread."""
    machine = tmp_path / "m"
    moving = [make_run(machine / f"r{i}", {"native": 1e-3, "xla": 4.5e-4 * f, "custom_op": 4.9e-4}, onednn=True)
              for i, f in enumerate((1.0, 1.1, 0.9))]
    off = make_run(machine / "off", {"native": 1e-3, "xla": 4.5e-4, "custom_op": 4.9e-4}, onednn=False)
    with pytest.raises(ValueError, match="mix oneDNN on and off"):
        repro.write_spread([*moving, off], machine)
    repro.write_spread(moving, machine)
    assert results.load(moving[0]).set_index("strategy")["rank_repro"]["xla"] == "tie"
    assert results.load(off)["rank_repro"].isna().all() and repro.read_spread(off) is None
    assert "no A/A spread is stored for this machine type with oneDNN off (only with oneDNN on)" in repro.describe(off)
    assert "A/A runs" in repro.describe(moving[0])


def test_a_run_made_in_another_state_of_the_machine_says_so(tmp_path):
    """A/A runs with call floors of 200 us: a run whose floors took 1.5x as long gets a caption that
    says its machine was in another state; one within 1.25x, none; runs without floors, none."""
    machine = tmp_path / "m"
    moving = [make_run(machine / f"r{i}", {"native": 1e-3, "xla": 4.5e-4 * f}, floor_s=2e-4 * f)
              for i, f in enumerate((1.0, 1.1, 0.9))]
    repro.write_spread(moving, machine)
    slow = make_run(machine / "slow", {"native": 1e-3, "xla": 4.5e-4}, floor_s=3e-4)
    usual = make_run(machine / "usual", {"native": 1e-3, "xla": 4.5e-4}, floor_s=2.2e-4)
    unfloored = make_run(machine / "unfloored", {"native": 1e-3, "xla": 4.5e-4})
    assert "call floors ran 1.50x those of the A/A runs: the machine was in another state" in repro.describe(slow)
    assert "another state" not in repro.describe(usual) and "another state" not in repro.describe(unfloored)
    assert repro.floor_ratio(usual, repro.read_spread(usual)) == pytest.approx(1.1)


def test_the_spread_of_a_series_largest_size_is_kept_apart_from_its_smaller_sizes(tmp_path):
    """xla moves 10% between runs at the small size and not at the large one: the large size's
    intervals get no between-run part, the small size's do."""
    machine = tmp_path / "m"
    runs = []
    for i, f in enumerate((1.0, 1.1, 0.9)):
        make_run(machine / f"r{i}", {"native": 1e-3, "xla": 4.5e-4 * f}, size=1000)
        runs.append(make_run(machine / f"r{i}", {"native": 1e-1, "xla": 4.5e-2}, size=100_000))
    table = repro.spread(runs).set_index("size_class")
    assert table.loc[repro.LARGEST, "between_var"] == 0 < table.loc[repro.SMALLER, "between_var"]
    repro.write_spread(runs, machine)
    rows = results.load(runs[0]).set_index(["size", "strategy"])
    small, large = rows.loc[(1000, "xla")], rows.loc[(100_000, "xla")]
    assert small["speedup_repro_low"] < small["speedup_low"] and small["speedup_high"] < small["speedup_repro_high"]
    assert math.isclose(math.log(large["speedup_repro_high"] / large["speedup"]),
                        math.sqrt(2) * math.log(large["speedup_high"] / large["speedup"]), rel_tol=1e-6)
    stored = pd.read_csv(machine / repro.SPREAD_FILE)
    old = stored[stored["size_class"] == repro.SMALLER].drop(columns="size_class")  # as stored before the classes
    between, xla = repro.Between(old, results.load(runs[0], repro=False)), rows.reset_index()
    xla = xla[xla["strategy"] == "xla"].set_index("size", drop=False)
    assert between(xla.loc[1000], "native") == between(xla.loc[100_000], "native") > 0
