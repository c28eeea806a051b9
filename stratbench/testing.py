"""For tests of ops and strategies (yours too: an op folder's test_<op>.py): parametrise over
what is declared, impls.strategies_for(op), which builds nothing, and take the Impl with
`usable`, which skips a pair unavailable here (a compiled op that did not build) with its reason."""

import impls


def usable(op: str, strategy: str) -> "impls.Impl":
    """The Impl of (op, strategy), or the calling test skips, saying why it is unavailable here."""
    import pytest

    impl = impls.get(op, strategy)
    if not impl.available:
        pytest.skip(f"{op} under {strategy} is unavailable here: {impl.reason}")
    return impl
