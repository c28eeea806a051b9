"""The numerically stable softmax of TensorFlow's StopGradient page (../shared/seeds), and
its ablation: `softmax` puts stop_gradient on the max, `softmax_nosg` differentiates
through it (the same values and gradients; what stop_gradient buys is speed)."""

from impls.spec import OpSpec

_shared = dict(
    kind="axis",
    reference=f"{__name__}.reference:softmax",
    reference_grad=f"{__name__}.reference:softmax_grad",
    check_values=f"{__name__}.reference:check_values",
    mlp_position="output",  # the benchmark MLP's output probabilities
)

SPECS = [
    OpSpec(
        name="softmax",
        summary="exp(x - m) / sum(exp(x - m)) along an axis, m = stop_gradient(max(x))",
        native=f"{__name__}.tf_ops:softmax",
        numpy=f"{__name__}.reference:np_softmax",
        numpy_grad=f"{__name__}.reference:np_softmax_grad",
        grad_from_output=True,  # dx = y * (dy - sum(dy * y))
        builtin=f"{__name__}.tf_ops:builtin_softmax",
        custom_op="stable_softmax",
        **_shared,
    ),
    OpSpec(
        name="softmax_nosg",
        summary="the stable softmax without stop_gradient on the max (an ablation)",
        native=f"{__name__}.tf_ops:softmax_nosg",
        # Up to 1024x1024: XLA's compile time for its backward grows with the shape (2 s at
        # 256x1024, 6 s at 1024x1024, 46 s at 4096x2048 on the 2-core machine), which alone
        # would blow the default run's 5 minutes.  --shapes 4096x2048 measures it.
        sizes=((128, 128), (1024, 1024)),
        **_shared,
    ),
]
