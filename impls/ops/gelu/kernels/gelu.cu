// GELU's CUDA kernels and their launchers (gpu.h's signature), for the TensorFlow op
// (gelu.cc) and, as-is, for the standalone harness (benchmarks/research/gpu_harness.py).
#include "stratbench.cuh"

namespace stratbench {
namespace {

__device__ __forceinline__ float tanh_(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_(double v) { return tanh(v); }

constexpr double kC = 0.7978845608028654, kA = 0.044715;  // sqrt(2/pi), and the cubic's coefficient

struct Forward {  // 0.5 x (1 + tanh(c (x + a x^3)))
  template <typename C> __device__ C operator()(C v, C) const {
    const C t = tanh_(C(kC) * (v + C(kA) * v * v * v));
    return C(0.5) * v * (C(1) + t);
  }
};
struct Grad {  // dy times its derivative
  template <typename C> __device__ C operator()(C v, C d) const {
    const C c = C(kC), a = C(kA);
    const C t = tanh_(c * (v + a * v * v * v));
    return d * (C(0.5) * (C(1) + t) + C(0.5) * v * (C(1) - t * t) * c * (C(1) + C(3) * a * v * v));
  }
};

}  // namespace

int ForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream) {
  return launch_elementwise<Forward, false>(t, x, dy, y, rows, cols, stream);
}
int GradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream) {
  return launch_elementwise<Grad, true>(t, x, dy, dx, rows, cols, stream);
}

}  // namespace stratbench

STRATBENCH_GPU_ENTRY()
