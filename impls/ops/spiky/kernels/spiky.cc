// spiky as a compiled TensorFlow op: Spiky and SpikyGrad, CPU kernels sharded over TF's
// intra-op pool and vectorised by GCC; CUDA kernels in spiky.cu (STRATBENCH_CUDA).
#include "stratbench.h"

namespace stratbench {

REGISTER_OP(STRATBENCH_OP_NAME)
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape)
    .Doc("spiky(x) = r if r <= 0.5 else 0, r = x - floor(x); NaN and +-inf give 0.");

REGISTER_OP(STRATBENCH_OP_NAME "Grad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(GradShape)
    .Doc("dx = dy where spiky keeps x (r <= 0.5), else 0; the mask is recomputed from x.");

namespace {

// Floor-mod by 1 as x - floor(x) (vectorised by GCC with -fno-trapping-math); NaN,
// from NaN or +-inf, fails r <= 0.5 and gives 0.  Loads happen unconditionally and the
// result is a select, or GCC 12 does not vectorise the loop.  Forward: y = r or 0;
// gradient: dx = dy or 0, the mask recomputed from x.
template <typename T, bool kGrad>
void SpikyRange(const T* x, const T* dy, T* out, int64_t begin, int64_t end) {
  using C = typename Math<T>::type;
  for (int64_t i = begin; i < end; ++i) {
    const C v = static_cast<C>(x[i]);
    const C r = v - std::floor(v);
    const C kept = kGrad ? static_cast<C>(dy[i]) : r;
    out[i] = static_cast<T>(r <= C(0.5) ? kept : C(0));
  }
}

template <typename T> using SpikyCpu = ElementwiseCpu<T, false, SpikyRange<T, false>, kElementwiseCost>;
template <typename T> using SpikyGradCpu = ElementwiseCpu<T, true, SpikyRange<T, true>, kElementwiseCost>;

STRATBENCH_REGISTER_CPU(SpikyCpu, SpikyGradCpu)
STRATBENCH_REGISTER_GPU(false)

}  // namespace
}  // namespace stratbench
