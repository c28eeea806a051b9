// The stable softmax as a compiled TensorFlow op: StableSoftmax and StableSoftmaxGrad
// along any axis (attr `axis`), CPU kernels sharded over TF's intra-op pool; CUDA kernels
// in softmax.cu (STRATBENCH_CUDA), along the last axis only.
#include <limits>

#include "softmax_exp.h"
#include "stratbench.h"

namespace stratbench {

REGISTER_OP("StableSoftmax")
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .Attr("axis: int = -1")
    .SetShapeFn([](InferenceContext* c) {
      return tensorflow::shape_inference::UnchangedShapeWithRankAtLeast(c, 1);
    })
    .Doc("exp(x - max) / sum(exp(x - max)) along `axis` (negative: from the end).");

REGISTER_OP("StableSoftmaxGrad")
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

int SoftmaxForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream);
int SoftmaxGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream);

namespace {

template <typename C>
using Row = Eigen::Map<Eigen::Array<C, Eigen::Dynamic, 1>>;
template <typename C>
using ConstRow = Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>>;

#if defined(__FMA__)
constexpr bool kHaveFma = true;
#else
constexpr bool kHaveFma = false;
#endif
// ExpNonPositive where it pays (float with hardware FMA); elsewhere Eigen's or std::exp.
template <typename C>
constexpr bool kOwnExp = kHaveFma && std::is_same_v<C, float>;

// exp(x) for x <= 0 in C, one element at a time (in loops GCC vectorises).
template <typename C>
inline C ExpOne(C x) {
  if constexpr (kOwnExp<C>) {
    return ExpNonPositive(x);
  } else {
    return std::exp(x);
  }
}

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
//   3. the scaled result written out once, with streaming stores when the output is too
//      big to stay cached (a plain store first reads the line it overwrites: a third
//      more traffic than a copy).
// 16-bit types are converted to float a row at a time (Eigen's vectorised casts).  Taking
// the next row's max inside this row's exp loop, and prefetching the next row, so that
// its reads overlap this row's arithmetic, were both measured no faster on the dev VM.
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
    ExpShifted(x.data(), m, scratch_.data(), cols_);
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

// Cycles per element for TF's sharder (an exp, sums, a scale).
constexpr int64_t kSoftmaxCost = 30;

// Along the last axis: rows[begin, end) of [rows, cols], a row per unit of work.
// Forward (kGrad false): out = y; gradient: out = dx = y * (dy - sum(dy * y)).
template <typename T, bool kGrad>
void SoftmaxRowRange(const T* x, const T* dy, T* out, int64_t cols, bool stream, int64_t begin, int64_t end) {
  SoftmaxRows<T> work(cols, kGrad ? 2 : 1, stream);
  auto e = work.exps();
  for (int64_t r = begin; r < end; ++r) {
    const auto xr = work.in(x + r * cols, 0);
    work.exp(xr, xr.maxCoeff());
    const auto inv = 1 / e.sum();
    if constexpr (kGrad) {
      const auto dyr = work.in(dy + r * cols, 1);
      const auto dot = (e * dyr).sum() * inv;  // sum(dy * y)
      work.store(e * inv * (dyr - dot), out + r * cols);
    } else {
      work.store(e * inv, out + r * cols);
    }
  }
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

// x seen as [outer, n, inner], the softmax along n.
struct Axis {
  int64_t outer = 1, n = 1, inner = 1;
};

// Along any other axis, without moving it (moving it there and back, two transposes, cost
// more than the softmax).  x[o, k0:k1, j:j+w] is a slab: rows k0..k1 of the softmax's
// axis, each a contiguous run of w positions j of the inner axis (the whole slab is
// contiguous when w is all of it).  Per position a max, a sum of exps (and for the
// gradient of exps * dy) are kept in cache, and a slab is read twice (PyTorch's CPU
// softmax reads it three times):
//   1. Accumulate: the max and the sums together, kBlock rows at a time: the block's max
//      from memory, the sums so far rescaled to it (online softmax, Milakov & Gimelshein
//      2018: one exp per position per block), then the block's exps, its rows in cache;
//   2. Write: the output, with plain stores (streaming stores, a gain along the last axis,
//      were 1.1-1.2x slower forward here and no faster for the gradient).
// A unit of work is a column, (o, a chunk of up to kChunk positions) through all n rows,
// both steps.  Where columns are fewer than twice the threads (one outer index, as along
// axis 0 of a matrix) the rows are split into slabs too: every slab accumulated in
// parallel, then each written from its column's slabs merged.  Slabs are read front to
// back, as contiguous as the shape allows: on the dev VM runs of a page at twice that
// stride took twice the time of one contiguous slab (the prefetchers stop at each page).
constexpr int64_t kChunk = 4096;
constexpr int64_t kBlock = 16;
constexpr int64_t kMinSlabRows = 64;

// The sums along the axis add one term per row, thousands of them: in float they drift
// past float32's tolerance (7e-6 relative over 2000 terms), so they are kept in double.
template <typename C>
using SumOf = std::conditional_t<std::is_same_v<C, float>, double, C>;

// A slab's partial results per position: the max, the sums of exp(x - max) and of it * dy.
template <typename C>
struct Partial {
  C* m;
  SumOf<C>* sum;
  SumOf<C>* dot;
};

template <typename T, bool kGrad, typename C = typename Math<T>::type>
void Accumulate(const T* x, const T* dy, int64_t stride, int64_t w, int64_t rows, Partial<C> p, C* scratch) {
  C* block_max = scratch;  // the block's max, its sums (in C: a few terms), each w long
  C* block_sum = scratch + w;
  C* block_dot = scratch + 2 * w;
  // From the lowest finite value, not -inf: exp(x - m) of an x of -inf is then 0 where
  // every row so far was -inf too (-inf - -inf would be NaN); a column of -inf alone still
  // gives NaN, as the reference does (0 / 0).
  std::fill_n(p.m, w, std::numeric_limits<C>::lowest());
  std::fill_n(p.sum, w, 0);
  std::fill_n(p.dot, w, 0);
  for (int64_t k0 = 0; k0 < rows; k0 += kBlock) {
    const int64_t k1 = std::min(rows, k0 + kBlock);
    std::copy_n(p.m, w, block_max);
    for (int64_t k = k0; k < k1; ++k) {
      const T* xk = x + k * stride;
      for (int64_t i = 0; i < w; ++i) block_max[i] = std::max(block_max[i], static_cast<C>(xk[i]));
    }
    for (int64_t i = 0; i < w; ++i) {
      const C rescale = ExpOne(p.m[i] - block_max[i]);
      p.sum[i] *= rescale;
      if constexpr (kGrad) p.dot[i] *= rescale;
      p.m[i] = block_max[i];
      block_sum[i] = block_dot[i] = 0;
    }
    for (int64_t k = k0; k < k1; ++k) {
      const T* xk = x + k * stride;
      const T* dyk = kGrad ? dy + k * stride : nullptr;
      for (int64_t i = 0; i < w; ++i) {
        const C e = ExpOne(static_cast<C>(xk[i]) - p.m[i]);
        block_sum[i] += e;
        if constexpr (kGrad) block_dot[i] += e * static_cast<C>(dyk[i]);
      }
    }
    for (int64_t i = 0; i < w; ++i) {
      p.sum[i] += block_sum[i];
      if constexpr (kGrad) p.dot[i] += block_dot[i];
    }
  }
}

// What Write needs per position, merged from a column's slabs: the max, 1 / sum, and
// sum(dy * y).
template <typename C>
struct Totals {
  std::vector<C> m, inv, dot_y;
  explicit Totals(int64_t w) : m(w), inv(w), dot_y(w) {}
  void merge(const Partial<C>* slabs, int64_t count, int64_t w) {
    for (int64_t i = 0; i < w; ++i) {
      C top = slabs[0].m[i];
      for (int64_t s = 1; s < count; ++s) top = std::max(top, slabs[s].m[i]);
      SumOf<C> sum = 0, dot = 0;
      for (int64_t s = 0; s < count; ++s) {
        const SumOf<C> rescale = ExpOne(slabs[s].m[i] - top);
        sum += slabs[s].sum[i] * rescale;
        dot += slabs[s].dot[i] * rescale;
      }
      m[i] = top;
      inv[i] = static_cast<C>(1 / sum);
      dot_y[i] = static_cast<C>(dot / sum);
    }
  }
};

// A slab's output (forward: y; gradient: dx = y * (dy - sum(dy * y))).
template <typename T, bool kGrad, typename C = typename Math<T>::type>
void Write(const T* x, const T* dy, T* out, int64_t stride, int64_t w, int64_t rows, const Totals<C>& t) {
  for (int64_t k = 0; k < rows; ++k) {
    const T* xk = x + k * stride;
    const T* dyk = kGrad ? dy + k * stride : nullptr;
    T* ok = out + k * stride;
    for (int64_t i = 0; i < w; ++i) {
      const C y = ExpOne(static_cast<C>(xk[i]) - t.m[i]) * t.inv[i];
      ok[i] = static_cast<T>(kGrad ? y * (static_cast<C>(dyk[i]) - t.dot_y[i]) : y);
    }
  }
}

// x as [outer, n, inner], the softmax along n.
template <typename T, bool kGrad>
void SoftmaxAlongAxis(OpKernelContext* ctx, const T* x, const T* dy, T* out, Axis a) {
  using C = typename Math<T>::type;
  const int64_t chunks = (a.inner + kChunk - 1) / kChunk, columns = a.outer * chunks;
  const int64_t width = std::min(kChunk, a.inner);
  const int64_t threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  const int64_t slabs = std::clamp<int64_t>((2 * threads + columns - 1) / columns, 1, std::max<int64_t>(1, a.n / kMinSlabRows));
  const int64_t slab_rows = (a.n + slabs - 1) / slabs, units = columns * slabs;
  // Unit u is slab u % slabs of column u / slabs: its offset in x, width and rows.
  auto unit = [&](int64_t u, int64_t* w, int64_t* rows) {
    const int64_t column = u / slabs, slab = u % slabs, j = (column % chunks) * kChunk;
    *w = std::min(kChunk, a.inner - j);
    *rows = std::max<int64_t>(0, std::min(slab_rows, a.n - slab * slab_rows));
    return (column / chunks) * a.n * a.inner + slab * slab_rows * a.inner + j;
  };
  const int64_t cost = slab_rows * width * kSoftmaxCost;
  auto write = [&](const std::vector<Partial<C>>& partials) {
    ParallelFor(ctx, units, cost, [&](int64_t begin, int64_t end) {
      Totals<C> totals(width);
      for (int64_t u = begin; u < end; ++u) {
        int64_t w, rows;
        const int64_t at = unit(u, &w, &rows);
        const T* dyu = kGrad ? dy + at : nullptr;
        if (partials.empty()) {  // a whole column: accumulate it here
          std::vector<C> m(w), scratch(3 * w);
          std::vector<SumOf<C>> sums(2 * w);
          const Partial<C> whole{m.data(), sums.data(), sums.data() + w};
          Accumulate<T, kGrad>(x + at, dyu, a.inner, w, rows, whole, scratch.data());
          totals.merge(&whole, 1, w);
        } else {
          totals.merge(&partials[u / slabs * slabs], slabs, w);
        }
        Write<T, kGrad>(x + at, dyu, out + at, a.inner, w, rows, totals);
      }
    });
  };
  if (slabs == 1) return write({});
  std::vector<C> maxes(units * width);
  std::vector<SumOf<C>> sums(2 * units * width);
  std::vector<Partial<C>> partials(units);
  for (int64_t u = 0; u < units; ++u) partials[u] = {&maxes[u * width], &sums[2 * u * width], &sums[(2 * u + 1) * width]};
  ParallelFor(ctx, units, cost, [&](int64_t begin, int64_t end) {
    std::vector<C> scratch(3 * width);
    for (int64_t u = begin; u < end; ++u) {
      int64_t w, rows;
      const int64_t at = unit(u, &w, &rows);
      Accumulate<T, kGrad>(x + at, kGrad ? dy + at : nullptr, a.inner, w, rows, partials[u], scratch.data());
    }
  });
  write(partials);
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
      const bool stream = StreamOutput(out->TotalBytes());
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

STRATBENCH_REGISTER_CPU("StableSoftmax", StableSoftmaxCpu, StableSoftmaxGradCpu)
STRATBENCH_REGISTER_GPU("StableSoftmax", true, SoftmaxForwardGpu, SoftmaxGradGpu)

}  // namespace
}  // namespace stratbench
