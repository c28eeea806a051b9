// The softmax along a non-last axis: StableSoftmax's and StableSoftmaxGrad's CPU kernels
// (softmax.cc) call it wherever the axis is not the last.
#include "softmax_axis.h"

#include <limits>

#include "exp.h"

namespace stratbench {
namespace {

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
// back, as contiguous as the shape allows: on the dev VM, runs of a page at twice that
// stride took 1.2-1.4x the time of one contiguous slab (the prefetchers stop at pages).
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

}  // namespace

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
      std::vector<C> m(partials.empty() ? width : 0), scratch(partials.empty() ? 3 * width : 0);
      std::vector<SumOf<C>> sums(partials.empty() ? 2 * width : 0);
      for (int64_t u = begin; u < end; ++u) {
        int64_t w, rows;
        const int64_t at = unit(u, &w, &rows);
        const T* dyu = kGrad ? dy + at : nullptr;
        if (partials.empty()) {  // a whole column: accumulate it here
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

#define STRATBENCH_SOFTMAX_ALONG_AXIS(T)                                                     \
  template void SoftmaxAlongAxis<T, false>(OpKernelContext*, const T*, const T*, T*, Axis); \
  template void SoftmaxAlongAxis<T, true>(OpKernelContext*, const T*, const T*, T*, Axis);
STRATBENCH_SOFTMAX_ALONG_AXIS(Eigen::half)
STRATBENCH_SOFTMAX_ALONG_AXIS(Eigen::bfloat16)
STRATBENCH_SOFTMAX_ALONG_AXIS(float)
STRATBENCH_SOFTMAX_ALONG_AXIS(double)

}  // namespace stratbench
