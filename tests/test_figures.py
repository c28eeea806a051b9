"""The report's figures say what a user decides from: a 1.1x difference visible (the relative
figure), the speedup and its fastest/tied mark on each bar, cases that were not measured marked
where they would be, and memory on a log axis without a negative or a made-up 0."""

import math

import numpy as np
import pandas as pd
import pytest

from stratbench import figures, metrics, report, results

SIZES = (1000, 16_000_000)


def case(strategy, size, median_s, direction="forward", op="spiky", **fields):
    return {"op": op, "strategy": strategy, "direction": direction, "device": "CPU", "dtype": "float32",
            "size": size, "shape": str(size), "env": "default", "status": "ok", "median_s": median_s, "iqr_s": 0.0,
            "noisy": False, "elements_per_s": size / median_s if median_s else np.nan, "commit": "c0ffee00",
            "machine": "test-machine", "key": f"{op}/{strategy}/{direction}/{size}"} | fields


def table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=results.COLUMNS)


@pytest.fixture
def drawn(monkeypatch):
    """The figures a figure function made, kept open instead of written: {name: figure}."""
    kept = {}
    monkeypatch.setattr(figures, "finish", lambda fig, env, out, name, note=None: kept.setdefault(name, fig) and [])
    yield kept
    for fig in kept.values():
        figures.plt.close(fig)


def hollow_markers(ax):
    return [line for line in ax.lines if line.get_marker() == "o" and str(line.get_markerfacecolor()) == "none"
            and len(line.get_xdata())]


def texts(ax):
    return [t.get_text() for t in ax.texts]


# --- the relative figure: time over the fastest, on a linear axis -------------------------------
def test_relative_puts_the_fastest_at_one_from_medians_and_from_the_paired_ratios():
    rows = table([case("xla", 1000, 1.0e-3), case("custom_op", 1000, 1.1e-3), case("native", 1000, 5e-3),
                  case("xla", 10_000, 2.2e-3, vs_fastest=1.1, vs_fastest_low=1.05, vs_fastest_high=1.15),
                  case("custom_op", 10_000, 2.0e-3, vs_fastest=1.0, vs_fastest_low=1.0, vs_fastest_high=1.0),
                  case("pyfunc_seed", 10_000, math.nan, status="too_slow")])
    ratios = figures.relative_to_fastest(rows).set_index(["size", "strategy"])
    assert ratios.loc[(1000, "xla"), "value"] == 1.0  # no paired ratio stored: the ratio of medians
    assert ratios.loc[(1000, "custom_op"), "value"] == pytest.approx(1.1)
    assert math.isnan(ratios.loc[(1000, "custom_op"), "low"])  # and no interval made up for it
    assert ratios.loc[(10_000, "custom_op"), "value"] == 1.0
    assert tuple(ratios.loc[(10_000, "xla"), ["value", "low", "high"]]) == (1.1, 1.05, 1.15)
    assert (10_000, "pyfunc_seed") not in ratios.index  # not measured: no ratio, marked in the figure instead
    for size, group in ratios.groupby(level="size"):
        assert group["value"].min() == 1.0


def test_relative_figure_shows_a_tenth_and_marks_the_far_and_the_unmeasured(drawn, tmp_path):
    rows = [case(s, n, t * n / 1000 * 1e-6, direction=d) for d in ("forward", "forward_backward") for n in SIZES
            for s, t in (("xla", 100), ("custom_op", 110), ("native", 1000))]
    rows += [case("pyfunc_seed", 1000, 0.1, direction=d) for d in ("forward", "forward_backward")]
    rows += [case("pyfunc_seed", SIZES[1], math.nan, direction=d, status="too_slow") for d in ("forward", "forward_backward")]
    figures.relative_figure(table(rows), "spiky", {}, tmp_path)
    fig = drawn["relative_spiky"]
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[1] == figures.RELATIVE_CEILING
    assert ax.get_ylim()[0] < 1.0 < 1.1 < ax.get_ylim()[1]
    # a tenth near 1 is at least 4% of the panel's height (on the six decades of elements/s: under 1%)
    assert 0.1 / (ax.get_ylim()[1] - ax.get_ylim()[0]) > 0.04
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines["custom_op"].get_ydata()) == pytest.approx([1.1, 1.1])
    assert list(lines["xla"].get_ydata()) == [1.0, 1.0]
    # native (10x) and pyfunc_seed (1000x) are off the scale: a triangle at the top edge and their factor said
    at_ceiling = [line for line in ax.lines if line.get_marker() == "^" and len(line.get_xdata())]
    assert {tuple(line.get_ydata()) for line in at_ceiling} == {(figures.RELATIVE_CEILING,) * 2,
                                                                 (figures.RELATIVE_CEILING,)}
    assert "native up to 10x" in ax.get_xlabel() and "pyfunc_seed up to 1,000x" in ax.get_xlabel()
    # pyfunc_seed's too-slow 16M is marked at its size, with why
    [marker] = hollow_markers(ax)
    assert list(marker.get_xdata()) == [SIZES[1]] and "too slow" in texts(ax)


# --- the speedup bars: values and the fastest / tied marks ------------------------------------
def _paired(strategy, speedup, rank="", noisy=False, direction="forward", size=SIZES[1]):
    return case(strategy, size, 1e-3 / speedup, direction=direction, baseline="native", speedup=speedup,
                speedup_low=speedup * 0.97, speedup_high=speedup * 1.03, rank=rank, noisy=noisy, samples=20)


def test_speedup_bars_carry_their_value_and_the_tables_marks_but_not_the_noisy_one(drawn, tmp_path):
    rows = [_paired("native", 1.0), _paired("graph", 1.49), _paired("xla", 5.42, "tie"),
            _paired("custom_op", 5.46, "tie", noisy=True),
            _paired("native", 1.0, direction="backward"), _paired("xla", 6.64, direction="backward"),
            _paired("custom_op", 8.12, "fastest", direction="backward"),
            _paired("pyfunc_seed", 0.0121, size=1000), case("pyfunc_seed", SIZES[1], math.nan, status="too_slow")]
    figures.speedup_figure(table(rows), "spiky", {}, tmp_path)
    shown = texts(drawn["speedup_spiky"].axes[0])
    assert {"1.00x", "1.49x", "5.42x=", "5.46x=", "6.64x", "8.12x*"} <= set(shown)
    assert not any(metrics.NOISY_MARK in t for t in shown)  # noisy stays in the tables
    assert "too slow" in shown  # at the bar's place, not a gap


def test_bar_label_marks_the_fastest_by_medians_where_no_rank_was_kept():
    group = table([case("native", 1000, 4e-3), case("xla", 1000, 1e-3), case("custom_op", 1000, 2e-3)])
    labels = {r["strategy"]: figures.bar_label(r, group, "native") for _, r in group.iterrows()}
    assert labels == {"native": "1.00x", "xla": "4.00x*", "custom_op": "2.00x"}
    assert figures.bar_label(group.iloc[1], group[group["strategy"] != "native"], "native") == ""  # no baseline


# --- memory: a log axis without negatives, not-measured never drawn as 0 -----------------------
def test_memory_gets_no_value_below_its_floor_and_leaves_the_unmeasured_out(drawn, tmp_path):
    fb = "forward_backward"
    rows = [case("native", n, 1e-3, direction=fb, peak_tf_bytes=18 * n, own_rss_bytes=-20480 if n == 1000 else 4 * n,
                 kept_for_backward_bytes=16 * n) for n in SIZES]
    rows += [case("xla", n, 1e-3, direction=fb, peak_tf_bytes=0, own_rss_bytes=0, kept_for_backward_bytes=math.nan)
             for n in SIZES]  # xla's kept memory not measured: a gap, never 0
    rows += [case("pyfunc_seed", SIZES[1], math.nan, direction=fb, status="too_slow")]
    figures.memory_figure(table(rows), "spiky", {}, tmp_path)
    fig = drawn["memory_spiky"]
    for ax in fig.axes:
        assert ax.get_yscale() == "log"
        for line in ax.lines:
            y = np.asarray(line.get_ydata(), dtype=float)
            if line.get_transform() == ax.transData:  # data points (the unmeasured marks sit at the panel's edge)
                assert not (y[np.isfinite(y)] < figures.MEMORY_FLOOR).any(), line.get_label()
    peak, rss, kept = fig.axes
    native_rss = next(line for line in rss.lines if line.get_label() == "native")
    assert list(native_rss.get_ydata()) == [figures.MEMORY_FLOOR, 4.0]  # -20 kB drawn on the floor ...
    assert any(line.get_marker() == "v" and SIZES[0] in line.get_xdata() for line in rss.lines)  # ... and marked so
    xla_kept = next(line for line in kept.lines if line.get_label() == "xla")
    assert np.isnan(np.asarray(xla_kept.get_ydata(), dtype=float)).all()  # not measured: not drawn
    assert texts(kept) == ["not measured", "not measured / too slow"]  # at 16M xla and pyfunc_seed: both whys
    # xla's peak_tf_bytes of 0: TF's allocator counted nothing (oneDNN's skips small tensors), not 0 bytes
    xla_peak = next(line for line in peak.lines if line.get_label() == "xla")
    assert np.isnan(np.asarray(xla_peak.get_ydata(), dtype=float)).all()
    assert texts(peak) == ["not measured", "not measured / too slow"]
    xla_rss = next(line for line in rss.lines if line.get_label() == "xla")
    assert list(xla_rss.get_ydata()) == [figures.MEMORY_FLOOR] * 2  # the process's 0 is a measured 0: on the floor


# --- a quick run's report: one size, no intervals, metrics missing ------------------------------
def test_report_of_a_quick_run_without_some_metrics_draws_every_figure(tmp_path):
    rows = [case(s, 1000, t, direction=d, samples=3, peak_tf_bytes=math.nan if s == "xla" else 4000.0)
            for d in ("forward", "backward", "forward_backward") for s, t in (("native", 2e-4), ("xla", 1e-4))]
    rows += [case("custom_op", 1000, math.nan, direction=d, status="skipped", reason="did not build")
             for d in ("forward", "backward")]
    written = report.write(table(rows), tmp_path, log=lambda m: None)
    names = {p.name for p in written["figures"]}
    for kind in ("throughput", "relative", "speedup", "memory", "compile"):
        assert f"{kind}_spiky.png" in names
