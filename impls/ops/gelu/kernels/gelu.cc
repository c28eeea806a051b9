// GELU (tanh approximation) as a compiled TensorFlow op: Gelu and GeluGrad, CPU kernels
// sharded over TF's intra-op pool, in float arithmetic through Eigen's vectorised tanh and exp packets;
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
constexpr int64_t kChunk = 256;  // 16-bit elements converted at a time (1 KiB of floats each, in L1)
constexpr int64_t kGeluCost = 40;  // cycles per element, for TF's sharder (a tanh, or an exp and a division)

// gelu (dy unused) or dy * gelu' on one packet of the arithmetic type S, or on one S where
// Eigen has no vectorised tanh for it (double), through Eigen's packet functions: Eigen's
// array expressions over AVX-512 ran gelu's forward 1.3x slower than AVX2 (400K float32).
template <typename P, bool kGrad>
P GeluPacket(const P& x, const P& dy) {
  using namespace Eigen::internal;
  using S = typename unpacket_traits<P>::type;
  const P x2 = pmul(x, x);
  const P u = pmul(pset1<P>(S(kC)), pmadd(pmul(pset1<P>(S(kA)), x), x2, x));
  if constexpr (kGrad) {
    // 0.5 (1 + tanh(u)) as s = sigmoid(2u) = 1 / (1 + exp(-2u)), and 1 - tanh(u)^2 as
    // 4 s (1 - s): Eigen's vectorised tanh is exactly -1 below u = -8 or so, which zeroed
    // the gradient for x < -4.8 (-1.3e-5 lost at x = -4.89, dy = 4).  The forward keeps
    // tanh: there the lost tail is under 1e-6, and the exp form ran 1.6x slower.
    const P one = pset1<P>(S(1));
    const P s = pdiv(one, padd(one, pexp(pmul(pset1<P>(S(-2)), u))));
    const P du = pmul(pset1<P>(S(kC)), pmadd(pset1<P>(S(3 * kA)), x2, one));  // du/dx
    const P ds = pmul(pmul(pset1<P>(S(2)), x), pmul(s, psub(one, s)));        // x * d(s)/du
    return pmul(dy, pmadd(ds, du, s));
  } else {
    const P half_x = pmul(pset1<P>(S(0.5)), x);
    return pmadd(half_x, ptanh(u), half_x);
  }
}

// GeluPacket over n elements of the arithmetic type S, a whole packet at a time; the last
// few through one zero-padded packet, so every element gets the same arithmetic.
template <typename S, bool kGrad>
void GeluArithmetic(const S* x, const S* dy, S* out, int64_t n) {
  using namespace Eigen::internal;
  using P = std::conditional_t<packet_traits<S>::HasTanh && packet_traits<S>::HasExp, typename packet_traits<S>::type, S>;
  constexpr int64_t kSize = unpacket_traits<P>::size;
  int64_t i = 0;
  for (; i + kSize <= n; i += kSize)
    pstoreu(out + i, GeluPacket<P, kGrad>(ploadu<P>(x + i), kGrad ? ploadu<P>(dy + i) : pset1<P>(S(0))));
  if (i == n) return;
  alignas(64) S xb[kSize] = {}, db[kSize] = {}, ob[kSize];
  std::copy(x + i, x + n, xb);
  if (kGrad) std::copy(dy + i, dy + n, db);
  pstoreu(ob, GeluPacket<P, kGrad>(ploadu<P>(xb), ploadu<P>(db)));
  std::copy(ob, ob + (n - i), out + i);
}

// y = gelu(x) (dy null) or dx = dy * gelu'(x) over [begin, end); 16-bit inputs go through
// float buffers a chunk at a time.
template <typename T, bool kGrad>
void GeluRange(const T* x, const T* dy, T* out, int64_t begin, int64_t end) {
  using C = typename Math<T>::type;
  if constexpr (std::is_same_v<T, C>) {
    GeluArithmetic<C, kGrad>(x + begin, kGrad ? dy + begin : nullptr, out + begin, end - begin);
  } else {
    C xb[kChunk], db[kChunk], ob[kChunk];
    for (int64_t start = begin; start < end; start += kChunk) {
      const int64_t n = std::min(kChunk, end - start);
      for (int64_t i = 0; i < n; ++i) xb[i] = static_cast<C>(x[start + i]);
      if (kGrad) for (int64_t i = 0; i < n; ++i) db[i] = static_cast<C>(dy[start + i]);
      GeluArithmetic<C, kGrad>(xb, db, ob, n);
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
