// The stable softmax as a compiled TensorFlow op: StableSoftmax and StableSoftmaxGrad
// along any axis (attr `axis`), CPU kernels sharded over TF's intra-op pool; CUDA kernels
// in softmax.cu (STRATBENCH_CUDA), along the last axis only.
#include "softmax_axis.h"
#include "exp.h"
#include "stratbench.h"

namespace stratbench {

REGISTER_OP(STRATBENCH_OP_NAME)
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .Attr("axis: int = -1")
    .SetShapeFn([](InferenceContext* c) {
      return tensorflow::shape_inference::UnchangedShapeWithRankAtLeast(c, 1);
    })
    .Doc("exp(x - max) / sum(exp(x - max)) along `axis` (negative: from the end).");

REGISTER_OP(STRATBENCH_OP_NAME "Grad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .Attr("axis: int = -1")
    .SetShapeFn([](InferenceContext* c) {
      tensorflow::shape_inference::ShapeHandle out;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &out));
      TF_RETURN_IF_ERROR(c->Merge(out, c->input(1), &out));
      c->set_output(0, out);
      return absl::OkStatus();
    })
    .Doc("dx = y * (dy - sum(dy * y)) along `axis`, y recomputed from x (max held constant).");

namespace {

template <typename C>
using Row = Eigen::Map<Eigen::Array<C, Eigen::Dynamic, 1>>;
template <typename C>
using ConstRow = Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>>;

// out = exp(x - m) for n elements (x and out apart).
template <typename C>
void ExpShifted(const C* __restrict x, C m, C* __restrict out, int64_t n) {
  if constexpr (kOwnExp<C>) {
    for (int64_t j = 0; j < n; ++j) out[j] = ExpNonPositive(x[j] - m);
  } else {
    Row<C>(out, n) = (ConstRow<C>(x, n) - m).exp();
  }
}

// Softmax rows, a row per unit of work, in three steps that keep DRAM traffic to one
// read of each input and one write of the output (what a copy moves):
//   1. the row's max, reading it from memory (now in L1/L2);
//   2. e = exp(x - max) into a per-shard scratch row, with its sums, all from cache;
//   3. the scaled result written out once.
// Past the private caches (`stream`), step 2 runs four cache lines at a time, and each
// step also asks for the next row's lines (into L2) and streams out the previous row's
// result, held in cache since its step 3: reads, arithmetic and writes overlap.  4096x2048
// float32 on the Intel VM: 0.54 of the paired roofline, against 0.40 with each row's reads
// and writes in its own steps, and 0.46 with this traffic spread over all three steps.
// Streaming stores, since a plain store first reads the line it overwrites.
// 16-bit types are converted to float a row at a time (Eigen's vectorised casts).
template <typename T>
class SoftmaxRows {
 public:
  using C = typename Math<T>::type;
  SoftmaxRows(int64_t cols, int inputs, bool stream)
      : cols_(cols), stream_(stream), scratch_((1 + (std::is_same_v<T, C> ? 0 : inputs)) * cols),
        held_(stream ? cols : 0) {}

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
  // exps() = exp(x - m): the row's largest cost.  When streaming, during it the next row's
  // inputs (`next`, null at the last row) are fetched and the held row streams out.
  void exp(const ConstRow<C>& x, C m, std::initializer_list<const T*> next) {
    if (!stream_) return ExpShifted(x.data(), m, scratch_.data(), cols_);
    constexpr int64_t kLine = 64 / sizeof(C), kStep = 4 * kLine;
    for (int64_t start = 0; start < cols_; start += kStep) {
      const int64_t n = std::min(kStep, cols_ - start);
      for (const T* row : next)
        if (row) for (int64_t k = 0; k < kStep; k += kLine) __builtin_prefetch(row + start + k, 0, 2);
      ExpShifted(x.data() + start, m, scratch_.data() + start, n);
      StreamHeld((start + n) * sizeof(T));
    }
  }
  // Writes `result` (an expression over cached rows) to the output row: at once, or, when
  // streaming, held in cache and streamed out during the next row's exp() or finish().
  template <typename Expr>
  void store(const Expr& result, T* row) {
    if (!stream_) {
      if constexpr (std::is_same_v<T, C>) {
        Row<C>(row, cols_) = result;
      } else {
        Row<T>(row, cols_) = result.template cast<T>();
      }
      return;
    }
    StreamHeld(cols_ * sizeof(T));
    Row<T>(held_.data(), cols_) = result.template cast<T>();
    held_row_ = reinterpret_cast<char*>(row), streamed_ = 0;
  }
  // Streams out what is held, and fences the streaming stores.
  void finish() {
    if (!stream_) return;
    StreamHeld(cols_ * sizeof(T));
    StreamFence();
  }

 private:
  // Streams the held row's bytes up to `upto` (whole lines of its destination before the row's end).
  void StreamHeld(size_t upto) {
    if (!held_row_) return;
    const size_t total = cols_ * sizeof(T);
    const uintptr_t dst = reinterpret_cast<uintptr_t>(held_row_);
    if (upto < total) {
      const uintptr_t line = (dst + upto) & ~uintptr_t{63};
      upto = line > dst + streamed_ ? line - dst : streamed_;
    }
    if (upto > streamed_) StreamBytes(held_row_ + streamed_, reinterpret_cast<const char*>(held_.data()) + streamed_, upto - streamed_);
    streamed_ = upto;
    if (streamed_ == total) held_row_ = nullptr;
  }

  int64_t cols_;
  bool stream_;
  // 64-byte aligned, so that Eigen's vectorised sums start at the same element in every
  // thread: from per-thread malloc arenas a row's sum could differ in its last bit
  // between a concurrent call and one thread's (the capability matrix's threads check).
  std::vector<C, Eigen::aligned_allocator<C>> scratch_;  // the exps, then each converted input
  std::vector<T, Eigen::aligned_allocator<T>> held_;     // the result held for streaming out
  char* held_row_ = nullptr;                             // where it goes, while some is not out
  size_t streamed_ = 0;                                  // its bytes out so far
};

// Along the last axis: rows[begin, end) of [rows, cols], a row per unit of work.
// Forward (kGrad false): out = y; gradient: out = dx = y * (dy - sum(dy * y)).
template <typename T, bool kGrad>
void SoftmaxRowRange(const T* x, const T* dy, T* out, int64_t cols, bool stream, int64_t begin, int64_t end) {
  SoftmaxRows<T> work(cols, kGrad ? 2 : 1, stream);
  auto e = work.exps();
  for (int64_t r = begin; r < end; ++r) {
    const auto xr = work.in(x + r * cols, 0);
    const bool last = r + 1 == end;
    work.exp(xr, xr.maxCoeff(), {last ? nullptr : x + (r + 1) * cols, kGrad && !last ? dy + (r + 1) * cols : nullptr});
    const auto inv = 1 / e.sum();
    if constexpr (kGrad) {
      const auto dyr = work.in(dy + r * cols, 1);
      const auto dot = (e * dyr).sum() * inv;  // sum(dy * y)
      work.store(e * inv * (dyr - dot), out + r * cols);
    } else {
      work.store(e * inv, out + r * cols);
    }
  }
  work.finish();
}

// Rows shorter than this skip the row machinery above (Eigen maps, a scratch row, three
// reductions), whose fixed cost per row exceeds the row's own work.
constexpr int64_t kShortRow = 16;

// Short rows, a plain loop per row with the row's exps in registers.  (Blocks of rows
// with the exps vectorised across the block were measured no faster: the per-row max and
// sums stay scalar either way.)
template <typename T, bool kGrad>
void SoftmaxShortRowRange(const T* x, const T* dy, T* out, int64_t cols, int64_t begin, int64_t end) {
  using C = typename Math<T>::type;
  C e[kShortRow];
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = x + r * cols;
    C m = static_cast<C>(xr[0]);
    for (int64_t c = 1; c < cols; ++c) m = std::max(m, static_cast<C>(xr[c]));
    C sum = 0, dot = 0;
    for (int64_t c = 0; c < cols; ++c) {
      e[c] = ExpOne(static_cast<C>(xr[c]) - m);
      sum += e[c];
      if constexpr (kGrad) dot += e[c] * static_cast<C>(dy[r * cols + c]);
    }
    const C inv = 1 / sum;
    dot *= inv;  // sum(dy * y)
    for (int64_t c = 0; c < cols; ++c) {
      const C y = e[c] * inv;
      out[r * cols + c] = static_cast<T>(kGrad ? y * (static_cast<C>(dy[r * cols + c]) - dot) : y);
    }
  }
}

// StableSoftmax (kGrad false: y from x) and StableSoftmaxGrad (dx from x and dy).
template <typename T, bool kGrad>
class SoftmaxCpu : public OpKernel {
 public:
  explicit SoftmaxCpu(OpKernelConstruction* c) : OpKernel(c) { OP_REQUIRES_OK(c, c->GetAttr("axis", &axis_)); }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const int rank = x.dims();
    OP_REQUIRES(ctx, rank >= 1 && axis_ >= -rank && axis_ < rank,
                absl::InvalidArgumentError(name() + ": axis " + std::to_string(axis_) + " is out of range for x of shape " +
                                           x.shape().DebugString() + "; accepted: -rank <= axis < rank, rank >= 1"));
    const T* dy = nullptr;
    if (kGrad) {
      OP_REQUIRES_OK(ctx, SameShape(name(), x, ctx->input(1)));
      dy = ctx->input(1).flat<T>().data();
    }
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &out));
    if (x.NumElements() == 0) return;
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    Axis a;
    for (int d = 0; d < rank; ++d) (d < axis ? a.outer : d == axis ? a.n : a.inner) *= x.dim_size(d);
    const T* xp = x.flat<T>().data();
    T* op = out->flat<T>().data();
    if (a.inner == 1 && a.n < kShortRow) {
      ParallelFor(ctx, a.outer, a.n * kSoftmaxCost, [&](int64_t begin, int64_t end) {
        SoftmaxShortRowRange<T, kGrad>(xp, dy, op, a.n, begin, end);
      });
    } else if (a.inner == 1) {
      const bool stream = StreamOutput(ctx, out->TotalBytes() * (kGrad ? 3 : 2));
      ParallelFor(ctx, a.outer, a.n * kSoftmaxCost, [&](int64_t begin, int64_t end) {
        SoftmaxRowRange<T, kGrad>(xp, dy, op, a.n, stream, begin, end);
      });
    } else {
      SoftmaxAlongAxis<T, kGrad>(ctx, xp, dy, op, a);
    }
  }

 private:
  int axis_ = -1;
};

template <typename T> using StableSoftmaxCpu = SoftmaxCpu<T, false>;
template <typename T> using StableSoftmaxGradCpu = SoftmaxCpu<T, true>;

STRATBENCH_REGISTER_CPU(StableSoftmaxCpu, StableSoftmaxGradCpu)
STRATBENCH_REGISTER_GPU(true)

}  // namespace
}  // namespace stratbench
