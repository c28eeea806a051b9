// CUDA kernels for spiky and the stable softmax, with their launchers (gpu_kernels.h).
// Compiled by nvcc into the TensorFlow op, and compiled as-is by the standalone harness
// (benchmarks/gpu/harness.py) so the kernels measured on a GPU are the ones the op runs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "gpu_kernels.h"

namespace stratbench {
namespace {

// Arithmetic in float for the 16-bit types, in the type itself otherwise.
template <typename T> struct Math { using type = float; };
template <> struct Math<double> { using type = double; };

__device__ __forceinline__ float to_math(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_math(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_math(float v) { return v; }
__device__ __forceinline__ double to_math(double v) { return v; }
template <typename T> __device__ __forceinline__ T from_math(typename Math<T>::type v);
template <> __device__ __forceinline__ __half from_math<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_math<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ float from_math<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_math<double>(double v) { return v; }

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

constexpr int kThreads = 256;

template <typename C, typename Op>
__device__ C block_reduce(C v, Op op, C* shared) {
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // `shared` may still be read by a previous reduction
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = shared[0];
  for (int w = 1; w < kThreads / 32; ++w) v = op(v, shared[w]);
  return v;
}

struct Max { template <typename C> __device__ C operator()(C a, C b) const { return a > b ? a : b; } };
struct Sum { template <typename C> __device__ C operator()(C a, C b) const { return a + b; } };

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

int elementwise_blocks(int64_t n) {
  static int sms = [] { int dev = 0, v = 0; cudaGetDevice(&dev); cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev); return v > 0 ? v : 80; }();
  int64_t wanted = (n + kThreads - 1) / kThreads;
  int64_t most = int64_t(sms) * 32;  // enough resident blocks to hide latency; the loop strides the rest
  return int(wanted < most ? (wanted > 0 ? wanted : 1) : most);
}

template <template <typename> class Launch, typename... Args>
int dispatch(DType t, Args... args) {
  switch (t) {
    case kHalf: Launch<__half>::run(args...); break;
    case kBFloat16: Launch<__nv_bfloat16>::run(args...); break;
    case kFloat: Launch<float>::run(args...); break;
    case kDouble: Launch<double>::run(args...); break;
    default: return int(cudaErrorInvalidValue);
  }
  return int(cudaGetLastError());
}

template <typename T> struct LaunchSpikyForward {
  static void run(const void* x, void* y, int64_t n, void* s) {
    if (n > 0) spiky_forward<T><<<elementwise_blocks(n), kThreads, 0, cudaStream_t(s)>>>(static_cast<const T*>(x), static_cast<T*>(y), n);
  }
};
template <typename T> struct LaunchSpikyGrad {
  static void run(const void* x, const void* dy, void* dx, int64_t n, void* s) {
    if (n > 0) spiky_grad<T><<<elementwise_blocks(n), kThreads, 0, cudaStream_t(s)>>>(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), n);
  }
};
template <typename T> struct LaunchSoftmaxForward {
  static void run(const void* x, void* y, int64_t rows, int64_t cols, void* s) {
    if (rows > 0 && cols > 0) softmax_forward<T><<<unsigned(rows), kThreads, 0, cudaStream_t(s)>>>(static_cast<const T*>(x), static_cast<T*>(y), cols);
  }
};
template <typename T> struct LaunchSoftmaxGrad {
  static void run(const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* s) {
    if (rows > 0 && cols > 0) softmax_grad<T><<<unsigned(rows), kThreads, 0, cudaStream_t(s)>>>(static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx), cols);
  }
};

}  // namespace

int SpikyForwardGpu(DType t, const void* x, void* y, int64_t n, void* stream) {
  return dispatch<LaunchSpikyForward>(t, x, y, n, stream);
}
int SpikyGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t n, void* stream) {
  return dispatch<LaunchSpikyGrad>(t, x, dy, dx, n, stream);
}
int SoftmaxForwardGpu(DType t, const void* x, void* y, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchSoftmaxForward>(t, x, y, rows, cols, stream);
}
int SoftmaxGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream) {
  return dispatch<LaunchSoftmaxGrad>(t, x, dy, dx, rows, cols, stream);
}
const char* GpuErrorString(int code) { return cudaGetErrorString(cudaError_t(code)); }

}  // namespace stratbench

// Entry points with C linkage, for the standalone harness (ctypes); the op uses the C++ ones.
extern "C" {
int stratbench_spiky_forward(int t, const void* x, void* y, int64_t n) {
  return stratbench::SpikyForwardGpu(stratbench::DType(t), x, y, n, nullptr);
}
int stratbench_spiky_grad(int t, const void* x, const void* dy, void* dx, int64_t n) {
  return stratbench::SpikyGradGpu(stratbench::DType(t), x, dy, dx, n, nullptr);
}
int stratbench_softmax_forward(int t, const void* x, void* y, int64_t rows, int64_t cols) {
  return stratbench::SoftmaxForwardGpu(stratbench::DType(t), x, y, rows, cols, nullptr);
}
int stratbench_softmax_grad(int t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols) {
  return stratbench::SoftmaxGradGpu(stratbench::DType(t), x, dy, dx, rows, cols, nullptr);
}
}
