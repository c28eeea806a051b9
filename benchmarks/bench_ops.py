"""asv: every registered op (impls/ops/<op>/ and STRATBENCH_OP_MODULES) under every strategy,
cases from stratbench/matrix.py.  Two classes per op, <Op>Time and <Op>Tracked
(softmax_nosg -> SoftmaxNosgTime), made here because asv finds classes in a module's globals;
an op of this checkout that the measured commit lacks gets them too, skipping (common.suite_ops)."""

from .common import suite_ops, make_suites

for _op in suite_ops():
    _time, _tracked = make_suites(_op)
    globals()[_time.__name__], globals()[_tracked.__name__] = _time, _tracked
