// The stable softmax's CUDA kernels and their launchers (gpu.h's signature), for the
// TensorFlow op (softmax.cc) and, as-is, for the standalone harness
// (benchmarks/research/gpu_harness.py), so the kernels measured on a GPU are the ones the op runs.
#include "stratbench.cuh"

namespace stratbench {
namespace {

__device__ __forceinline__ float exp_(float v) { return expf(v); }  // memory-bound: the accurate exp costs nothing
__device__ __forceinline__ double exp_(double v) { return exp(v); }

// One block per row. The row is read for the max, again for the sum, and a last time to
// write y; for rows up to a few thousand elements the re-reads come from L1/L2.
template <typename T>
__global__ void softmax_forward(const T* __restrict__ x, T* __restrict__ y, int64_t cols) {
  using C = typename Math<T>::type;
  __shared__ C shared[kThreads / 32];
  const T* xr = x + blockIdx.x * cols;
  T* yr = y + blockIdx.x * cols;
  C m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) m = fmax(m, to_math(xr[j]));
  m = block_reduce(m, Max(), shared);
  C s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) s += exp_(to_math(xr[j]) - m);
  const C inv = C(1) / block_reduce(s, Sum(), shared);
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) yr[j] = from_math<T>(exp_(to_math(xr[j]) - m) * inv);
}

// dx = y * (dy - sum(dy * y)) with y recomputed from x: x and dy are read, dx written.
template <typename T>
__global__ void softmax_grad(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx, int64_t cols) {
  using C = typename Math<T>::type;
  __shared__ C shared[kThreads / 32];
  const T* xr = x + blockIdx.x * cols;
  const T* dyr = dy + blockIdx.x * cols;
  T* dxr = dx + blockIdx.x * cols;
  C m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) m = fmax(m, to_math(xr[j]));
  m = block_reduce(m, Max(), shared);
  C s = 0, u = 0;
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) {
    C e = exp_(to_math(xr[j]) - m);
    s += e;
    u += e * to_math(dyr[j]);
  }
  s = block_reduce(s, Sum(), shared);
  u = block_reduce(u, Sum(), shared);
  const C inv = C(1) / s, dot = u * inv;  // dot = sum(dy * y)
  for (int64_t j = threadIdx.x; j < cols; j += kThreads) {
    dxr[j] = from_math<T>(exp_(to_math(xr[j]) - m) * inv * (to_math(dyr[j]) - dot));
  }
}

template <typename T> struct LaunchForward {
  static void run(const void* x, const void*, void* y, int64_t rows, int64_t cols, cudaStream_t s) {
    if (rows > 0 && cols > 0) softmax_forward<T><<<unsigned(rows), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), cols);
  }
};
template <typename T> struct LaunchGrad {
  static void run(const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, cudaStream_t s) {
    if (rows > 0 && cols > 0) softmax_grad<T><<<unsigned(rows), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), cols);
  }
};

}  // namespace

int ForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchForward>(t, x, dy, y, rows, cols, stream);
}
int GradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchGrad>(t, x, dy, dx, rows, cols, stream);
}

}  // namespace stratbench

STRATBENCH_GPU_ENTRY()
