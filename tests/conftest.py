import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import impls  # noqa: E402

# Every (op, strategy) usable here: the tests hold each one to the reference.
AVAILABLE = impls.available()
SPIKY = [(op, s) for op, s in AVAILABLE if op == "spiky"]
SOFTMAXES = [(op, s) for op, s in AVAILABLE if op != "spiky"]
ALL_PAIRS = [(op, s) for op in impls.OPS for s in impls.strategies_for(op)]


def pair_id(pair):
    return f"{pair[0]}-{pair[1]}"
