"""The reference itself, against hand-worked values: if it is wrong, everything is."""

import numpy as np

from impls import reference


def test_spiky_edge_cases_by_hand():
    x = [0.5, -0.5, 1.5, -0.25, -0.75, 3.0, -4.0, 1e7 + 0.25, 1e7 + 0.75, -1e-9, np.nan, np.inf, -np.inf]
    want_y = [0.5, 0.5, 0.5, 0.0, 0.25, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0]
    want_g = [1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(reference.spiky(x), want_y)
    np.testing.assert_array_equal(reference.spiky_grad(x, np.ones(len(x))), want_g)


def test_spiky_grad_scales_dy():
    np.testing.assert_array_equal(reference.spiky_grad([0.2, 0.7], [3.0, 5.0]), [3.0, 0.0])


def test_softmax_rows_sum_to_one_and_are_shift_invariant():
    x = np.random.default_rng(0).normal(size=(4, 7))
    for axis in (0, 1, -1):
        y = reference.softmax(x, axis)
        np.testing.assert_allclose(y.sum(axis=axis), 1.0)
        np.testing.assert_allclose(reference.softmax(x + 1e4, axis), y, rtol=1e-9)


def test_softmax_vjp_matches_jacobian():
    x, dy = np.random.default_rng(1).normal(size=(2, 5))
    y = reference.softmax(x)
    jacobian = np.diag(y) - np.outer(y, y)
    np.testing.assert_allclose(reference.softmax_grad(x, dy), jacobian.T @ dy, atol=1e-15)


def test_softmax_empty_and_minus_inf():
    assert reference.softmax(np.zeros((0, 3))).shape == (0, 3)
    assert reference.softmax(np.zeros((3, 0))).shape == (3, 0)
    y = reference.softmax([[0.0, -np.inf, 0.0]])
    np.testing.assert_array_equal(y, [[0.5, 0.0, 0.5]])
