"""asv: every registered op (impls/ops/<op>/ and STRATBENCH_OP_MODULES) under every strategy,
cases from stratbench/matrix.py.  Two classes per op, <Op>Time and <Op>Tracked
(softmax_nosg -> SoftmaxNosgTime), made here because asv finds classes in a module's globals."""

from .common import op_names, make_suites

for _op in op_names():
    _time, _tracked = make_suites(_op)
    globals()[_time.__name__], globals()[_tracked.__name__] = _time, _tracked
