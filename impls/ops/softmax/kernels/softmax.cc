// The stable softmax as a compiled TensorFlow op: StableSoftmax and StableSoftmaxGrad
// along the last axis (the Python side moves any other axis there), CPU kernels a row per
// unit of TF's intra-op pool; CUDA kernels in softmax.cu (STRATBENCH_CUDA).
#include "stratbench.h"

namespace stratbench {

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

int SoftmaxForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream);
int SoftmaxGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream);

namespace {

// exp(x) for x <= 0 (softmax's x - max), in float: 1.7x faster than Eigen's exp with AVX2
// and FMA, within 1.7e-7 relative (measured: README, "The compiled op").  The scheme of
// XNNPACK's softmax kernels (Dukhan & Ablavatski, arXiv 2001.04438): n = round(x log2 e)
// by a magic bias that also forms 2^n, x - n ln 2 in two steps, a degree-5 polynomial.
// -inf and anything below exp's float range give 0, NaN stays NaN.  GCC vectorises a loop
// of it; without hardware FMA std::fma is a library call, so Eigen's exp is used there.
inline float ExpNonPositive(float x) {
  constexpr float kMagicBias = 0x1.8000FEp23f, kLog2e = 0x1.715476p+0f;
  constexpr float kLn2Hi = 0x1.62E400p-1f, kLn2Lo = 0x1.7F7D1Cp-20f;
  constexpr float c5 = 0x1.0F9F9Cp-7f, c4 = 0x1.573A1Ap-5f, c3 = 0x1.555A80p-3f, c2 = 0x1.FFFDC6p-2f,
                  c1 = 0x1.FFFFF6p-1f;
  constexpr float kZeroBelow = -0x1.5D589Ep6f;  // ln of the smallest normal float
  float n = std::fma(x, kLog2e, kMagicBias);
  int32_t bits;
  std::memcpy(&bits, &n, sizeof bits);
  bits <<= 23;  // the low bits of n + bias, moved into the exponent: 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  n -= kMagicBias;
  float t = std::fma(n, -kLn2Hi, x);
  t = std::fma(n, -kLn2Lo, t);
  float p = std::fma(c5, t, c4);
  p = std::fma(p, t, c3);
  p = std::fma(p, t, c2);
  p = std::fma(p, t, c1);
  t *= scale;
  const float e = std::fma(t, p, scale);
  return x < kZeroBelow ? 0.0f : e;
}

template <typename C>
using Row = Eigen::Map<Eigen::Array<C, Eigen::Dynamic, 1>>;
template <typename C>
using ConstRow = Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>>;

// Softmax rows, a row per unit of work, in three steps that keep DRAM traffic to one
// read of each input and one write of the output (what a copy moves):
//   1. the row's max, reading it from memory (now in L1/L2);
//   2. e = exp(x - max) into a per-shard scratch row, with its sums, all from cache;
//   3. the scaled result written out once, with streaming stores when the output is too
//      big to stay cached (a plain store first reads the line it overwrites: a third
//      more traffic than a copy).
// 16-bit types are converted to float a row at a time (Eigen's vectorised casts).
template <typename T>
class SoftmaxRows {
 public:
  using C = typename Math<T>::type;
  SoftmaxRows(int64_t cols, int inputs, bool stream)
      : cols_(cols), stream_(stream), scratch_((1 + (std::is_same_v<T, C> ? 0 : inputs)) * cols),
        out_(std::is_same_v<T, C> ? 0 : cols) {}
  ~SoftmaxRows() { StreamFence(); }

  // Input `slot`'s row as C: the tensor's memory itself, or a converted copy.
  ConstRow<C> in(const T* row, int slot) {
    if constexpr (std::is_same_v<T, C>) {
      return ConstRow<C>(row, cols_);
    } else {
      Row<C> to(scratch_.data() + (1 + slot) * cols_, cols_);
      to = ConstRow<T>(row, cols_).template cast<C>();
      return ConstRow<C>(to.data(), cols_);
    }
  }
  Row<C> exps() { return Row<C>(scratch_.data(), cols_); }
  // exps() = exp(x - m): the row's largest cost.
  void exp(const ConstRow<C>& x, C m) {
    Row<C> e = exps();
#if defined(__FMA__)
    if constexpr (std::is_same_v<C, float>) {
      const float* __restrict in = x.data();
      float* __restrict out = e.data();
      for (int64_t j = 0; j < cols_; ++j) out[j] = ExpNonPositive(in[j] - m);
      return;
    }
#endif
    e = (x - m).exp();
  }
  // Writes `result` (an expression over cached rows) to the output row.
  template <typename Expr>
  void store(const Expr& result, T* row) {
    if constexpr (std::is_same_v<T, C>) {
      if (!stream_) {
        Row<C>(row, cols_) = result;
        return;
      }
      exps() = result;  // in cache; then streamed out
      StreamBytes(row, exps().data(), cols_ * sizeof(T));
    } else {
      Row<T> out(stream_ ? out_.data() : row, cols_);
      out = result.template cast<T>();
      if (stream_) StreamBytes(row, out.data(), cols_ * sizeof(T));
    }
  }

 private:
  int64_t cols_;
  bool stream_;
  std::vector<C> scratch_;  // the exps, then each converted input
  std::vector<T> out_;      // the converted output row (16-bit types)
};

// Rows per unit of TF's sharder: ~30 cycles per element (an exp, sums, a scale).
constexpr int64_t kSoftmaxCost = 30;

template <typename T>
class StableSoftmaxCpu : public OpKernel {
 public:
  explicit StableSoftmaxCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() >= 1, absl::InvalidArgumentError("StableSoftmax: x must have rank >= 1"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const auto [rows, cols] = RowsCols(x);
    const T* xp = x.flat<T>().data();
    T* yp = y->flat<T>().data();
    const bool stream = StreamOutput(y->TotalBytes());
    ParallelFor(ctx, rows, cols * kSoftmaxCost, [&](int64_t begin, int64_t end) {
      SoftmaxRows<T> work(cols, 1, stream);
      auto e = work.exps();
      for (int64_t r = begin; r < end; ++r) {
        const auto xr = work.in(xp + r * cols, 0);
        work.exp(xr, xr.maxCoeff());
        work.store(e * (1 / e.sum()), yp + r * cols);
      }
    });
  }
};

template <typename T>
class StableSoftmaxGradCpu : public OpKernel {
 public:
  explicit StableSoftmaxGradCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
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
    const bool stream = StreamOutput(dx->TotalBytes());
    ParallelFor(ctx, rows, cols * kSoftmaxCost, [&](int64_t begin, int64_t end) {
      SoftmaxRows<T> work(cols, 2, stream);
      auto e = work.exps();
      for (int64_t r = begin; r < end; ++r) {
        const auto xr = work.in(xp + r * cols, 0);
        const auto dyr = work.in(dyp + r * cols, 1);
        work.exp(xr, xr.maxCoeff());
        const auto inv = 1 / e.sum();
        const auto dot = (e * dyr).sum() * inv;  // sum(dy * y)
        work.store(e * inv * (dyr - dot), dxp + r * cols);
      }
    });
  }
};

STRATBENCH_REGISTER_CPU("StableSoftmax", StableSoftmaxCpu, StableSoftmaxGradCpu)
STRATBENCH_REGISTER_GPU("StableSoftmax", true, SoftmaxForwardGpu, SoftmaxGradGpu)

}  // namespace
}  // namespace stratbench
