// What every op's C++ kernels share (impls/ops/<op>/kernels/*.cc): TF includes, the
// dtypes, float arithmetic for 16-bit types, sharding over TF's intra-op pool, the
// [rows, cols] view of an op along the last axis, and the glue that registers an op's
// CUDA launchers (its kernels/*.cu) as its GPU kernels when built with STRATBENCH_CUDA.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "gpu.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

#ifdef STRATBENCH_CUDA
#include "xla/stream_executor/stream.h"
#endif
#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace stratbench {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::register_kernel::Name;
using tensorflow::shape_inference::InferenceContext;

#define STRATBENCH_TYPES "T: {half, bfloat16, float, double}"

inline void ParallelFor(OpKernelContext* ctx, int64_t total, int64_t cost_per_unit,
                        const std::function<void(int64_t, int64_t)>& work) {
  const auto& pool = *ctx->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(pool.num_threads, pool.workers, total, cost_per_unit, work);
}

constexpr int64_t kElementwiseCost = 8;  // cycles per element, for TF's sharder

// The CPU's private (level 2) cache per core in bytes, as glibc reads it from CPUID.  Not
// the last-level cache: on a VM that is the host socket's (480 MiB reported on the 2-core
// Intel VM), shared with other guests, and a 64 MiB copy there ran 37% faster streamed.
inline size_t PrivateCacheBytes() {
  static const size_t bytes = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? static_cast<size_t>(l2) : size_t{1} << 20;  // 1 MiB where the system does not say
  }();
  return bytes;
}

// An op whose data (`footprint_bytes`: every input and output) does not fit its threads'
// private caches writes its output with streaming (non-temporal) stores: a plain store
// first reads the line it overwrites from L3 or DRAM (a third more traffic than a copy).
// Only where TF's allocator caches memory (BFC, oneDNN's: it keeps statistics): TF's plain
// allocator (oneDNN off) takes big tensors fresh from the OS, whose first touch zeroes each
// page into the cache, where a streaming store must evict it again (spiky 16M forward, oneDNN
// off: 26 ms streamed, 19 ms with ordinary stores).
inline bool StreamOutput(OpKernelContext* ctx, size_t footprint_bytes) {
  const int threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  if (footprint_bytes <= PrivateCacheBytes() * static_cast<size_t>(std::max(1, threads))) return false;
  return ctx->get_allocator(tensorflow::AllocatorAttributes())->GetStats().has_value();
}

// Streams one 64-byte line from `src` (any alignment) to 64-byte aligned `dst`, in the
// widest stores the build has.
inline void StreamLine(char* dst, const char* src) {
#if defined(__AVX512F__)
  _mm512_stream_si512(reinterpret_cast<__m512i*>(dst), _mm512_loadu_si512(src));
#elif defined(__AVX__)
  for (int k = 0; k < 64; k += 32)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + k), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k)));
#elif defined(__SSE2__)
  for (int k = 0; k < 64; k += 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k)));
#else
  std::memcpy(dst, src, 64);
#endif
}

// Copies n bytes from cache to memory with streaming stores (plain copies for the ends
// outside whole 64-byte lines).
inline void StreamBytes(void* dst, const void* src, size_t n) {
  auto* d = static_cast<char*>(dst);
  auto* s = static_cast<const char*>(src);
  const size_t head = std::min(n, (64 - reinterpret_cast<uintptr_t>(d) % 64) % 64);
  std::memcpy(d, s, head);
  d += head, s += head, n -= head;
  for (; n >= 64; n -= 64, d += 64, s += 64) StreamLine(d, s);
  std::memcpy(d, s, n);
}

// What an elementwise kernel computes before streaming it out: two cache lines.  Blocks
// this small keep reads and writes in flight together; a 4 KiB block computed and then
// streamed ran no faster than ordinary stores, and 64-byte blocks at a third of the speed
// (spiky forward, 64 MB, 2 threads on the Intel VM).
constexpr size_t kStreamBlockBytes = 128;

// How far ahead of its block a shard asks for its inputs, into L1 (prefetcht0).  The
// hardware prefetcher alone falls behind once streaming stores share the core with an
// op's arithmetic: gelu's forward, 64 MB on 2 threads of the Intel VM, ran 1.25x faster
// with it (2 and 8 KiB as fast as 4; prefetchnta 1.5x slower than none), and into L1
// 1.04-1.09x faster than into L2 (prefetcht1), its gradient 1.07x; a copy alike.
constexpr size_t kPrefetchBytes = 4096;

template <typename T>
inline void PrefetchBlock(const T* p) {
  for (size_t k = 0; k < kStreamBlockBytes; k += 64)
    __builtin_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + k, 0, 3);
}

// Streaming stores are weakly ordered: fence them before another thread reads the output.
inline void StreamFence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// A last-axis op sees its input as [rows, cols]; an elementwise one as [1, n].
struct RowsCols {
  int64_t rows, cols;
  RowsCols(int64_t r, int64_t c) : rows(r), cols(c) {}
  explicit RowsCols(const Tensor& x)
      : rows(x.dim_size(x.dims() - 1) == 0 ? 0 : x.NumElements() / x.dim_size(x.dims() - 1)),
        cols(x.dim_size(x.dims() - 1)) {}
};

// A gradient op's check that dy has x's shape.
inline absl::Status SameShape(const std::string& op, const Tensor& x, const Tensor& dy) {
  if (x.shape() == dy.shape()) return absl::OkStatus();
  return absl::InvalidArgumentError(op + ": x and dy must have the same shape, got " + x.shape().DebugString() +
                                    " and " + dy.shape().DebugString());
}

// An elementwise op's forward (kGrad false: out = f(x), dy null) or gradient (out from x
// and dy) on the CPU, sharded over TF's pool: Range(x, dy, out, begin, end) computes
// [begin, end) at kCost cycles per element.  Past the private caches (StreamOutput) each
// shard computes a block at a time (kStreamBlockBytes), its inputs prefetched ahead, and
// streams it out.
template <typename T, bool kGrad, void (*Range)(const T*, const T*, T*, int64_t, int64_t), int64_t kCost>
class ElementwiseCpu : public OpKernel {
 public:
  explicit ElementwiseCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const T* dy = nullptr;
    if (kGrad) {
      OP_REQUIRES_OK(ctx, SameShape(name(), x, ctx->input(1)));
      dy = ctx->input(1).flat<T>().data();
    }
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &out));
    const T* xp = x.flat<T>().data();
    T* op = out->flat<T>().data();
    if (!StreamOutput(ctx, x.TotalBytes() * (kGrad ? 3 : 2))) {
      ParallelFor(ctx, x.NumElements(), kCost, [&](int64_t b, int64_t e) { Range(xp, dy, op, b, e); });
      return;
    }
    ParallelFor(ctx, x.NumElements(), kCost, [&](int64_t b, int64_t e) {
      // ordinary stores up to the first 64-byte boundary of the output, blocks, the rest
      const int64_t head = (64 - reinterpret_cast<uintptr_t>(op + b) % 64) % 64 / sizeof(T);
      int64_t i = std::min(e, b + head);
      Range(xp, dy, op, b, i);
      constexpr int64_t kBlock = kStreamBlockBytes / sizeof(T);
      alignas(64) T block[kBlock];
      for (; i + kBlock <= e; i += kBlock) {
        PrefetchBlock(xp + i);
        if (kGrad) PrefetchBlock(dy + i);
        Range(xp + i, kGrad ? dy + i : nullptr, block, 0, kBlock);
        for (size_t k = 0; k < kStreamBlockBytes; k += 64)
          StreamLine(reinterpret_cast<char*>(op + i) + k, reinterpret_cast<const char*>(block) + k);
      }
      Range(xp, dy, op, i, e);
      StreamFence();
    });
  }
};

// The gradient op's shape: x's, merged with dy's.
inline absl::Status GradShape(InferenceContext* c) {
  tensorflow::shape_inference::ShapeHandle out;
  TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &out));
  c->set_output(0, out);
  return absl::OkStatus();
}

#ifdef STRATBENCH_CUDA
template <typename T> constexpr DType kDType = kFloat;
template <> constexpr DType kDType<Eigen::half> = kHalf;
template <> constexpr DType kDType<Eigen::bfloat16> = kBFloat16;
template <> constexpr DType kDType<double> = kDouble;

// An op's forward (inputs x) or gradient (inputs x, dy) on the GPU: its launcher from
// gpu.h's signatures, on the op's stream.  kAxis: along the last axis (rank >= 1).
template <typename T, bool kGrad, bool kAxis, GpuLauncher Launch>
class GpuOp : public OpKernel {
 public:
  explicit GpuOp(OpKernelConstruction* c) : OpKernel(c) {
    if (kAxis && c->HasAttr("axis")) OP_REQUIRES_OK(c, c->GetAttr("axis", &axis_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    if (kGrad) OP_REQUIRES_OK(ctx, SameShape(name(), x, ctx->input(1)));
    if (kAxis) {
      OP_REQUIRES(ctx, x.dims() >= 1, absl::InvalidArgumentError(name() + ": rank must be >= 1"));
      OP_REQUIRES(ctx, axis_ == -1 || axis_ == x.dims() - 1,
                  absl::UnimplementedError(name() + ": the GPU kernel runs along the last axis only, got axis " +
                                           std::to_string(axis_) + " of rank " + std::to_string(x.dims()) +
                                           "; move that axis last (tf.transpose) or run on the CPU"));
    }
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &out));
    const auto [rows, cols] = kAxis ? RowsCols(x) : RowsCols(1, x.NumElements());
    void* stream = ctx->op_device_context()->stream()->platform_specific_handle().stream;
    const int code = Launch(kDType<T>, x.data(), kGrad ? ctx->input(1).data() : nullptr, out->data(), rows, cols,
                            stream);
    OP_REQUIRES(ctx, code == 0,
                absl::InternalError(name() + ": CUDA kernel launch: " + GpuErrorString(code)));
  }

 private:
  int axis_ = -1;
};

// Registers the op (STRATBENCH_OP_NAME, gpu.h) and its gradient op for DEVICE_GPU with the op's
// launchers ForwardGpu and GradGpu (its .cu); AXIS: the op takes an `axis` attribute.
#define STRATBENCH_REGISTER_GPU_TYPE(AXIS, T)                                                                  \
  REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME).Device(tensorflow::DEVICE_GPU).TypeConstraint<T>("T"),    \
                          ::stratbench::GpuOp<T, false, AXIS, ::stratbench::ForwardGpu>);                     \
  REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Grad").Device(tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), \
                          ::stratbench::GpuOp<T, true, AXIS, ::stratbench::GradGpu>);
#define STRATBENCH_REGISTER_GPU(AXIS)                    \
  STRATBENCH_REGISTER_GPU_TYPE(AXIS, Eigen::half)        \
  STRATBENCH_REGISTER_GPU_TYPE(AXIS, Eigen::bfloat16)    \
  STRATBENCH_REGISTER_GPU_TYPE(AXIS, float)              \
  STRATBENCH_REGISTER_GPU_TYPE(AXIS, double)
#else
#define STRATBENCH_REGISTER_GPU(AXIS)
#endif  // STRATBENCH_CUDA

// Registers KERNEL<T> as the op's CPU kernel and GRAD_KERNEL<T> as its gradient op's, for the four types.
#define STRATBENCH_REGISTER_CPU_TYPE(KERNEL, GRAD_KERNEL, T)                                                         \
  REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME).Device(::stratbench::DEVICE_CPU).TypeConstraint<T>("T"),         \
                          KERNEL<T>);                                                                             \
  REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Grad").Device(::stratbench::DEVICE_CPU).TypeConstraint<T>("T"),  \
                          GRAD_KERNEL<T>);
#define STRATBENCH_REGISTER_CPU(KERNEL, GRAD_KERNEL)                   \
  STRATBENCH_REGISTER_CPU_TYPE(KERNEL, GRAD_KERNEL, Eigen::half)       \
  STRATBENCH_REGISTER_CPU_TYPE(KERNEL, GRAD_KERNEL, Eigen::bfloat16)   \
  STRATBENCH_REGISTER_CPU_TYPE(KERNEL, GRAD_KERNEL, float)             \
  STRATBENCH_REGISTER_CPU_TYPE(KERNEL, GRAD_KERNEL, double)

}  // namespace stratbench
