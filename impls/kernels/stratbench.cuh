// What every op's CUDA kernels share (impls/ops/<op>/kernels/*.cu): float arithmetic for
// the 16-bit types, block reductions, grid sizes, the dtype dispatch of a launcher, and the
// one launcher of an elementwise op (launch_elementwise).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "gpu.h"

namespace stratbench {

// Arithmetic in Math<T> (gpu.h): float for the 16-bit types, the type itself otherwise.
__device__ __forceinline__ float to_math(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_math(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_math(float v) { return v; }
__device__ __forceinline__ double to_math(double v) { return v; }
template <typename T> __device__ __forceinline__ T from_math(typename Math<T>::type v);
template <> __device__ __forceinline__ __half from_math<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_math<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ float from_math<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_math<double>(double v) { return v; }

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

// Blocks for a grid-stride elementwise loop over n elements.
inline int elementwise_blocks(int64_t n) {
  static int sms = [] { int dev = 0, v = 0; cudaGetDevice(&dev); cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev); return v > 0 ? v : 80; }();
  int64_t wanted = (n + kThreads - 1) / kThreads;
  int64_t most = int64_t(sms) * 32;  // enough resident blocks to hide latency; the loop strides the rest
  return int(wanted < most ? (wanted > 0 ? wanted : 1) : most);
}

// Launch<T>::run(x, dy, out, rows, cols, stream) for the runtime dtype t.
template <template <typename> class Launch>
int dispatch(DType t, const void* x, const void* dy, void* out, int64_t rows, int64_t cols, void* stream) {
  switch (t) {
    case kHalf: Launch<__half>::run(x, dy, out, rows, cols, cudaStream_t(stream)); break;
    case kBFloat16: Launch<__nv_bfloat16>::run(x, dy, out, rows, cols, cudaStream_t(stream)); break;
    case kFloat: Launch<float>::run(x, dy, out, rows, cols, cudaStream_t(stream)); break;
    case kDouble: Launch<double>::run(x, dy, out, rows, cols, cudaStream_t(stream)); break;
    default: return int(cudaErrorInvalidValue);
  }
  return int(cudaGetLastError());
}

// An elementwise op's kernel: out = F()(x, dy) for each element, in Math<T> (dy is 0 in a
// forward, kGrad false), in a grid-stride loop.
template <typename T, typename F, bool kGrad>
__global__ void elementwise(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ out, int64_t n) {
  using C = typename Math<T>::type;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = from_math<T>(F()(to_math(__ldg(x + i)), kGrad ? to_math(__ldg(dy + i)) : C(0)));
  }
}

template <typename F, bool kGrad> struct Elementwise {
  template <typename T> struct Launch {
    static void run(const void* x, const void* dy, void* out, int64_t rows, int64_t cols, cudaStream_t s) {
      const int64_t n = rows * cols;
      if (n > 0) {
        elementwise<T, F, kGrad><<<elementwise_blocks(n), kThreads, 0, s>>>(
            static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(out), n);
      }
    }
  };
};

// The launcher (gpu.h's GpuLauncher) of an elementwise op's forward (kGrad false) or gradient:
// F is a functor, template <typename C> __device__ C operator()(C x, C dy) const.
template <typename F, bool kGrad>
int launch_elementwise(DType t, const void* x, const void* dy, void* out, int64_t rows, int64_t cols, void* stream) {
  return dispatch<Elementwise<F, kGrad>::template Launch>(t, x, dy, out, rows, cols, stream);
}

}  // namespace stratbench
