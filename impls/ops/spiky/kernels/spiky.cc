// spiky as a compiled TensorFlow op: Spiky and SpikyGrad, CPU kernels sharded over TF's
// intra-op pool and vectorised by GCC; CUDA kernels in spiky.cu (STRATBENCH_CUDA).
#include "stratbench.h"

namespace stratbench {

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
    .SetShapeFn(GradShape)
    .Doc("dx = dy where spiky keeps x (r <= 0.5), else 0; the mask is recomputed from x.");

int SpikyForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream);
int SpikyGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream);

namespace {

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

STRATBENCH_REGISTER_CPU("Spiky", SpikyCpu, SpikyGradCpu)
STRATBENCH_REGISTER_GPU("Spiky", false, SpikyForwardGpu, SpikyGradGpu)

}  // namespace
}  // namespace stratbench
