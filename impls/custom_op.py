"""custom_op: a compiled C++/CUDA TensorFlow op (not built yet)."""

DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("CPU",)
XLA_COMPATIBLE = False  # XLA cannot compile a custom op
SERIALIZABLE = True  # once tf.load_op_library has run in the loading process

REASON = "the compiled op is not built yet: its C++/CUDA kernels land with the compiled-op issue"


def availability():
    return False, REASON


def _unavailable(*args, **kwargs):
    raise RuntimeError(f"custom_op is unavailable: {REASON}")


FUNCTIONS = {"spiky": _unavailable, "softmax": _unavailable}
