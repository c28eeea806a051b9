"""GELU, tanh approximation (Hendrycks & Gimpel 2016): the activation of BERT and GPT-2,
often written by hand, and shipped by TensorFlow as tf.nn.gelu(approximate=True)."""

from impls.spec import OpSpec

SPEC = OpSpec(
    name="gelu",
    summary="gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    kind="elementwise",
    reference=f"{__name__}.reference:gelu",
    reference_grad=f"{__name__}.reference:gelu_grad",
    native=f"{__name__}.tf_ops:gelu",
    numpy=f"{__name__}.reference:np_gelu",
    numpy_grad=f"{__name__}.reference:np_gelu_grad",
    scalar=f"{__name__}.reference:gelu_scalar",
    scalar_grad=f"{__name__}.reference:d_gelu_scalar",
    builtin=f"{__name__}.tf_ops:builtin_gelu",
    custom_op="stratbench_gelu",  # TensorFlow has a Gelu op of its own
    check_values=f"{__name__}.reference:check_values",
    # Wider than the default: where tanh saturates (|x| 3..5), 1 - t^2 and 1 + t cancel, so
    # TF's own ops in float32 miss the gradient by up to 2e-6 (tf.nn.gelu, XLA: measured on
    # the check values), and tf.nn.gelu in float64 by 3e-9.
    tolerances={"float64": (1e-8, 1e-8), "float32": (2e-5, 4e-6),
                "float16": (5e-3, 4e-3), "bfloat16": (4e-2, 3e-2)},
    mlp_position="hidden",
)
