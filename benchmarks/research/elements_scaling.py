"""Is 10% more elements a 1.1x change?  `stratbench noise` takes one memory-bound case
with 10% and 20% more elements as known 1.1x and 1.2x changes; this measures, in one
process, how the case's time really scales: the case at 1x, 1.1x and 1.2x its elements,
sampled in shuffled rounds (stratbench/measurement.py), the paired ratios with their
95% intervals over all rounds and over each third of them (warm-up shows as a trend).

    python benchmarks/research/elements_scaling.py [--op spiky] [--strategies xla,native]
        [--direction forward] [--size 16e6] [--rounds 40] [--sample-time 0.02]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import impls  # noqa: E402
from stratbench import timing  # noqa: E402
from stratbench.noise import NOISE_CHANGES, more_elements  # noqa: E402
from stratbench.matrix import Case, parse_size  # noqa: E402
from stratbench.measurement import Measurement, Rounds, sample_rounds  # noqa: E402

FACTORS = tuple(factor for _, factor in NOISE_CHANGES)  # the known changes of `stratbench noise`


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--op", default="spiky")
    parser.add_argument("--strategies", default="xla,native", help="comma-separated")
    parser.add_argument("--direction", default="forward")
    parser.add_argument("--size", default="16e6", help="elements of the 1x case (default: 16e6)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--sample-time", type=float, default=0.02, help="seconds a sample should last")
    args = parser.parse_args(argv)
    settings = timing.Settings(target_sample_s=args.sample_time)
    prepared, calls = {}, {}
    for strategy in args.strategies.split(","):
        for factor in FACTORS:
            case = more_elements(Case(args.op, strategy, args.direction, "float32", "CPU", parse_size(args.size)), factor)
            p = timing.prepare(impls.get(args.op, strategy), case, input_sets=settings.input_sets)
            prepared[(strategy, factor)], calls[(strategy, factor)] = p, timing.warm_up(p, settings)["calls"]
    names = {f"{s} x{f:g}": (s, f) for s, f in prepared}
    m = sample_rounds(lambda name, round_, process: prepared[names[name]].run(calls[names[name]], round_),
                      {name: calls[key] for name, key in names.items()},
                      Rounds(min_rounds=args.rounds, max_rounds=args.rounds, seed=0))
    thirds = [range(k * args.rounds // 3, (k + 1) * args.rounds // 3) for k in range(3)]
    for strategy in args.strategies.split(","):
        print(f"{args.op} {strategy} {args.direction} {args.size}: {m.time(f'{strategy} x1').value * 1e3:.2f} ms a call")
        for factor in FACTORS[1:]:
            r = m.ratio(f"{strategy} x{factor:g}", f"{strategy} x1")
            by_third = []
            for rounds in thirds:
                part = Measurement([s for s in m.samples if s["round"] in rounds])
                by_third.append(f"{part.ratio(f'{strategy} x{factor:g}', f'{strategy} x1').value:.3f}")
            print(f"  {factor:g}x elements: {r.value:.3f} [{r.low:.3f}, {r.high:.3f}]; "
                  f"by third of the rounds: {', '.join(by_third)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
