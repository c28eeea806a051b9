// GELU (tanh approximation) as a compiled TensorFlow op: Gelu and GeluGrad, CPU kernels
// sharded over TF's intra-op pool, in float arithmetic on Eigen's packets (its tanh, the kernels' own exp);
// CUDA kernels in gelu.cu (STRATBENCH_CUDA).  Named StratbenchGelu (its spec): TensorFlow has a Gelu.
#include "gelu_math.h"
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

constexpr int64_t kChunk = 256;  // 16-bit elements converted at a time (1 KiB of floats each, in L1)
constexpr int64_t kGeluCost = 40;  // cycles per element, for TF's sharder (a tanh, or an exp and a division)

// GeluPacket over n elements of the arithmetic type S, a whole packet at a time; the last
// few through one zero-padded packet, so every element gets the same arithmetic.  Inlined
// into the streaming loop's 128-byte blocks (GCC called it there): 16M elements, 2 threads,
// the gradient 0.89-0.91x of a copy op's speed called, 0.95-0.96x inlined.
template <typename S, bool kGrad>
__attribute__((always_inline)) inline void GeluArithmetic(const S* x, const S* dy, S* out, int64_t n) {
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
__attribute__((always_inline)) inline void GeluRange(const T* x, const T* dy, T* out, int64_t begin, int64_t end) {
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
