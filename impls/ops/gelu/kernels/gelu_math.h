// gelu's arithmetic on one packet, in a header of its own so that
// benchmarks/research/gelu_cost.cc can time the very code the op runs.
#pragma once

#include "exp.h"

namespace stratbench {

constexpr double kC = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kA = 0.044715;

// gelu (dy unused) or dy * gelu' on one packet of the arithmetic type S, or on one S where
// Eigen has no vectorised tanh for it (double), through Eigen's packet functions: Eigen's
// array expressions over AVX-512 ran gelu's forward 1.3x slower than AVX2 (400K float32).
template <typename P, bool kGrad>
P GeluPacket(const P& x, const P& dy) {
  using namespace Eigen::internal;
  using S = typename unpacket_traits<P>::type;
  const P x2 = pmul(x, x);
  if constexpr (kGrad) {
    // 0.5 (1 + tanh(u)) as s = sigmoid(2u) = 1 / (1 + e), e = exp(-2u), and 1 - tanh(u)^2 as
    // 4 s (1 - s), with 1 - s = e s: exact in both tails, where Eigen's vectorised tanh is
    // exactly -1 below u = -8 or so (it zeroed the gradient for x < -4.8).  -2u is clamped to
    // exp's float range.  The forward keeps tanh: there the lost tail is under 1e-6, and the
    // exp form ran no faster (0.25 against 0.24 ns per element, AVX-512, one thread in L1).
    const P one = pset1<P>(S(1));
    const P minus_2u = pmul(x, pmadd(pset1<P>(S(-2 * kC * kA)), x2, pset1<P>(S(-2 * kC))));
    const P e = ExpPacket(pmax(pmin(minus_2u, pset1<P>(S(88))), pset1<P>(S(-87))));
    const P s = pdiv(one, padd(one, e));
    const P du = pmadd(pset1<P>(S(3 * kC * kA)), x2, pset1<P>(S(kC)));  // du/dx
    const P ds = pmul(pmul(pset1<P>(S(2)), x), pmul(s, pmul(e, s)));    // x * d(s)/du
    return pmul(dy, pmadd(ds, du, s));
  } else {
    const P u = pmul(pset1<P>(S(kC)), pmadd(pmul(pset1<P>(S(kA)), x), x2, x));
    const P half_x = pmul(pset1<P>(S(0.5)), x);
    return pmadd(half_x, ptanh(u), half_x);
  }
}

}  // namespace stratbench
