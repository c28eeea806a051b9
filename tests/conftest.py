import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import impls  # noqa: E402

# Every (op, strategy) declared, of every registered op: the tests hold each one to its op's
# reference, so a new op folder is tested by adding it.  Read from the declarations: nothing
# is built at collection; a pair unavailable here skips, saying why (stratbench.testing.usable).
ALL_PAIRS = [(op, s) for op in impls.OPS for s in impls.strategies_for(op)]


def pair_id(pair):
    return f"{pair[0]}-{pair[1]}"


def takes_axis(op):
    return impls.spec(op).takes_axis


@pytest.fixture
def fake_strategies(monkeypatch):
    """The strategies of tests/fixtures/fake_strategies.py registered, in this process and (through
    the environment) in every worker it starts."""
    from impls.strategies import ENV_VARIABLE

    monkeypatch.setenv(ENV_VARIABLE, str(pathlib.Path(__file__).parent / "fixtures" / "fake_strategies.py"))
