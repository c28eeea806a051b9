// GELU (tanh approximation) as a compiled TensorFlow op: Gelu and GeluGrad, CPU kernels
// sharded over TF's intra-op pool, in float arithmetic through Eigen's vectorised tanh and exp;
// CUDA kernels in gelu.cu (STRATBENCH_CUDA).  Named StratbenchGelu (its spec): TensorFlow has a Gelu.
#include "stratbench.h"

namespace stratbench {

REGISTER_OP(STRATBENCH_OP_NAME)
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc("gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).");

REGISTER_OP(STRATBENCH_OP_NAME "Grad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(GradShape)
    .Doc("dx = dy * gelu'(x), recomputed from x.");

namespace {

constexpr double kC = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kA = 0.044715;
constexpr int64_t kChunk = 256;  // elements at a time: converted (16-bit types), and the exps (1 KiB each, in L1;
                                  // chunks of 2048 made the gradient 1.3x slower than 256 with the plain allocator)
constexpr int64_t kGeluCost = 40;  // cycles per element, for TF's sharder (a tanh, or an exp and a division)

template <typename C>
using Array = Eigen::Map<Eigen::Array<C, Eigen::Dynamic, 1>>;

// y = gelu(x) (dy null) or dx = dy * gelu'(x) over [begin, end), in the arithmetic type C;
// 16-bit inputs go through a float buffer a chunk at a time so that Eigen vectorises.
template <typename T, bool kGrad>
void GeluRange(const T* x, const T* dy, T* out, int64_t begin, int64_t end) {
  using C = typename Math<T>::type;
  C xb[kChunk], db[kChunk], ob[kChunk], sb[kChunk];
  for (int64_t start = begin; start < end; start += kChunk) {
    const int64_t n = std::min(kChunk, end - start);
    const C* xp;
    const C* dp = nullptr;
    C* op;
    if constexpr (std::is_same_v<T, C>) {
      xp = x + start;
      if (kGrad) dp = dy + start;
      op = out + start;
    } else {
      for (int64_t i = 0; i < n; ++i) xb[i] = static_cast<C>(x[start + i]);
      if (kGrad) for (int64_t i = 0; i < n; ++i) db[i] = static_cast<C>(dy[start + i]);
      xp = xb, dp = db, op = ob;
    }
    Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>> xv(xp, n);
    Array<C> ov(op, n);
    const auto u = C(kC) * (xv + C(kA) * xv * xv * xv);
    if constexpr (kGrad) {
      // 0.5 (1 + tanh(u)) as s = sigmoid(2u) = 1 / (1 + exp(-2u)), and 1 - tanh(u)^2 as
      // 4 s (1 - s): Eigen's vectorised tanh is exactly -1 below u = -8 or so, which zeroed
      // the gradient for x < -4.8 (-1.3e-5 lost at x = -4.89, dy = 4).  The forward keeps
      // tanh: there the lost tail is under 1e-6, and the exp form ran 1.6x slower.
      Array<C> s(sb, n);  // on the stack: an Eigen temporary would be a heap allocation per call
      s = C(1) / (C(1) + (C(-2) * u).exp());
      Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>> dv(dp, n);
      ov = dv * (s + C(2) * xv * s * (C(1) - s) * C(kC) * (C(1) + C(3 * kA) * xv * xv));
    } else {
      ov = C(0.5) * xv * (C(1) + u.tanh());
    }
    if constexpr (!std::is_same_v<T, C>) {
      for (int64_t i = 0; i < n; ++i) out[start + i] = static_cast<T>(ob[i]);
    }
  }
}

template <typename T> using GeluCpu = ElementwiseCpu<T, false, GeluRange<T, false>, kGeluCost>;
template <typename T> using GeluGradCpu = ElementwiseCpu<T, true, GeluRange<T, true>, kGeluCost>;

STRATBENCH_REGISTER_CPU(GeluCpu, GeluGradCpu)
STRATBENCH_REGISTER_GPU(false)

}  // namespace
}  // namespace stratbench
