"""asv: the stop-gradient softmax and its no-stop-gradient ablation (cases from stratbench/matrix.py)."""

from .common import make_suites

SoftmaxTime, SoftmaxTracked = make_suites("softmax", "Softmax")
SoftmaxNosgTime, SoftmaxNosgTracked = make_suites("softmax_nosg", "SoftmaxNosg")
