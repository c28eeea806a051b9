"""The registry's names and what each Impl claims."""

import impls


def test_names_from_the_design():
    assert impls.OPS == ("spiky", "softmax", "softmax_nosg")
    assert set(impls.STRATEGIES) == {"pyfunc_seed", "pyfunc", "native", "graph", "xla", "custom_op", "builtin"}
    assert impls.strategies_for("softmax_nosg") == ("native", "graph", "xla")
    assert "builtin" in impls.strategies_for("softmax") and "builtin" not in impls.strategies_for("spiky")


def test_every_impl_describes_itself():
    for op in impls.OPS:
        for s in impls.strategies_for(op):
            impl = impls.get(op, s)
            assert (impl.op, impl.strategy) == (op, s)
            assert set(impl.dtypes) <= set(impls.FLOAT_DTYPES) and impl.dtypes
            assert set(impl.devices) <= {"CPU", "GPU"} and impl.devices
            assert impl.available == (not impl.reason)


def test_get_returns_one_impl_per_pair():
    assert impls.get("spiky", "graph") is impls.get("spiky", "graph")


def test_available_lists_the_usable_pairs():
    pairs = impls.available()
    assert ("spiky", "native") in pairs and ("softmax", "builtin") in pairs
    assert all(impls.get(op, s).available for op, s in pairs)


def test_declared_ops_match_each_strategy_module():
    import importlib

    for strategy, ops in impls.IMPLEMENTS.items():
        assert set(importlib.import_module(f"impls.{strategy}").FUNCTIONS) == set(ops), strategy


def test_the_case_matrix_needs_no_tensorflow():
    """asv imports the suite in a fresh process per benchmark: building the cases must stay cheap."""
    import subprocess
    import sys

    code = "import sys; from stratbench import matrix; matrix.cases(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
