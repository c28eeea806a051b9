"""Standalone GPU harness for the compiled op's CUDA kernels (no TensorFlow needed).

    python benchmarks/scripts/gpu_harness.py [--sizes 1e3,1e4,...] [--dtypes float32,float16,bfloat16]
                                     [--out results/gpu/harness.csv]
    compute-sanitizer --tool memcheck python benchmarks/scripts/gpu_harness.py --sizes 1e3,1e5 --reps 2

It compiles every registered op's CUDA kernels (impls/ops/<op>/kernels/*.cu) -- the very
files the TensorFlow op links -- into a shared library with nvcc, calls them through
ctypes on CuPy arrays (entry points stratbench_<name>[_grad], impls/kernels/gpu.h),
checks every result against the op's NumPy reference with its tolerances, and times
each kernel with CUDA events next to a device-to-device copy of the same bytes (the
roofline).  Needs nvcc, CuPy and an NVIDIA GPU; no TensorFlow.
"""

from __future__ import annotations

import argparse
import ctypes
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import impls  # noqa: E402  (the registry and references are NumPy only: no TensorFlow on the GPU machine)
from impls.kernels import build as kernel_build  # noqa: E402
from stratbench import metrics  # noqa: E402

DTYPE_CODE = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
TENSORS_MOVED = {"forward": 2, "backward": 3}  # as stratbench/matrix.py: x->y; x, dy->dx
AXIS_COLS = 1024  # an op along an axis runs on [n / 1024, 1024]


def build(out_dir: pathlib.Path, nvcc: str) -> ctypes.CDLL:
    lib = out_dir / "libstratbench_gpu.so"
    cuda_sources = [str(p) for p in kernel_build.sources() if p.suffix == ".cu"]
    subprocess.run([nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", "-lineinfo",
                    "-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90",
                    f"-I{kernel_build.HERE}", *cuda_sources, "-o", str(lib)], check=True)
    return ctypes.CDLL(str(lib))


def to_device(cp, values: np.ndarray, dtype: str):
    """CuPy array holding `values` rounded to dtype (bfloat16 as raw uint16 bits)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return cp.asarray(values.astype(ml_dtypes.bfloat16).view(np.uint16))
    return cp.asarray(values.astype(dtype))


def to_f64(cp, array, dtype: str) -> np.ndarray:
    host = cp.asnumpy(array)
    if dtype == "bfloat16":
        import ml_dtypes

        host = host.view(ml_dtypes.bfloat16)
    return host.astype(np.float64)


def launch(dll, kernel: str, dtype: str, shape, *arrays):
    """stratbench_<kernel>(dtype, arrays..., rows, cols); an elementwise op is [1, n]."""
    ptrs = [ctypes.c_void_p(a.data.ptr) for a in arrays]
    rows, cols = shape if len(shape) == 2 else (1, shape[0])
    entry = getattr(dll, f"stratbench_{kernel}")
    entry.restype = ctypes.c_int
    status = entry(DTYPE_CODE[dtype], *ptrs, ctypes.c_int64(rows), ctypes.c_int64(cols))
    if status:
        raise RuntimeError(f"{kernel} {dtype} {shape}: CUDA error {status}")


def time_ms(cp, fn, reps: int) -> list[float]:
    fn()  # warm-up
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6,1e7,1e8", help="element counts")
    parser.add_argument("--dtypes", default="float32,float16,bfloat16")
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions per case (median reported)")
    parser.add_argument("--nvcc", default="nvcc")
    parser.add_argument("--out", type=pathlib.Path, help="CSV of the results")
    args = parser.parse_args(argv)

    import cupy as cp
    import pandas as pd

    props = cp.cuda.runtime.getDeviceProperties(0)
    device = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    driver = cp.cuda.runtime.driverGetVersion()
    runtime = cp.cuda.runtime.runtimeGetVersion()
    rng = np.random.default_rng(0)
    rows, failures = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        dll = build(pathlib.Path(tmp), args.nvcc)
        specs = [impls.spec(op) for op in impls.OPS if impls.spec(op).custom_op and hasattr(dll, f"stratbench_{impls.spec(op).custom_op}")]
        for dtype in args.dtypes.split(","):
            for n in (int(float(s)) for s in args.sizes.split(",")):
                for spec in specs:
                    op, rtol, atol = spec.name, *spec.tolerances[dtype]
                    shape = (max(1, n // AXIS_COLS), AXIS_COLS) if spec.takes_axis else (n,)
                    x_host = rng.normal(size=shape) * spec.input_scale
                    dy_host = rng.normal(size=shape)
                    x, dy = to_device(cp, x_host, dtype), to_device(cp, dy_host, dtype)
                    xr, dyr = to_f64(cp, x, dtype), to_f64(cp, dy, dtype)
                    out = cp.empty_like(x)
                    want_y, want_dx = spec.expected(xr, dyr)
                    for direction, kernel, inputs, want in (
                        ("forward", spec.custom_op, (x,), want_y),
                        ("backward", f"{spec.custom_op}_grad", (x, dy), want_dx),
                    ):
                        launch(dll, kernel, dtype, shape, *inputs, out)
                        got = to_f64(cp, out, dtype)
                        err = np.abs(got - want)
                        ok = bool(np.all(err <= atol + rtol * np.abs(want)))
                        failures += not ok
                        nbytes = TENSORS_MOVED[direction] * x.size * ITEMSIZE[dtype]
                        src, dst = cp.empty(nbytes // 2, cp.uint8), cp.empty(nbytes // 2, cp.uint8)
                        kernel_ms = np.median(time_ms(cp, lambda: launch(dll, kernel, dtype, shape, *inputs, out), args.reps))
                        copy_ms = np.median(time_ms(cp, lambda: dst.__setitem__(Ellipsis, src), args.reps))
                        rows.append({
                            "op": op, "strategy": "custom_op", "direction": direction, "device": device,
                            "dtype": dtype, "size": x.size, "shape": "x".join(map(str, shape)),
                            "median_s": kernel_ms / 1e3, "roofline_bytes_per_s": nbytes / (copy_ms / 1e3),
                            **metrics.throughput(x.size, nbytes, kernel_ms / 1e3, nbytes / (copy_ms / 1e3)),
                            "status": "ok" if ok else "wrong", "reason": "" if ok else f"max error {err.max():.3g}",
                            "max_abs_err": float(err.max()) if err.size else 0.0,
                            "driver": driver, "cuda_runtime": runtime,
                        })
                        r = rows[-1]
                        print(f"{op:8s} {direction:9s} {dtype:9s} {r['shape']:>12s} {kernel_ms * 1e3:10.1f} us "
                              f"{r['bytes_per_s'] / 1e9:8.1f} GB/s  copy {r['roofline_bytes_per_s'] / 1e9:8.1f} GB/s "
                              f"({r['roofline_fraction']:.2f})  {'ok' if ok else 'WRONG ' + r['reason']}", flush=True)
    print(f"# {device}, driver {driver}, CUDA runtime {runtime}; {failures} wrong results")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
