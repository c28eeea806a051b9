// The interface between an op's CUDA launchers (impls/ops/<op>/kernels/*.cu) and their
// callers: the TensorFlow op (stratbench.h's GpuOp) and the standalone GPU harness
// (benchmarks/scripts/gpu_harness.py, through the C entry points STRATBENCH_GPU_ENTRY
// makes).  Plain C++: no TensorFlow, no CUDA headers.
#pragma once

#include <cstdint>

namespace stratbench {

// The arithmetic type of the C++ and the CUDA kernels alike: float for the 16-bit types, the
// type itself otherwise.
template <typename T> struct Math { using type = float; };
template <> struct Math<double> { using type = double; };

// Element types, by storage: IEEE half, bfloat16, float, double.
enum DType : int { kHalf = 0, kBFloat16 = 1, kFloat = 2, kDouble = 3 };

// A launcher: forward (dy is null) or gradient of one op over [rows, cols] (an
// elementwise op gets rows = 1, cols = n); 0 (cudaSuccess) or a cudaError_t code.
using GpuLauncher = int (*)(DType t, const void* x, const void* dy, void* out, int64_t rows, int64_t cols,
                            void* stream);
const char* GpuErrorString(int code);

}  // namespace stratbench

// C entry points stratbench_<name>(t, x, [dy,] out, rows, cols) for the harness (ctypes).
#define STRATBENCH_GPU_ENTRY(NAME, FORWARD, GRAD)                                                              \
  extern "C" int stratbench_##NAME(int t, const void* x, void* y, int64_t rows, int64_t cols) {                \
    return FORWARD(stratbench::DType(t), x, nullptr, y, rows, cols, nullptr);                                  \
  }                                                                                                            \
  extern "C" int stratbench_##NAME##_grad(int t, const void* x, const void* dy, void* dx, int64_t rows,        \
                                          int64_t cols) {                                                      \
    return GRAD(stratbench::DType(t), x, dy, dx, rows, cols, nullptr);                                         \
  }
