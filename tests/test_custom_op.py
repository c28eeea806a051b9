"""The compiled op: build, cache, failure, registration, SavedModel, kernels per device.

Its values, gradients, dtypes, shapes, edge cases and bad input are held to the
reference by test_impls.py and test_bad_input.py, like every other strategy."""

import dataclasses
import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels

import impls
from impls.strategies import custom_op
from impls.kernels import build
from stratbench import correctness, verify

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPECS = [impls.spec(op) for op in impls.OPS if impls.spec(op).custom_op]
OPS = [build.op_type(s.custom_op) + suffix for s in SPECS for suffix in ("", "Grad")]
SPIKY = impls.spec("spiky")


def python(code: str, env=None, timeout=600):
    """Run code in a fresh Python process; its stdout, or the test fails with its stderr."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_custom_op_is_available_here():
    impl = impls.get("spiky", "custom_op")
    assert impl.available, impl.reason
    assert ("softmax", "custom_op") in impls.available()


def test_gpu_kernels_are_registered_exactly_when_the_build_had_cuda():
    for spec in SPECS:
        impls.get(spec.name, "custom_op")
        for op in (build.op_type(spec.custom_op), build.op_type(spec.custom_op) + "Grad"):
            devices = {k.device_type for k in kernels.get_registered_kernels_for_op(op).kernel}
            assert devices == ({"CPU", "GPU"} if custom_op.built_with_cuda(spec) else {"CPU"}), op
        assert ("GPU" in impls.get(spec.name, "custom_op").devices) == custom_op.built_with_cuda(spec)


def test_reimport_registers_the_gradient_once():
    importlib.reload(custom_op)  # would raise KeyError if the gradient were registered again
    x = tf.constant([0.2, 0.7])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = custom_op.implement(SPIKY)(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1, 0])


def test_backward_does_not_need_the_forward_output():
    """The gradient ops recompute from x: a dx-only graph keeps no forward op."""
    fn = tf.function(lambda x, dy: tf.gradients(custom_op.implement(SPIKY)(x), x, dy)[0])
    graph = fn.get_concrete_function(tf.TensorSpec([8]), tf.TensorSpec([8])).graph
    grad_inputs = [op.inputs[0].op.type for op in graph.get_operations() if op.type == "SpikyGrad"]
    assert grad_inputs == ["Placeholder"]


def test_savedmodel_loads_in_a_fresh_process(tmp_path):
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return impls.get("spiky", "custom_op").fn(x) + impls.get("softmax", "custom_op").fn(x, axis=0)

    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32) * 3
    expected = Module()(x).numpy()
    tf.saved_model.save(Module(), str(tmp_path / "model"))
    np.save(tmp_path / "x.npy", x)
    out = python(f"""
        import numpy as np, tensorflow as tf
        import impls
        impls.get("spiky", "custom_op"), impls.get("softmax", "custom_op")  # each op's library, as a loader must
        model = tf.saved_model.load({str(tmp_path / "model")!r})
        np.save({str(tmp_path / "y.npy")!r}, model(np.load({str(tmp_path / "x.npy")!r})).numpy())
        print("loaded")
    """)
    assert "loaded" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


def test_each_library_key_follows_its_own_sources_and_the_shared_ones(tmp_path, monkeypatch):
    """One library per kernels folder: an op's changed kernel rebuilds that op's library only;
    a changed shared header rebuilds them all."""
    from stratbench.timing import FLOOR_SPEC

    libraries = build.libraries()
    assert libraries[0] == build.FLOOR == build.library_of(FLOOR_SPEC)
    keys = {lib.name: build.plan(lib)["key"] for lib in libraries}
    assert set(keys) == {"floor"} | {s.folder.name for s in SPECS}
    copies = {}
    for lib in libraries:
        folder = tmp_path / lib.folder.parent.name / lib.folder.name
        shutil.copytree(lib.folder, folder, ignore=shutil.ignore_patterns("__pycache__", "*.py", "bandwidth"))
        copies[lib.name] = lib._replace(folder=folder)
    here = copies["floor"].folder
    monkeypatch.setattr(build, "SHARED", [here / p.name for p in build.SHARED])
    monkeypatch.setattr(build, "HERE", here)
    plan = {name: lambda name=name: build.plan(copies[name])["key"] for name in copies}
    assert {name: key() for name, key in plan.items()} == keys
    with open(next(copies["spiky"].folder.glob("*.cc")), "a") as f:  # one op's kernel changed
        f.write("\n// changed\n")
    assert {name for name, key in plan.items() if key() != keys[name]} == {"spiky"}
    with open(here / "stratbench.h", "a") as f:  # a shared header changed
        f.write("\n// changed\n")
    assert all(key() != keys[name] for name, key in plan.items())


def test_an_op_is_named_by_its_spec_not_its_sources(tmp_path, monkeypatch):
    """No kernel source spells an op name; the same sources under another spec's custom_op
    name register and load under that name (spiky's kernels as a user's my_spiky)."""
    for lib in build.libraries():
        for source in lib.folder.glob("*.c[cu]"):
            assert 'REGISTER_OP("' not in source.read_text() and 'Name("' not in source.read_text(), source
    package = tmp_path / "my_spiky"
    shutil.copytree(SPIKY.folder / "kernels", package / "kernels")
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        import dataclasses
        from impls.ops.spiky import SPEC as SPIKY
        SPEC = dataclasses.replace(SPIKY, name="my_spiky", custom_op="my_spiky", module="")
    """))
    monkeypatch.setenv("STRATBENCH_OP_MODULES", str(package / "__init__.py"))
    monkeypatch.setenv("STRATBENCH_CUDA", "0")
    impl = impls.get("my_spiky", "custom_op")
    assert impl.available, impl.reason
    row = verify.verify_one(impl)
    assert row["forward"] == row["gradient"] == "pass", row
    registered = {k.op for op in ("MySpiky", "MySpikyGrad") for k in kernels.get_registered_kernels_for_op(op).kernel}
    assert registered == {"MySpiky", "MySpikyGrad"}


FAILING_COMPILER = "#!/bin/sh\necho 'spiky.cc:1:1: error: boom on purpose' >&2\nexit 1\n"


@pytest.mark.parametrize("problem", ["no_compiler", "compile_error"])
def test_failed_build_leaves_only_custom_op_unavailable(tmp_path, problem):
    if problem == "no_compiler":
        cxx, expected = str(tmp_path / "no-such-g++"), "no C++ compiler"
    else:
        cxx, expected = tmp_path / "failing-g++", "error: boom on purpose"
        cxx.write_text(FAILING_COMPILER)
        cxx.chmod(0o755)
    out = python("""
        import tensorflow as tf, impls
        impl = impls.get("spiky", "custom_op")
        print("available:", impl.available)
        print("reason:", impl.reason)
        print("native:", impls.get("spiky", "native").fn(tf.constant([1.2])).numpy())
        print("pairs:", len(impls.available()))
    """, env={"CXX": str(cxx), "STRATBENCH_CACHE": str(tmp_path / "cache"), "STRATBENCH_CUDA": "0"})
    assert "available: False" in out
    assert expected in out
    assert "native: [0.20000005]" in out
    custom_op_pairs = sum(1 for _, s in impls.available() if s == "custom_op")
    assert f"pairs: {len(impls.available()) - custom_op_pairs}\n" in out


def test_an_op_whose_kernels_fail_is_unavailable_by_name_and_the_others_load(tmp_path, monkeypatch):
    """A user's op with a compiled op whose kernel does not compile: custom_op is unavailable
    for it, the reason naming it and the compiler's error; the shipped ops' custom_op loads."""
    package = tmp_path / "broken_relu"
    (package / "kernels").mkdir(parents=True)
    (package / "kernels" / "broken_relu.cc").write_text("#include \"stratbench.h\"\nthis is not C++;\n")
    (package / "__init__.py").write_text(textwrap.dedent("""
        import numpy as np
        import tensorflow as tf
        from impls.spec import OpSpec
        SPEC = OpSpec(name="broken_relu", summary="relu with a kernel that does not compile",
                      reference=lambda x: np.maximum(x, 0), reference_grad=lambda x, dy: dy * (x > 0),
                      native=tf.nn.relu, custom_op="broken_relu")
    """))
    monkeypatch.setenv("STRATBENCH_OP_MODULES", str(package / "__init__.py"))
    broken, spiky = impls.get("broken_relu", "custom_op"), impls.get("spiky", "custom_op")
    assert not broken.available
    assert broken.reason.startswith("the compiled op failed to build: broken_relu's kernels"), broken.reason
    assert "error" in broken.reason
    assert spiky.available, spiky.reason


def test_concurrent_builds_share_one_library(tmp_path):
    """Two processes building the same sources into an empty cache: one builds, the other
    waits on the lock and loads the same file."""
    code = textwrap.dedent("""
        import tensorflow as tf
        from impls.kernels import build
        path, _ = build.build()  # the call floor's library: the smallest
        tf.load_op_library(str(path))
        print(path)
    """)
    env = {**os.environ, "STRATBENCH_CACHE": str(tmp_path), "STRATBENCH_CUDA": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    paths = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(paths) == 1
    assert len(list(tmp_path.glob("*/stratbench_floor.so"))) == 1


def test_an_op_without_an_axis_attribute_is_moved_there_and_back(monkeypatch):
    """An op of yours without an `axis` attribute runs along the last axis: custom_op
    transposes any other axis there and back (values and gradient held to the reference),
    and refuses an axis it cannot place (unknown rank).  The softmax kernel stands in,
    called without its axis."""
    spec = impls.spec("softmax")
    kernel = custom_op.compiled_op(spec)

    def last_axis_only(x, name=None):
        return kernel(x, axis=-1, name=name)

    monkeypatch.setattr(custom_op, "compiled_op", lambda spec: last_axis_only)
    impl = dataclasses.replace(impls.get("softmax", "custom_op"), fn=custom_op.implement(spec))
    values = np.random.default_rng(5).normal(scale=3, size=(3, 4, 5))
    for axis in (0, 1, -2, 2, -1):
        result = correctness.check(impl, values, "float32", axis=axis, in_function=True)
        assert result.ok, f"axis {axis}: forward {result.forward_err:.3g}, gradient {result.gradient_err:.3g}"
    unknown_rank = tf.function(lambda x: impl.fn(x, axis=0), input_signature=[tf.TensorSpec(None, tf.float32)])
    with pytest.raises(ValueError, match="axis 0 needs an input of known rank; accepted with unknown rank: axis=-1"):
        unknown_rank.get_concrete_function()


# Past the private caches of TF's threads, where its allocator caches memory (StreamOutput in
# impls/kernels/stratbench.h: oneDNN on, or the BFC allocator), an elementwise kernel
# computes 128-byte blocks and streams them out, with ordinary stores
# before the first 64-byte boundary of each shard and after its last whole block: an odd
# length over 8 MiB exercises both ends in every dtype.
@pytest.mark.parametrize("op", [s.name for s in SPECS if not s.takes_axis])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_elementwise_kernels_stream_large_outputs_correctly(op, dtype):
    values = np.random.default_rng(4).normal(scale=impls.spec(op).input_scale, size=(8 << 20) // 2 + 1013)
    result = correctness.check(impls.get(op, "custom_op"), values, dtype)
    assert result.ok, f"{dtype}: forward error {result.forward_err:.3g}, gradient {result.gradient_err:.3g} {result.detail}"
