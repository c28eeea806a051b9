"""asv: the spiky activation under every strategy (cases from stratbench/matrix.py)."""

from .common import make_suites

SpikyTime, SpikyTracked = make_suites("spiky", "Spiky")
