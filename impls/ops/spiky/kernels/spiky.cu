// spiky's CUDA kernels and their launchers (gpu.h's signature), for the TensorFlow op
// (spiky.cc) and, as-is, for the standalone harness (benchmarks/scripts/gpu_harness.py),
// so the kernels measured on a GPU are the ones the op runs.
#include "stratbench.cuh"

namespace stratbench {
namespace {

// r = x - floor(x) is floor-mod by 1; NaN (from NaN or +-inf) fails r <= 0.5 and gives 0.
template <typename C> __device__ __forceinline__ bool spiky_keep(C x, C* r) {
  *r = x - floor(x);
  return *r <= C(0.5);
}

template <typename T>
__global__ void spiky_forward(const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  using C = typename Math<T>::type;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    C r;
    bool keep = spiky_keep(to_math(__ldg(x + i)), &r);
    y[i] = from_math<T>(keep ? r : C(0));
  }
}

template <typename T>
__global__ void spiky_grad(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, int64_t n) {
  using C = typename Math<T>::type;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    C r;
    T d = __ldg(dy + i);
    dx[i] = spiky_keep(to_math(__ldg(x + i)), &r) ? d : from_math<T>(C(0));
  }
}

template <typename T> struct LaunchForward {
  static void run(const void* x, const void*, void* y, int64_t rows, int64_t cols, cudaStream_t s) {
    const int64_t n = rows * cols;
    if (n > 0) spiky_forward<T><<<elementwise_blocks(n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), n);
  }
};
template <typename T> struct LaunchGrad {
  static void run(const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, cudaStream_t s) {
    const int64_t n = rows * cols;
    if (n > 0) spiky_grad<T><<<elementwise_blocks(n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n);
  }
};

}  // namespace

int SpikyForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchForward>(t, x, dy, y, rows, cols, stream);
}
int SpikyGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchGrad>(t, x, dy, dx, rows, cols, stream);
}

}  // namespace stratbench

STRATBENCH_GPU_ENTRY(spiky, stratbench::SpikyForwardGpu, stratbench::SpikyGradGpu)
