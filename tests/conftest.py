import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import impls  # noqa: E402

# Every (op, strategy) usable here, of every registered op: the tests hold each one to its
# op's reference, so a new op folder is tested by adding it.
AVAILABLE = impls.available()
ALL_PAIRS = [(op, s) for op in impls.OPS for s in impls.strategies_for(op)]


def pair_id(pair):
    return f"{pair[0]}-{pair[1]}"


def takes_axis(op):
    return impls.spec(op).takes_axis
