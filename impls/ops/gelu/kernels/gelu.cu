// GELU's CUDA kernels and their launchers (gpu.h's signature), for the TensorFlow op
// (gelu.cc) and, as-is, for the standalone harness (benchmarks/scripts/gpu_harness.py).
#include "stratbench.cuh"

namespace stratbench {
namespace {

__device__ __forceinline__ float tanh_(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_(double v) { return tanh(v); }

template <typename T, bool kGrad>
__global__ void gelu(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ out, int64_t n) {
  using C = typename Math<T>::type;
  const C c = C(0.7978845608028654), a = C(0.044715);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const C v = to_math(__ldg(x + i));
    const C t = tanh_(c * (v + a * v * v * v));
    if (kGrad) {
      const C d = to_math(__ldg(dy + i));
      out[i] = from_math<T>(d * (C(0.5) * (C(1) + t) + C(0.5) * v * (C(1) - t * t) * c * (C(1) + C(3) * a * v * v)));
    } else {
      out[i] = from_math<T>(C(0.5) * v * (C(1) + t));
    }
  }
}

template <typename T> struct LaunchForward {
  static void run(const void* x, const void*, void* y, int64_t rows, int64_t cols, cudaStream_t s) {
    const int64_t n = rows * cols;
    if (n > 0) gelu<T, false><<<elementwise_blocks(n), kThreads, 0, s>>>(static_cast<const T*>(x), nullptr, static_cast<T*>(y), n);
  }
};
template <typename T> struct LaunchGrad {
  static void run(const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, cudaStream_t s) {
    const int64_t n = rows * cols;
    if (n > 0) gelu<T, true><<<elementwise_blocks(n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n);
  }
};

}  // namespace

int GeluForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchForward>(t, x, dy, y, rows, cols, stream);
}
int GeluGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchGrad>(t, x, dy, dx, rows, cols, stream);
}

}  // namespace stratbench

STRATBENCH_GPU_ENTRY(stratbench_gelu, stratbench::GeluForwardGpu, stratbench::GeluGradGpu)
