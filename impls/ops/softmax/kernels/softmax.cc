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

// Softmax rows, a row per unit of work.  Each row is read from memory once: its max,
// exp and sum passes run on data still in L1/L2.  Eigen's array exp is vectorised.
template <typename C>
using Row = Eigen::Map<Eigen::Array<C, Eigen::Dynamic, 1>>;
template <typename C>
using ConstRow = Eigen::Map<const Eigen::Array<C, Eigen::Dynamic, 1>>;

// Rows of T seen as rows of the arithmetic type C: the same memory when T == C, else a
// converted copy in a per-shard buffer.
template <typename T, typename C = typename Math<T>::type>
struct RowView {
  // `slots` rows of scratch, needed only when T must be converted to C.
  RowView(int64_t cols, int slots) : buffer(std::is_same_v<T, C> ? 0 : slots * cols) {}
  std::vector<C> buffer;
  const C* in(const T* row, int64_t cols, int slot) {
    if constexpr (std::is_same_v<T, C>) {
      return row;
    } else {
      C* b = buffer.data() + slot * cols;
      for (int64_t j = 0; j < cols; ++j) b[j] = static_cast<C>(row[j]);
      return b;
    }
  }
  C* out(T* row, int64_t cols, int slot) {
    if constexpr (std::is_same_v<T, C>) {
      return row;
    } else {
      return buffer.data() + slot * cols;
    }
  }
  void store(const C* from, T* row, int64_t cols) {
    if constexpr (!std::is_same_v<T, C>) {
      for (int64_t j = 0; j < cols; ++j) row[j] = static_cast<T>(from[j]);
    }
  }
};

template <typename T>
class StableSoftmaxCpu : public OpKernel {
 public:
  explicit StableSoftmaxCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    using C = typename Math<T>::type;
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() >= 1, absl::InvalidArgumentError("StableSoftmax: x must have rank >= 1"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const auto [rows, cols] = RowsCols(x);
    const T* xp = x.flat<T>().data();
    T* yp = y->flat<T>().data();
    ParallelFor(ctx, rows, cols * 24, [&](int64_t begin, int64_t end) {
      RowView<T> view(cols, 2);
      for (int64_t r = begin; r < end; ++r) {
        ConstRow<C> xr(view.in(xp + r * cols, cols, 0), cols);
        Row<C> yr(view.out(yp + r * cols, cols, 1), cols);
        const C m = xr.maxCoeff();
        yr = (xr - m).exp();
        yr *= C(1) / yr.sum();
        view.store(yr.data(), yp + r * cols, cols);
      }
    });
  }
};

template <typename T>
class StableSoftmaxGradCpu : public OpKernel {
 public:
  explicit StableSoftmaxGradCpu(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* ctx) override {
    using C = typename Math<T>::type;
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
    ParallelFor(ctx, rows, cols * 32, [&](int64_t begin, int64_t end) {
      RowView<T> view(cols, 3);
      std::vector<C> e_buffer(cols);
      Row<C> e(e_buffer.data(), cols);
      for (int64_t r = begin; r < end; ++r) {
        ConstRow<C> xr(view.in(xp + r * cols, cols, 0), cols);
        ConstRow<C> dyr(view.in(dyp + r * cols, cols, 1), cols);
        Row<C> dxr(view.out(dxp + r * cols, cols, 2), cols);
        e = (xr - xr.maxCoeff()).exp();
        const C inv = C(1) / e.sum();
        const C dot = (e * dyr).sum() * inv;  // sum(dy * y)
        dxr = e * inv * (dyr - dot);
        view.store(dxr.data(), dxp + r * cols, cols);
      }
    });
  }
};

STRATBENCH_REGISTER_CPU("StableSoftmax", StableSoftmaxCpu, StableSoftmaxGradCpu)
STRATBENCH_REGISTER_GPU("StableSoftmax", true, SoftmaxForwardGpu, SoftmaxGradGpu)

}  // namespace
}  // namespace stratbench
