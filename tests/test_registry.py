"""The registry's names and what each Impl claims."""

import importlib
import pathlib
import re

import pytest

import impls

ROOT = pathlib.Path(__file__).resolve().parents[1]


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


def test_every_strategy_is_one_generic_declaration():
    """Each strategy module declares itself and names no op (grep would find it); no strategy
    name is branched on outside its own module."""
    import pathlib

    root = pathlib.Path(impls.__file__).parents[1]
    for name in impls.STRATEGIES:
        declared = impls.declaration(name)
        assert declared.name == name and callable(declared.implement), name
        source = pathlib.Path(importlib.import_module(declared.module).__file__).read_text()
        assert not [op for op in impls.OPS if f'"{op}"' in source], name
        branched = re.compile(rf'strategy\S*\s*(==|!=|\bin\b)[^#\n]*"{name}"|"{name}"\s*(==|!=|\bin\b)[^#\n]*strategy')
        for path in [*root.glob("stratbench/*.py"), *root.glob("benchmarks/*.py"), root / "impls" / "__init__.py"]:
            assert not branched.search(path.read_text()), (name, str(path))


def test_a_declaration_says_what_is_wrong_with_it():
    from impls.strategy import Strategy

    def implement(spec):
        return spec.code("native")

    for bad, says in ((dict(name="my strategy"), "identifier"), (dict(mode="jit"), "not one of eager"),
                      (dict(needs=("nump",)), "not OpSpec fields"), (dict(dtypes=("int32",)), "must be some of"),
                      (dict(devices=("TPU",)), "must be some of")):
        with pytest.raises(ValueError, match=says):
            Strategy(**{"name": "mine", "implement": implement, **bad})


def test_a_strategy_module_from_outside_the_package(monkeypatch):
    """The README's worked example: listed after the package's, offered for every op."""
    from impls.strategies import ENV_VARIABLE

    monkeypatch.setenv(ENV_VARIABLE, str(ROOT / "examples" / "recompute_strategy.py"))
    try:
        assert impls.STRATEGIES[-1] == "recompute"
        assert all("recompute" in impls.strategies_for(op) for op in impls.OPS)
        assert impls.declaration("recompute").module.endswith("recompute_strategy")
    finally:
        monkeypatch.delenv(ENV_VARIABLE)
    assert "recompute" not in impls.STRATEGIES


def test_two_op_files_of_one_name_are_two_modules(tmp_path, monkeypatch):
    """Two packages' __init__.py (or two op.py in two folders) each register their own op."""
    from impls.ops import ENV_VARIABLE

    example = (ROOT / "examples" / "silu_op.py").read_text()
    files = []
    for name in ("silu_a", "silu_b"):
        (tmp_path / name).mkdir()
        files.append(tmp_path / name / "__init__.py")
        files[-1].write_text(example.replace('name="silu"', f'name="{name}"'))
    monkeypatch.setenv(ENV_VARIABLE, ",".join(map(str, files)))
    assert {"silu_a", "silu_b"} <= set(impls.OPS)
    assert impls.spec("silu_a").folder == tmp_path / "silu_a" and impls.spec("silu_b").folder == tmp_path / "silu_b"


def test_a_broken_strategy_module_is_one_clear_error(tmp_path, monkeypatch):
    from impls.strategies import ENV_VARIABLE, StrategyModuleError

    (tmp_path / "none.py").write_text("X = 1\n")
    (tmp_path / "twice.py").write_text("from impls.strategies.native import STRATEGY\n")
    for module, says in ((tmp_path / "missing.py", "does not exist"), (tmp_path / "none.py", "must define STRATEGY"),
                         (tmp_path / "twice.py", "already declared")):
        monkeypatch.setenv(ENV_VARIABLE, str(module))
        with pytest.raises(StrategyModuleError, match=says):
            impls.STRATEGIES
    monkeypatch.delenv(ENV_VARIABLE)


def test_the_case_matrix_needs_no_tensorflow():
    """asv imports the suite in a fresh process per benchmark: building the cases must stay cheap."""
    import subprocess
    import sys

    code = "import sys; from stratbench import matrix; matrix.cases(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
