// The interface between an op's CUDA launchers (impls/ops/<op>/kernels/*.cu) and their
// callers: the TensorFlow op (stratbench.h's GpuOp) and the standalone GPU harness
// (benchmarks/research/gpu_harness.py, through the C entry points STRATBENCH_GPU_ENTRY
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

// An op's two launchers, defined by its .cu: one pair per library, hidden so that every op
// library loaded into one process binds its own.
__attribute__((visibility("hidden"))) int ForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows,
                                                     int64_t cols, void* stream);
__attribute__((visibility("hidden"))) int GradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows,
                                                  int64_t cols, void* stream);

}  // namespace stratbench

// An op's names come from its spec, not from its sources: impls/kernels/build.py compiles
// each op's library with -DSTRATBENCH_OP_ENTRY=<spec's custom_op> (stable_softmax) and
// -DSTRATBENCH_OP_TYPE=<its C++ op name> (StableSoftmax); STRATBENCH_OP_NAME is the latter
// as a string ("StableSoftmax"), the gradient op STRATBENCH_OP_NAME "Grad".
#if !defined(STRATBENCH_OP_ENTRY) || !defined(STRATBENCH_OP_TYPE)
#error "an op's kernels are compiled by impls/kernels/build.py, which defines STRATBENCH_OP_ENTRY and STRATBENCH_OP_TYPE"
#endif
#define STRATBENCH_STRING_(X) #X
#define STRATBENCH_STRING(X) STRATBENCH_STRING_(X)
#define STRATBENCH_OP_NAME STRATBENCH_STRING(STRATBENCH_OP_TYPE)
#define STRATBENCH_PASTE_(A, B) A##B
#define STRATBENCH_PASTE(A, B) STRATBENCH_PASTE_(A, B)

// C entry points stratbench_<entry>(t, x, out, rows, cols) and stratbench_<entry>_grad(t, x, dy,
// dx, rows, cols) for the harness (ctypes), calling the op's launchers; written once in each .cu.
#define STRATBENCH_GPU_ENTRY()                                                                                  \
  extern "C" int STRATBENCH_PASTE(stratbench_, STRATBENCH_OP_ENTRY)(int t, const void* x, void* y, int64_t rows, \
                                                                   int64_t cols) {                             \
    return stratbench::ForwardGpu(stratbench::DType(t), x, nullptr, y, rows, cols, nullptr);                   \
  }                                                                                                            \
  extern "C" int STRATBENCH_PASTE(STRATBENCH_PASTE(stratbench_, STRATBENCH_OP_ENTRY), _grad)(                  \
      int t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols) {                            \
    return stratbench::GradGpu(stratbench::DType(t), x, dy, dx, rows, cols, nullptr);                          \
  }
