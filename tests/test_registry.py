"""The registry's names and what each Impl claims."""

import impls


def test_names_from_the_design():
    assert {"spiky", "softmax", "softmax_nosg", "gelu"} <= set(impls.OPS)
    assert set(impls.STRATEGIES) == {"pyfunc_seed", "pyfunc", "native", "graph", "xla", "custom_op", "builtin"}
    assert impls.strategies_for("softmax_nosg") == ("native", "graph", "xla")
    assert "builtin" in impls.strategies_for("softmax") and "builtin" not in impls.strategies_for("spiky")


def test_a_strategy_is_offered_exactly_when_the_spec_has_what_it_needs():
    for op in impls.OPS:
        spec = impls.spec(op)
        offered = set(impls.strategies_for(op))
        assert {"native", "graph", "xla"} <= offered
        assert ("pyfunc" in offered) == (spec.numpy is not None)
        assert ("pyfunc_seed" in offered) == (spec.numpy is not None or spec.scalar is not None)
        assert ("builtin" in offered) == (spec.builtin is not None)
        assert ("custom_op" in offered) == (spec.custom_op is not None)


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


def test_every_strategy_module_is_generic():
    """Each strategy turns a spec into a function and names no op (grep would find it)."""
    import importlib
    import pathlib

    for strategy in impls.STRATEGIES:
        module = importlib.import_module(f"impls.{strategy}")
        assert callable(module.implement) and callable(module.availability), strategy
        source = pathlib.Path(module.__file__).read_text()
        assert not [op for op in impls.OPS if f'"{op}"' in source], strategy


def test_the_case_matrix_needs_no_tensorflow():
    """asv imports the suite in a fresh process per benchmark: building the cases must stay cheap."""
    import subprocess
    import sys

    code = "import sys; from stratbench import matrix; matrix.cases(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
