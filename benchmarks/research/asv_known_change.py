"""Which change does asv catch here, and at which factor does it flag nothing when nothing
changed?  Known slowdowns of one kernel, measured by asv as a user runs it, in separate
reruns; then asv's own rule (`asv compare`'s, statistics included) on every number.

    python benchmarks/research/asv_known_change.py [--extra 0.5,1,2] [--reruns 3] \
        [--bench REGEX] [--out results/asv_known_change]

In a scratch clone of HEAD it commits, per EXTRA, one known change on top of HEAD: spiky's
compiled CPU kernels (the custom_op strategy) pass over EXTRA of their range once more
(EXTRA 1: the whole pass twice, about 2x the memory traffic at 16M elements), computing the
same values.  Each rerun is `asv run` of HEAD and of every changed commit (in a rotated
order), under a machine name of its own so the reruns do not overwrite each other.  Then:
- A/A: HEAD in one rerun against HEAD in another, every number;
- each change: HEAD against the changed commit in the same rerun, as `asv continuous` does.
  The numbers of custom_op at the largest size are the known change; every other number,
  which the change does not touch, counts as A/A;
- the true size of each change: `stratbench compare HEAD CHANGED` on spiky custom_op at the
  largest size (paired rounds), with --truth.
Writes OUT/ratios.csv (every number of every comparison, flagged or not at each factor),
OUT/summary.txt, and the asv result files.  asv's environment is built in the scratch clone
(TensorFlow installed once, a few minutes); the clone is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import math
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pandas as pd
from asv.results import iter_results_for_machine_and_hash
from scipy import stats as scipy_stats

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from stratbench import matrix  # noqa: E402

KERNEL = pathlib.Path("impls/ops/spiky/kernels/spiky.cc")
ONE_PASS = "void SpikyRange(const T* x, const T* dy, T* out, int64_t begin, int64_t end) {"
USERS = "template <typename T> using SpikyCpu"
FACTORS = (1.1, 1.2, 1.3, 1.5, 2.0, 2.5, 3.0)
CHANGED_STRATEGY = "custom_op"  # the strategy whose kernel the known change slows


def git(*args, cwd=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


# asv compare's flag rule (asv 0.6.6, asv/commands/compare.py and asv/_stats.py, which are private:
# restated here with scipy): `a` is better than `b` by `factor` where a < b / factor and, when
# both results carry statistics of more than one repeat, their samples differ: a two-sided
# Mann-Whitney U test at p < 0.002 (exact up to 20 samples a side, else the normal approximation
# without continuity correction), or, with too few samples for such a p, 99% intervals that do
# not overlap.  asv breaks ties conservatively; timings almost never tie.
ASV_P = 0.002


def asv_different(samples_a, samples_b, stats_a, stats_b) -> bool:
    if samples_a is not None and samples_b is not None:
        a = [x for x in samples_a if not math.isnan(x)]
        b = [x for x in samples_b if not math.isnan(x)]
        if a and b and 1 / math.comb(len(a) + len(b), min(len(a), len(b))) < ASV_P:
            method = "exact" if max(len(a), len(b)) <= 20 else "asymptotic"
            return scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method=method,
                                            use_continuity=False).pvalue < ASV_P
    return not (stats_a["ci_99_b"] >= stats_b["ci_99_a"] and stats_a["ci_99_a"] <= stats_b["ci_99_b"])


def asv_better(a, b, a_ss, b_ss, factor) -> bool:
    """asv compare's rule: result `a` better than `b` by `factor` ((stats, samples) each in a_ss, b_ss)."""
    if a_ss and b_ss and a_ss[0] and b_ss[0] and a_ss[0].get("repeat", 0) != 1 and b_ss[0].get("repeat", 0) != 1:
        if not asv_different(a_ss[1], b_ss[1], a_ss[0], b_ss[0]):
            return False
    return a < b / factor


def known_change(source: str, extra: float) -> str:
    """spiky.cc whose range function passes over `extra` of its range once more (same values:
    each pass computes out from x alone)."""
    if ONE_PASS not in source or USERS not in source:
        raise SystemExit(f"{KERNEL} lacks `{ONE_PASS}` or `{USERS}`: update this script's known change")
    again = ("template <typename T, bool kGrad>\n" + ONE_PASS + "\n"
             "  SpikyRangeOnce<T, kGrad>(x, dy, out, begin, end);\n"
             f"  // known change (benchmarks/research/asv_known_change.py): {extra:g} of the range again\n"
             f"  for (double left = {extra!r}; left > 0; left -= 1)\n"
             "    SpikyRangeOnce<T, kGrad>(x, dy, out, begin,\n"
             "                             begin + static_cast<int64_t>((end - begin) * (left < 1 ? left : 1.0)));\n"
             "}\n\n")
    return source.replace(ONE_PASS, ONE_PASS.replace("SpikyRange", "SpikyRangeOnce")).replace(USERS, again + USERS, 1)


def run(cmd, cwd, log) -> None:
    """`cmd` in `cwd`, its output shown as it comes and appended to `log`; stops the script on failure."""
    line = " ".join(map(str, cmd))
    print(f"{time.strftime('%H:%M:%S')} $ {line}", flush=True)
    with open(log, "a") as f, subprocess.Popen(cmd, cwd=cwd, text=True, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT) as done:
        f.write(f"$ {line}\n")
        for output in done.stdout:
            print(output, end="", flush=True)
            f.write(output)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {line} (output in {log})")


def numbers(results_dir, machine: str, sha: str) -> dict:
    """{(benchmark, strategy, size, direction): (value, (stats, samples))} of one asv run, as
    `asv compare` unrolls them."""
    found = {}
    for result in iter_results_for_machine_and_hash(str(results_dir), machine, sha):
        for key in result.get_all_result_keys():
            params = result.get_result_params(key)
            values, stats = result.get_result_value(key, params), result.get_result_stats(key, params)
            samples = result.get_result_samples(key, params)
            combos = itertools.product(*params)
            for combo, value, stat, sample in zip(combos, values, stats or itertools.repeat(None),
                                                  samples or itertools.repeat(None)):
                found[(key, *(p.strip("'") for p in combo))] = (value, (stat, sample))
    return found


def compared(before: dict, after: dict, **labels) -> list[dict]:
    """Every number present in both (neither failed nor skipped), flagged or not at each factor by
    asv compare's rule: the ratio beyond the factor, and asv's significance test where both
    results carry statistics (asv's timer; the track_ numbers are single values)."""
    rows = []
    for name in sorted(before.keys() & after.keys()):
        (b, b_ss), (a, a_ss) = before[name], after[name]
        if any(v is None or v != v for v in (a, b)) or b == 0:
            continue
        benchmark, strategy, size, direction = name
        rows.append({**labels, "benchmark": benchmark, "strategy": strategy, "size": size, "direction": direction,
                     "before": b, "after": a, "ratio": a / b,
                     **{f"flagged_{f:g}": asv_better(a, b, a_ss, b_ss, f) or asv_better(b, a, b_ss, a_ss, f)
                        for f in FACTORS}})
    return rows


def analyse(out: pathlib.Path) -> pd.DataFrame:
    """OUT/ratios.csv and OUT/summary.txt from the asv results and OUT/commits.csv."""
    commits = pd.read_csv(out / "commits.csv")
    machines = sorted(p.name for p in (out / "asv").iterdir() if p.is_dir())
    base = commits.loc[commits["extra"] == 0, "sha"].item()
    runs = {(m, sha): numbers(out / "asv", m, sha) for m in machines for sha in commits["sha"]}
    rows = []
    for m1, m2 in itertools.combinations(machines, 2):
        rows += compared(runs[(m1, base)], runs[(m2, base)], comparison="A/A", extra=0.0, reruns=f"{m1} {m2}")
    for m in machines:
        for extra, sha in zip(commits["extra"], commits["sha"]):
            if extra:
                rows += compared(runs[(m, base)], runs[(m, sha)], comparison="change", extra=extra, reruns=m)
    table = pd.DataFrame(rows)
    # the baseline's speedup over itself is 1 by definition: not a number that could move
    table = table[~(table["benchmark"].str.endswith("speedup_over_native") & (table["strategy"] == matrix.BASELINE))].copy()
    table["elements"] = [math.prod(matrix.parse_size(s)) for s in table["size"]]
    # the known change's numbers: the changed kernel at the largest size; the kernel at other
    # sizes changes by an unknown amount, every other number not at all
    kernel = (table["comparison"] == "change") & (table["strategy"] == CHANGED_STRATEGY)
    table["role"] = "unchanged"
    table.loc[kernel, "role"] = "other size"
    table.loc[kernel & (table["elements"] == table["elements"].max()), "role"] = "known change"
    table.to_csv(out / "ratios.csv", index=False)
    (out / "summary.txt").write_text(summary(table, commits))
    return table


def summary(table: pd.DataFrame, commits: pd.DataFrame) -> str:
    """Two tables: the numbers that did not change (their ratio either way up, and how many
    each factor flags), and each number of each known change (its ratio in every rerun, and
    in how many reruns each factor flags it)."""
    table = table.assign(figure=table["benchmark"].str.rsplit(".", n=1).str[-1])
    flags = [f"flagged_{f:g}" for f in FACTORS]
    unchanged = table[table["role"] == "unchanged"].copy()
    unchanged["either_way"] = unchanged["ratio"].where(unchanged["ratio"] >= 1, 1 / unchanged["ratio"])
    quiet = unchanged.groupby("figure").agg(numbers=("ratio", "size"), median=("either_way", "median"),
                                            p95=("either_way", lambda r: r.quantile(0.95)), largest=("either_way", "max"),
                                            **{f: (f, "sum") for f in flags})
    known = table[table["role"] == "known change"]
    caught = known.groupby(["extra", "figure", "direction"]).agg(
        ratios=("ratio", lambda r: " ".join(f"{v:.2f}" for v in r)),
        **{f: (f, lambda v: f"{int(v.sum())}/{len(v)}") for f in flags})
    return (f"Numbers that did not change (A/A across reruns, and the untouched numbers of each change's "
            f"rerun): ratio either way up, and how many asv compare flags at each factor\n"
            f"{quiet.round(3).to_string()}\n\n"
            f"The known changes (spiky {CHANGED_STRATEGY} at the largest size; extra: share of the range passed over "
            f"again): ratio changed/HEAD in each rerun, and in how many reruns asv compare flags it at each factor\n"
            f"{caught.to_string()}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", default="0.5,1,2",
                        help="the known changes: the share of the range the kernel passes over again (comma-separated)")
    parser.add_argument("--reruns", type=int, default=3)
    parser.add_argument("--bench", default=r"SpikyTime|SpikyTracked\.track_(seconds_per_call|speedup_over_native)",
                        help="asv's -b: the benchmarks each asv run measures (default: spiky's timers)")
    parser.add_argument("--truth", action="store_true",
                        help="also measure each change with stratbench compare (paired rounds) for its true size")
    parser.add_argument("--analyse", action="store_true", help="only analyse the results already in OUT")
    parser.add_argument("--out", default="results/asv_known_change")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out).resolve()
    if args.analyse and not (out / "commits.csv").exists():
        parser.error(f"--analyse: {out} holds no commits.csv (accepted: the --out folder of an earlier run)")
    if args.analyse:
        analyse(out)
        print((out / "summary.txt").read_text())
        return 0
    try:
        extras = [float(e) for e in args.extra.split(",")]
    except ValueError:
        parser.error(f"--extra {args.extra!r}: accepted: positive numbers, comma-separated (0.5,1,2)")
    if any(e <= 0 for e in extras) or args.reruns < 2:
        parser.error("--extra takes positive shares and --reruns at least 2 (A/A needs two reruns)")
    top = git("rev-parse", "--show-toplevel")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "asv.log"
    asv = [sys.executable, "-m", "asv"]
    machine = subprocess.run([sys.executable, "-m", "stratbench", "machine"], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="stratbench-known-change-"))
    started = time.perf_counter()
    try:
        repo = scratch / "repo"
        run(["git", "clone", "-q", top, repo], scratch, log)
        base = git("rev-parse", "HEAD", cwd=top)
        run(["git", "checkout", "-q", "--detach", base], repo, log)
        commits = [{"extra": 0.0, "sha": base}]
        for extra in extras:
            run(["git", "checkout", "-q", "--detach", base], repo, log)
            (repo / KERNEL).write_text(known_change((repo / KERNEL).read_text(), extra))
            run(["git", "-c", "user.name=stratbench", "-c", "user.email=stratbench@localhost", "commit", "-q", "-am",
                 f"known change: spiky's CPU kernels pass over {extra:g} of their range again"], repo, log)
            commits.append({"extra": extra, "sha": git("rev-parse", "HEAD", cwd=repo)})
        pd.DataFrame(commits).to_csv(out / "commits.csv", index=False)
        for r in range(1, args.reruns + 1):
            name = f"{machine}-known-r{r}"
            run([*asv, "machine", "--machine", name, "--yes"], repo, log)
            order = commits[(r - 1) % len(commits):] + commits[:(r - 1) % len(commits)]  # drift hits no commit alone
            for i, commit in enumerate(order, 1):
                print(f"rerun {r}/{args.reruns}, commit {i}/{len(order)} (+{commit['extra']:g} pass), "
                      f"{time.perf_counter() - started:.0f} s so far", flush=True)
                run([*asv, "run", "--machine", name, "-b", args.bench, "--show-stderr", f"{commit['sha']}^!"], repo, log)
                shutil.copytree(repo / "results" / "asv" / name, out / "asv" / name, dirs_exist_ok=True)  # kept on a crash
        if args.truth:  # at the largest size of the matrix, where the asv numbers of the known change are
            largest = max(c.size for c in matrix.cases(ops=["spiky"], strategies=[CHANGED_STRATEGY])
                          if c.direction in matrix.KERNEL_DIRECTIONS)
            for commit in commits[1:]:
                run([sys.executable, "-m", "stratbench", "compare", base, commit["sha"], "--ops", "spiky", "--strategies",
                     CHANGED_STRATEGY, "--sizes", str(largest), "--out", out / f"truth_{commit['extra']:g}"], repo, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    analyse(out)
    print((out / "summary.txt").read_text())
    print(f"{time.perf_counter() - started:.0f} s; every number in {out / 'ratios.csv'}, asv's output in {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
