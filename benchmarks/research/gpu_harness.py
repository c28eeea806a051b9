"""Standalone GPU harness for the compiled op's CUDA kernels (no TensorFlow needed).

    python benchmarks/research/gpu_harness.py [--sizes 1e3,1e4,...] [--dtypes float32,float16,bfloat16]
                                     [--out results/gpu/harness.csv]
    compute-sanitizer --tool memcheck python benchmarks/research/gpu_harness.py --sizes 1e3,1e5 --reps 2

It compiles every registered op's CUDA kernels (impls/ops/<op>/kernels/*.cu) -- the very
files the TensorFlow op links -- into a shared library per op with nvcc and build.py's
flags, calls them through ctypes on CuPy arrays (entry points stratbench_<name>[_grad],
impls/kernels/gpu.h),
checks every result against the op's NumPy reference with its tolerances, and times
each kernel with CUDA events.  Its limits are defined as on the CPU (stratbench/roofline.py,
timing.prepare_floor): the roofline of a case is the best time of a plain kernel with
the same arrays read and written and the same bytes (read-only: a sum; write-only: a
fill; 1:1 a copy; 2:1 an add; CuPy's own kernels), and the launch floor is an empty
kernel's.  The machine's read, write and copy bandwidth past the L2 cache are printed
first.  Needs nvcc, CuPy and an NVIDIA GPU; no TensorFlow.
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
from stratbench.matrix import ITEMSIZE, TRAFFIC  # noqa: E402  (reads, writes of x-sized tensors)

DTYPE_CODE = {"float16": 0, "bfloat16": 1, "float32": 2, "float64": 3}
AXIS_COLS = 1024  # an op along an axis runs on [n / 1024, 1024]
PAST_L2_BYTES = 1 << 30  # each array of the machine's bandwidth figures


def build(out_dir: pathlib.Path, nvcc: str, spec) -> ctypes.CDLL:
    """The op's CUDA kernels that its TF op links, compiled with build.py's nvcc flags."""
    lib = kernel_build.library_of(spec)
    path = out_dir / f"libstratbench_{lib.name}.so"
    cuda_sources = [str(p) for p in kernel_build.sources(lib.folder) if p.suffix == ".cu"]
    subprocess.run([nvcc, *kernel_build.nvcc_flags(lib.entry), "-shared", "-lineinfo", *cuda_sources,
                    "-o", str(path)], check=True)
    return ctypes.CDLL(str(path))


def entry_points(libraries: dict) -> None:
    """SystemExit naming every entry point missing from the op libraries {custom_op: CDLL}."""
    missing = [f"stratbench_{name}{suffix}" for name, dll in libraries.items() for suffix in ("", "_grad")
               if not hasattr(dll, f"stratbench_{name}{suffix}")]
    if missing:
        raise SystemExit(f"the CUDA libraries lack {', '.join(missing)}: each op's .cu must define ForwardGpu and "
                         "GradGpu and end with STRATBENCH_GPU_ENTRY() (impls/kernels/gpu.h)")


class Limits:
    """The GPU's limits, defined as the CPU's: the best time of a plain kernel with a case's
    reads, writes and bytes (its roofline), and an empty kernel's launch (the floor)."""

    def __init__(self, cp, reps: int):
        self.cp, self.reps, self.best = cp, reps, {}
        self.read = cp.ReductionKernel("T x", "T y", "x", "a + b", "y = a", "0", "stratbench_read")
        self.add = cp.ElementwiseKernel("T a, T b", "T y", "y = a + b", "stratbench_add")
        self.add_sub = cp.ElementwiseKernel("T a, T b", "T y, T z", "y = a + b; z = a - b", "stratbench_add_sub")
        self.empty = cp.RawKernel(r'extern "C" __global__ void stratbench_empty() {}', "stratbench_empty")

    def seconds(self, reads: int, writes: int, array_bytes: int) -> float:
        """Best seconds of the plain kernel for this traffic (float32 arrays of array_bytes)."""
        key = (reads, writes, array_bytes)
        if key not in self.best:
            cp = self.cp
            n = max(1, array_bytes // 4)
            a, b, y, z = (cp.ones(n, cp.float32) for _ in range(4))
            kernel = {(1, 0): lambda: self.read(a), (0, 1): lambda: y.fill(0), (1, 1): lambda: y.__setitem__(Ellipsis, a),
                      (2, 1): lambda: self.add(a, b, y), (2, 2): lambda: self.add_sub(a, b, y, z)}[(reads, writes)]
            self.best[key] = min(time_ms(cp, kernel, self.reps)) / 1e3
        return self.best[key]

    def floor_s(self) -> float:
        return float(np.median(time_ms(self.cp, lambda: self.empty((1,), (1,), ()), self.reps))) / 1e3

    def machine(self) -> dict:
        """GB/s of read-only, write-only and copy on arrays of PAST_L2_BYTES (read + written bytes)."""
        return {name: (r + w) * PAST_L2_BYTES / self.seconds(r, w, PAST_L2_BYTES) / 1e9
                for name, r, w in (("read", 1, 0), ("write", 0, 1), ("copy", 1, 1))}


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
        specs = [impls.spec(op) for op in impls.OPS if impls.spec(op).custom_op]
        libraries = {spec.custom_op: build(pathlib.Path(tmp), args.nvcc, spec) for spec in specs}
        entry_points(libraries)
        limits = Limits(cp, args.reps)
        floor_s = limits.floor_s()
        print(f"# {device}: " + ", ".join(f"{name} {gbs:.0f} GB/s" for name, gbs in limits.machine().items())
              + f" ({PAST_L2_BYTES >> 20} MiB arrays); empty kernel launch {floor_s * 1e6:.1f} us", flush=True)
        for dtype in args.dtypes.split(","):
            for n in (int(float(s)) for s in args.sizes.split(",")):
                for spec in specs:
                    dll, op, (rtol, atol) = libraries[spec.custom_op], spec.name, spec.tolerances[dtype]
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
                        reads, writes = TRAFFIC[direction]
                        array_bytes = x.size * ITEMSIZE[dtype]
                        nbytes = (reads + writes) * array_bytes
                        kernel_ms = np.median(time_ms(cp, lambda: launch(dll, kernel, dtype, shape, *inputs, out), args.reps))
                        roof_s = limits.seconds(reads, writes, array_bytes)
                        rows.append({
                            "op": op, "strategy": "custom_op", "direction": direction, "device": device,
                            "dtype": dtype, "size": x.size, "shape": "x".join(map(str, shape)),
                            "median_s": kernel_ms / 1e3, "roofline_bytes_per_s": nbytes / roof_s, "floor_s": floor_s,
                            "call_bound": metrics.is_call_bound(kernel_ms / 1e3, floor_s),
                            **metrics.throughput(x.size, nbytes, kernel_ms / 1e3, nbytes / roof_s),
                            "status": "ok" if ok else "wrong", "reason": "" if ok else f"max error {err.max():.3g}",
                            "max_abs_err": float(err.max()) if err.size else 0.0,
                            "driver": driver, "cuda_runtime": runtime,
                        })
                        r = rows[-1]
                        print(f"{op:8s} {direction:9s} {dtype:9s} {r['shape']:>12s} {kernel_ms * 1e3:10.1f} us "
                              f"{r['bytes_per_s'] / 1e9:8.1f} GB/s  roofline {r['roofline_bytes_per_s'] / 1e9:8.1f} GB/s "
                              f"({r['roofline_fraction']:.2f})  {'ok' if ok else 'WRONG ' + r['reason']}", flush=True)
    print(f"# {device}, driver {driver}, CUDA runtime {runtime}; {failures} wrong results")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
