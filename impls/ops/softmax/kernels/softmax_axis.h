// The softmax along a non-last axis (softmax_axis.cc), for softmax.cc's kernels: a
// translation unit of its own, so that it leaves the code GCC makes for the last axis's
// row loop as it was (in one unit the row loop came out 10-20% slower forward).
#pragma once

#include "stratbench.h"

namespace stratbench {

// Cycles per element for TF's sharder (an exp, sums, a scale).
constexpr int64_t kSoftmaxCost = 30;

// x seen as [outer, n, inner], the softmax along n.
struct Axis {
  int64_t outer = 1, n = 1, inner = 1;
};

// out = the softmax of x along a.n (kGrad: dx from x and dy), sharded over TF's pool.
template <typename T, bool kGrad>
void SoftmaxAlongAxis(OpKernelContext* ctx, const T* x, const T* dy, T* out, Axis a);

}  // namespace stratbench
