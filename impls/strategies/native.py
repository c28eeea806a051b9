"""native: the op's TensorFlow code (its spec's `native`), run eagerly: the eager baseline."""

from impls.strategy import Strategy


def implement(spec):
    return spec.code("native")


STRATEGY = Strategy("native", implement, mode="eager", order=30)
