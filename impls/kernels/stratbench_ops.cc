// TensorFlow custom ops for stratbench: Spiky, SpikyGrad, StableSoftmax, StableSoftmaxGrad.
// CPU kernels here (sharded over TF's intra-op pool, vectorised by GCC and Eigen); CUDA
// kernels in gpu_kernels.cu, registered for DEVICE_GPU when built with STRATBENCH_CUDA.
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

#ifdef STRATBENCH_CUDA
#include "gpu_kernels.h"
#include "xla/stream_executor/stream.h"
#endif

namespace stratbench {

using tensorflow::DEVICE_CPU;
using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::register_kernel::Name;
using tensorflow::Tensor;
using tensorflow::shape_inference::InferenceContext;

#define STRATBENCH_TYPES "T: {half, bfloat16, float, double}"

REGISTER_OP("Spiky")
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc("spiky(x) = r if r <= 0.5 else 0, r = x - floor(x); NaN and +-inf give 0.");

REGISTER_OP("SpikyGrad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn([](InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle out;
      TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &out));
      c->set_output(0, out);
      return absl::OkStatus();
    })
    .Doc("dx = dy where spiky keeps x (r <= 0.5), else 0; the mask is recomputed from x.");

REGISTER_OP("StableSoftmax")
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn([](InferenceContext* c) {
      return tensorflow::shape_inference::UnchangedShapeWithRankAtLeast(c, 1);
    })
    .Doc("exp(x - max) / sum(exp(x - max)) along the last axis.");

REGISTER_OP("StableSoftmaxGrad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn([](InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle out;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &out));
      TF_RETURN_IF_ERROR(c->Merge(out, c->input(1), &out));
      c->set_output(0, out);
      return absl::OkStatus();
    })
    .Doc("dx = y * (dy - sum(dy * y)) along the last axis, y recomputed from x (max held constant).");

namespace {

// Arithmetic type: float for the 16-bit types, the type itself otherwise.
template <typename T> struct Math { using type = float; };
template <> struct Math<double> { using type = double; };

void ParallelFor(OpKernelContext* ctx, int64_t total, int64_t cost_per_unit,
                 const std::function<void(int64_t, int64_t)>& work) {
  const auto& pool = *ctx->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(pool.num_threads, pool.workers, total, cost_per_unit, work);
}

// Floor-mod by 1 as x - floor(x) (vectorised by GCC with -fno-trapping-math); NaN,
// from NaN or +-inf, fails r <= 0.5 and gives 0.  Loads happen unconditionally and the
// result is a select, or GCC 12 does not vectorise the loop.
template <typename T>
void SpikyForwardRange(const T* x, T* y, int64_t begin, int64_t end) {
  using C = typename Math<T>::type;
  for (int64_t i = begin; i < end; ++i) {
    const C v = static_cast<C>(x[i]);
    const C r = v - std::floor(v);
    y[i] = static_cast<T>(r <= C(0.5) ? r : C(0));
  }
}

template <typename T>
void SpikyGradRange(const T* x, const T* dy, T* dx, int64_t begin, int64_t end) {
  using C = typename Math<T>::type;
  for (int64_t i = begin; i < end; ++i) {
    const C v = static_cast<C>(x[i]);
    const C d = static_cast<C>(dy[i]);
    const C r = v - std::floor(v);
    dx[i] = static_cast<T>(r <= C(0.5) ? d : C(0));
  }
}

// A last-axis op sees its input as [rows, cols].
struct RowsCols {
  int64_t rows, cols;
  RowsCols(int64_t r, int64_t c) : rows(r), cols(c) {}
  explicit RowsCols(const Tensor& x)
      : rows(x.dim_size(x.dims() - 1) == 0 ? 0 : x.NumElements() / x.dim_size(x.dims() - 1)),
        cols(x.dim_size(x.dims() - 1)) {}
};

constexpr int64_t kElementwiseCost = 8;  // cycles per element, for TF's sharder

template <typename T>
class SpikyCpu : public OpKernel {
 public:
  explicit SpikyCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const T* xp = x.flat<T>().data();
    T* yp = y->flat<T>().data();
    ParallelFor(ctx, x.NumElements(), kElementwiseCost,
                [&](int64_t b, int64_t e) { SpikyForwardRange(xp, yp, b, e); });
  }
};

template <typename T>
class SpikyGradCpu : public OpKernel {
 public:
  explicit SpikyGradCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& dy = ctx->input(1);
    OP_REQUIRES(ctx, x.shape() == dy.shape(),
                absl::InvalidArgumentError("SpikyGrad: x and dy must have the same shape, got " +
                                           x.shape().DebugString() + " and " + dy.shape().DebugString()));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    const T* xp = x.flat<T>().data();
    const T* dyp = dy.flat<T>().data();
    T* dxp = dx->flat<T>().data();
    ParallelFor(ctx, x.NumElements(), kElementwiseCost,
                [&](int64_t b, int64_t e) { SpikyGradRange(xp, dyp, dxp, b, e); });
  }
};

// Softmax rows, a row per unit of work.  Each row is read from memory once: its max,
// exp and sum passes run on data still in L1/L2.  Eigen's array exp is vectorised.
template <typename C>
using Row = Eigen::Map<Eigen::Array<C, Eigen::Dynamic, 1>>;
template <typename C>
using ConstRow = Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>>;

// Rows of T seen as rows of the arithmetic type C: the same memory when T == C, else a
// converted copy in a per-shard buffer.
template <typename T, typename C = typename Math<T>::type>
struct RowView {
  // `slots` rows of scratch, needed only when T must be converted to C.
  RowView(int64_t cols, int slots) : buffer(std::is_same_v<T, C> ? 0 : slots * cols) {}
  std::vector<C> buffer;
  const C* in(const T* row, int64_t cols, int slot) {
    if constexpr (std::is_same_v<T, C>) {
      return row;
    } else {
      C* b = buffer.data() + slot * cols;
      for (int64_t j = 0; j < cols; ++j) b[j] = static_cast<C>(row[j]);
      return b;
    }
  }
  C* out(T* row, int64_t cols, int slot) {
    if constexpr (std::is_same_v<T, C>) {
      return row;
    } else {
      return buffer.data() + slot * cols;
    }
  }
  void store(const C* from, T* row, int64_t cols) {
    if constexpr (!std::is_same_v<T, C>) {
      for (int64_t j = 0; j < cols; ++j) row[j] = static_cast<T>(from[j]);
    }
  }
};

template <typename T>
class StableSoftmaxCpu : public OpKernel {
 public:
  explicit StableSoftmaxCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    using C = typename Math<T>::type;
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() >= 1, absl::InvalidArgumentError("StableSoftmax: x must have rank >= 1"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const auto [rows, cols] = RowsCols(x);
    const T* xp = x.flat<T>().data();
    T* yp = y->flat<T>().data();
    ParallelFor(ctx, rows, cols * 24, [&](int64_t begin, int64_t end) {
      RowView<T> view(cols, 2);
      for (int64_t r = begin; r < end; ++r) {
        ConstRow<C> xr(view.in(xp + r * cols, cols, 0), cols);
        Row<C> yr(view.out(yp + r * cols, cols, 1), cols);
        const C m = xr.maxCoeff();
        yr = (xr - m).exp();
        yr *= C(1) / yr.sum();
        view.store(yr.data(), yp + r * cols, cols);
      }
    });
  }
};

template <typename T>
class StableSoftmaxGradCpu : public OpKernel {
 public:
  explicit StableSoftmaxGradCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    using C = typename Math<T>::type;
    const Tensor& x = ctx->input(0);
    const Tensor& dy = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() >= 1 && x.shape() == dy.shape(),
                absl::InvalidArgumentError("StableSoftmaxGrad: x and dy must have the same shape of rank >= 1"));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    const auto [rows, cols] = RowsCols(x);
    const T* xp = x.flat<T>().data();
    const T* dyp = dy.flat<T>().data();
    T* dxp = dx->flat<T>().data();
    ParallelFor(ctx, rows, cols * 32, [&](int64_t begin, int64_t end) {
      RowView<T> view(cols, 3);
      std::vector<C> e_buffer(cols);
      Row<C> e(e_buffer.data(), cols);
      for (int64_t r = begin; r < end; ++r) {
        ConstRow<C> xr(view.in(xp + r * cols, cols, 0), cols);
        ConstRow<C> dyr(view.in(dyp + r * cols, cols, 1), cols);
        Row<C> dxr(view.out(dxp + r * cols, cols, 2), cols);
        e = (xr - xr.maxCoeff()).exp();
        const C inv = C(1) / e.sum();
        const C dot = (e * dyr).sum() * inv;  // sum(dy * y)
        dxr = e * inv * (dyr - dot);
        view.store(dxr.data(), dxp + r * cols, cols);
      }
    });
  }
};

#define REGISTER_CPU(T)                                                                         \
  REGISTER_KERNEL_BUILDER(Name("Spiky").Device(DEVICE_CPU).TypeConstraint<T>("T"), SpikyCpu<T>); \
  REGISTER_KERNEL_BUILDER(Name("SpikyGrad").Device(DEVICE_CPU).TypeConstraint<T>("T"),           \
                          SpikyGradCpu<T>);                                                      \
  REGISTER_KERNEL_BUILDER(Name("StableSoftmax").Device(DEVICE_CPU).TypeConstraint<T>("T"),       \
                          StableSoftmaxCpu<T>);                                                  \
  REGISTER_KERNEL_BUILDER(Name("StableSoftmaxGrad").Device(DEVICE_CPU).TypeConstraint<T>("T"),   \
                          StableSoftmaxGradCpu<T>);

REGISTER_CPU(Eigen::half)
REGISTER_CPU(Eigen::bfloat16)
REGISTER_CPU(float)
REGISTER_CPU(double)

#ifdef STRATBENCH_CUDA
// GPU kernels: the same ops, computed by the launchers in gpu_kernels.cu on the op's stream.
template <typename T> constexpr DType kDType = kFloat;
template <> constexpr DType kDType<Eigen::half> = kHalf;
template <> constexpr DType kDType<Eigen::bfloat16> = kBFloat16;
template <> constexpr DType kDType<double> = kDouble;

void* StreamOf(OpKernelContext* ctx) {
  return ctx->op_device_context()->stream()->platform_specific_handle().stream;
}

absl::Status GpuStatus(int code, const char* what) {
  if (code == 0) return absl::OkStatus();
  return absl::InternalError(std::string(what) + ": " + GpuErrorString(code));
}

// kind: 0 Spiky, 1 SpikyGrad, 2 StableSoftmax, 3 StableSoftmaxGrad
template <typename T, int kind>
class GpuOp : public OpKernel {
 public:
  explicit GpuOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const bool grad = kind == 1 || kind == 3;
    if (grad) {
      OP_REQUIRES(ctx, x.shape() == ctx->input(1).shape(),
                  absl::InvalidArgumentError(name() + ": x and dy must have the same shape"));
    }
    if (kind >= 2) OP_REQUIRES(ctx, x.dims() >= 1, absl::InvalidArgumentError(name() + ": rank must be >= 1"));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &out));
    const void* xp = x.data();
    const void* dyp = grad ? ctx->input(1).data() : nullptr;
    void* op = out->data();
    const int64_t n = x.NumElements();
    const auto [rows, cols] = kind >= 2 ? RowsCols(x) : RowsCols(0, 0);
    void* s = StreamOf(ctx);
    int code = 0;
    if (kind == 0) code = SpikyForwardGpu(kDType<T>, xp, op, n, s);
    if (kind == 1) code = SpikyGradGpu(kDType<T>, xp, dyp, op, n, s);
    if (kind == 2) code = SoftmaxForwardGpu(kDType<T>, xp, op, rows, cols, s);
    if (kind == 3) code = SoftmaxGradGpu(kDType<T>, xp, dyp, op, rows, cols, s);
    OP_REQUIRES_OK(ctx, GpuStatus(code, "stratbench CUDA kernel launch"));
  }
};

#define REGISTER_GPU(T)                                                                                 \
  REGISTER_KERNEL_BUILDER(Name("Spiky").Device(tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), GpuOp<T, 0>); \
  REGISTER_KERNEL_BUILDER(Name("SpikyGrad").Device(tensorflow::DEVICE_GPU).TypeConstraint<T>("T"),       \
                          GpuOp<T, 1>);                                                                  \
  REGISTER_KERNEL_BUILDER(Name("StableSoftmax").Device(tensorflow::DEVICE_GPU).TypeConstraint<T>("T"),   \
                          GpuOp<T, 2>);                                                                  \
  REGISTER_KERNEL_BUILDER(Name("StableSoftmaxGrad").Device(tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), \
                          GpuOp<T, 3>);

REGISTER_GPU(Eigen::half)
REGISTER_GPU(Eigen::bfloat16)
REGISTER_GPU(float)
REGISTER_GPU(double)
#endif  // STRATBENCH_CUDA

}  // namespace
}  // namespace stratbench
