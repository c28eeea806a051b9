// StratbenchFloor: an op that does no work (its output is its input; its gradient
// StratbenchFloorGrad passes dy through), on every device and dtype.  Timed in the same
// step as a real op, it gives the custom_op strategy's call floor (stratbench/timing.py).
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

REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME).Device(tensorflow::DEVICE_CPU), Forward<0>);
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Grad").Device(tensorflow::DEVICE_CPU), Forward<1>);
#ifdef STRATBENCH_CUDA
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME).Device(tensorflow::DEVICE_GPU), Forward<0>);
REGISTER_KERNEL_BUILDER(Name(STRATBENCH_OP_NAME "Grad").Device(tensorflow::DEVICE_GPU), Forward<1>);
#endif

}  // namespace stratbench
