// StratbenchFloor: an op that does no work (its output is its input; its gradient
// StratbenchFloorGrad passes dy through), on every device and dtype.  Timed in the same
// step as a real op, it gives the custom_op strategy's call floor (stratbench/timing.py).
// StratbenchFloorCopy copies x into the fresh output TF hands it, by the elementwise
// kernels' own path (ElementwiseCpu): the most any compiled op of a forward's traffic can
// reach (benchmarks/research/compare_custom_op.py times it against the roofline), and
// StratbenchFloorAdd writes x + dy so, the same for a gradient's traffic.
#include "stratbench.h"

namespace stratbench {

REGISTER_OP(STRATBENCH_OP_NAME)
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape);

REGISTER_OP(STRATBENCH_OP_NAME "Grad")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(GradShape);

// Forwards input `kInput` as the output: no kernel launch, no copy.
template <int kInput>
class Forward : public tensorflow::OpKernel {
 public:
  explicit Forward(tensorflow::OpKernelConstruction* context) : OpKernel(context) {}
  void Compute(tensorflow::OpKernelContext* context) override { context->set_output(0, context->input(kInput)); }
};

REGISTER_OP(STRATBENCH_OP_NAME "Copy")
    .Input("x: T")
    .Output("y: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(tensorflow::shape_inference::UnchangedShape);

template <typename T>
void CopyRange(const T* x, const T*, T* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = x[i];
}

template <typename T> using CopyCpu = ElementwiseCpu<T, false, CopyRange<T>, 1>;
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Copy").Device(DEVICE_CPU).TypeConstraint<float>("T"), CopyCpu<float>);
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Copy").Device(DEVICE_CPU).TypeConstraint<double>("T"), CopyCpu<double>);

REGISTER_OP(STRATBENCH_OP_NAME "Add")
    .Input("x: T")
    .Input("dy: T")
    .Output("dx: T")
    .Attr(STRATBENCH_TYPES)
    .SetShapeFn(GradShape);

template <typename T>
void AddRange(const T* x, const T* dy, T* out, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = x[i] + dy[i];
}

template <typename T> using AddCpu = ElementwiseCpu<T, true, AddRange<T>, 1>;
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Add").Device(DEVICE_CPU).TypeConstraint<float>("T"), AddCpu<float>);
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Add").Device(DEVICE_CPU).TypeConstraint<double>("T"), AddCpu<double>);

REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME).Device(tensorflow::DEVICE_CPU), Forward<0>);
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Grad").Device(tensorflow::DEVICE_CPU), Forward<1>);
#ifdef STRATBENCH_CUDA
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME).Device(tensorflow::DEVICE_GPU), Forward<0>);
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Grad").Device(tensorflow::DEVICE_GPU), Forward<1>);
#endif

}  // namespace stratbench
