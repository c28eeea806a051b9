"""native: the op's TensorFlow code (its spec's `native`), run eagerly: the eager baseline."""

DTYPES = ("float16", "bfloat16", "float32", "float64")
DEVICES = ("CPU", "GPU")
XLA_COMPATIBLE = True
SERIALIZABLE = True


def availability(spec):
    return True, ""


def implement(spec):
    return spec.code("native")
