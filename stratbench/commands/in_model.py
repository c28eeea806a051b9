"""`stratbench in-model`: what an op costs inside a running step, against its call from Python."""

from __future__ import annotations

import math
import pathlib

from stratbench.commands import options, present

NEEDS_TENSORFLOW = True
OUT_FOLDER = True


def add_parser(sub, common) -> None:
    parser = sub.add_parser(
        "in-model", parents=[common],
        help="what an op costs inside a running step (1e3-1e5 elements), against its call from Python",
        description=(
            "At small sizes a case timed alone is its strategy's call floor: it says which calling convention "
            "is cheapest to call from Python, not which op is cheapest inside a model. This applies the op to "
            "--applications different inputs in one step (each strategy in its production mode: native as "
            "eager calls, xla as one jit step, the others one tf.function) and, in the same paired rounds, "
            "once; the cost of one application inside the step is the difference over applications - 1, "
            "with its 95% interval. With --out, writes OUT/in_model.csv (after every group) and a Markdown "
            "table, OUT/in_model.md."
        ),
    )
    options.add_ops_and_strategies(parser, every=True)
    parser.add_argument("--directions", "--direction", type=options.names("direction", ("forward", "forward_backward")),
                        default=["forward", "forward_backward"],
                        help="comma-separated: forward, forward_backward (default: both)")
    parser.add_argument("--sizes", "--size", type=options.sizes, default=[(1000,), (10000,), (100000,)],
                        help="element counts (an op along an axis runs on [n/100, 100]; default: 1e3,1e4,1e5)")
    parser.add_argument("--applications", type=int, default=16, choices=range(2, 257), metavar="K",
                        help="applications of the op in one step, 2 to 256 (default: 16)")
    parser.add_argument("--out", type=pathlib.Path, help="also write OUT/in_model.csv (after every group) and the "
                                                         "table as OUT/in_model.md")
    parser.set_defaults(func=main)


def main(args) -> int:
    import pandas as pd

    import impls
    from stratbench import inmodel, results, tables

    groups = inmodel.cases(args.ops, args.strategies, args.directions, [math.prod(s) for s in args.sizes])
    present.log(f"stratbench in-model: {sum(map(len, groups))} cases, the op applied {args.applications} times in "
                "one step and once, in paired rounds")
    rows = []
    out = args.out
    for group in present.progress()(groups, "in-model"):
        rows += inmodel.measure(group, impls.get, args.applications)
        table = results.with_machine(pd.DataFrame(rows))
        if out:  # after every group: Ctrl-C keeps what was measured
            out.mkdir(parents=True, exist_ok=True)
            table.to_csv(out / "in_model.csv", index=False)
    text = (f"Cost of one application inside a step (the op applied {args.applications} times to different inputs "
            "in one step, less the step with one, per paired round; median), and in brackets the call of that "
            f"one-application step from Python. {tables.caption(table.iloc[0].to_dict() | {'setting': 'default'})}")
    cells = inmodel.table(table)
    present.table(cells)
    print("\n" + text)
    if out:
        (out / "in_model.md").write_text(text + "\n\n" + tables.markdown(cells) + "\n")
        print(f"written to {out / 'in_model.csv'} and {out / 'in_model.md'}")
    return 0 if (table["status"] == "ok").any() else 1
