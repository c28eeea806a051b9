"""spiky: the Stack Overflow seed's activation (../shared/seeds), r = x mod 1 where r <= 0.5, else 0."""

from impls.spec import OpSpec

SPEC = OpSpec(
    name="spiky",
    summary="spiky(x) = r if r <= 0.5 else 0, r = x mod 1 (floor-mod); gradient 1 where kept",
    kind="elementwise",
    reference=f"{__name__}.reference:spiky",
    reference_grad=f"{__name__}.reference:spiky_grad",
    native=f"{__name__}.tf_ops:spiky",
    numpy=f"{__name__}.reference:np_spiky",
    numpy_grad=f"{__name__}.reference:np_spiky_grad",
    scalar=f"{__name__}.reference:spiky_scalar",
    scalar_grad=f"{__name__}.reference:d_spiky_scalar",
    custom_op="spiky",
    input_scale=8.0,  # values spread over several periods
    check_values=f"{__name__}.reference:check_values",
    smooth_values=f"{__name__}.reference:smooth_values",
    mlp_position="hidden",
)
