"""`stratbench report`: figures and tables from stored results (and the project's publish step)."""

from __future__ import annotations

import pathlib

import impls
from stratbench.commands import present
from stratbench.matrix import BASELINE

NEEDS_TENSORFLOW = False
TOP_README = pathlib.Path(__file__).resolve().parents[2] / "README.md"  # where the headline block is published


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
        "report", parents=[common],
        help="figures and tables from stored results (run at the end of `stratbench run` too)",
        description=(
            "Reads a `stratbench run` directory, an asv results folder (results/asv) or a pytest-benchmark "
            "JSON and writes, per op: throughput against size with 95% interval bands, the memory roofline and the "
            "call floors, speedup at the largest size, TF allocator and process peak memory, compile time (PNG and "
            "SVG); per op and direction a Markdown and a CSV table with strategies as columns; the MLP training "
            "step. Maintainers: --publish also rewrites results/README.md and the headline block of the top-level "
            "README.md from this run; it is the project's publish step, not for users' own runs."
        ),
    )
    parser.add_argument("source", nargs="?", type=pathlib.Path,
                        help="results to read (default: the newest run directory under results/)")
    parser.add_argument("--out", type=pathlib.Path,
                        help="folder for the figures and tables (default: SOURCE/report for a run directory)")
    parser.add_argument("--baseline", default=BASELINE, choices=impls.STRATEGIES,
                        help="strategy the speedups are relative to (default: native)")
    parser.add_argument("--publish", action="store_true",
                        help="maintainers: rewrite results/README.md and the README's headline from this run (the "
                             "project's publish step; not for your own runs)")
    parser.add_argument("--releases", action="store_true",
                        help="compare TensorFlow releases instead: asv results of one commit under "
                             "asv.releases.conf.json (releases.md, releases.csv, a figure)")
    parser.add_argument("--machines", action="store_true",
                        help="compare machines instead: SOURCE is a folder of runs; each machine type's newest "
                             "run side by side (SOURCE/machines: machines.md, .csv, a figure)")
    parser.set_defaults(func=main)


def write_report(source, out, baseline, publish, releases=False) -> None:
    """Writes the report of `source` (and with `publish`, results/README.md and the headline)."""
    from stratbench import across, capabilities, publishing, report

    table, env, caps, default_out = report.source_of(source)
    out = out or default_out
    if releases:
        if publish:
            raise ValueError("--releases and --publish: choose one (--publish is for a `stratbench run` directory)")
        written = across.write_releases(table, out, log=present.log)
        print(f"{written['table']}\n" + "\n".join(map(str, written["figures"])))
        return
    written = report.write(table, out, env, caps, baseline, log=present.log)
    if caps:
        print("\ncapability matrix (- = skipped; details in capabilities.json):")
        present.table(capabilities.table(caps))
    if publish:
        if env is None:
            raise ValueError("--publish needs a `stratbench run` directory (with environment.json), not asv or "
                             "pytest-benchmark results")
        results_readme = pathlib.Path(source).resolve().parents[1] / "README.md"
        top = TOP_README if TOP_README.exists() else None
        publishing.publish(pathlib.Path(source), written, table, env, caps, results_readme, top, baseline,
                           f"stratbench report {source} --publish")
        print(f"published {results_readme}" + (f" and the headline block of {top}" if top else ""))


def main(args) -> int:
    from stratbench import across, report

    source = args.source or report.latest_run(pathlib.Path("results"))
    if source is None:
        return present.error("report", "no stored results under results/; run `stratbench run` first, or name a "
                                       "run directory, an asv results folder or a pytest-benchmark JSON")
    if not pathlib.Path(source).exists():
        return present.error("report", f"{source} does not exist")
    try:
        if args.machines:
            if args.publish or args.releases:
                raise ValueError("--machines reads a folder of runs; --publish (of one run) includes the machines "
                                 "of its results folder already, and --releases compares TF releases")
            written = across.write_machines(source, args.out or pathlib.Path(source) / "machines", args.baseline,
                                            log=present.log)
            print(f"{written['table']}\n" + "\n".join(map(str, written["figures"])))
            return 0
        write_report(source, args.out, args.baseline, args.publish, args.releases)
    except ValueError as e:
        return present.error("report", str(e))
    return 0
