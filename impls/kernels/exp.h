// The kernels' own exp: softmax's (ExpNonPositive, in loops GCC vectorises) and gelu's
// gradient's (ExpPacket, on Eigen's packets), in a header of their own so that
// benchmarks/research/softmax_exp_cost.cc can time the very code the op runs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "Eigen/Core"

namespace stratbench {

// ExpNonPositive's and ExpPacket's constants.
struct ExpConstants {
  static constexpr float kMagicBias = 0x1.8000FEp23f, kLog2e = 0x1.715476p+0f;
  static constexpr float kLn2Hi = 0x1.62E400p-1f, kLn2Lo = 0x1.7F7D1Cp-20f;
  static constexpr float c5 = 0x1.0F9F9Cp-7f, c4 = 0x1.573A1Ap-5f, c3 = 0x1.555A80p-3f, c2 = 0x1.FFFDC6p-2f,
                         c1 = 0x1.FFFFF6p-1f;
};

// exp(x) for x <= 0 (softmax's x - max), in float: 1.7x faster than Eigen's exp with AVX2
// and FMA, within 1.7e-7 relative (measured: README, "The compiled op").  The scheme of
// XNNPACK's softmax kernels (Dukhan & Ablavatski, arXiv 2001.04438): n = round(x log2 e)
// by a magic bias that also forms 2^n, x - n ln 2 in two steps, a degree-5 polynomial.
// -inf and anything below exp's float range give 0, NaN stays NaN.  GCC vectorises a loop
// of it; without hardware FMA std::fma is a library call, so Eigen's exp is used there.
inline float ExpNonPositive(float x) {
  using K = ExpConstants;
  constexpr float kZeroBelow = -0x1.5D589Ep6f;  // ln of the smallest normal float
  float n = std::fma(x, K::kLog2e, K::kMagicBias);
  int32_t bits;
  std::memcpy(&bits, &n, sizeof bits);
  bits <<= 23;  // the low bits of n + bias, moved into the exponent: 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  n -= K::kMagicBias;
  float t = std::fma(n, -K::kLn2Hi, x);
  t = std::fma(n, -K::kLn2Lo, t);
  float p = std::fma(K::c5, t, K::c4);
  p = std::fma(p, t, K::c3);
  p = std::fma(p, t, K::c2);
  p = std::fma(p, t, K::c1);
  t *= scale;
  const float e = std::fma(t, p, scale);
  return x < kZeroBelow ? 0.0f : e;
}

#if defined(__FMA__)
constexpr bool kHaveFma = true;
#else
constexpr bool kHaveFma = false;
#endif
// ExpNonPositive where it pays (float with hardware FMA); elsewhere Eigen's or std::exp.
template <typename C>
constexpr bool kOwnExp = kHaveFma && std::is_same_v<C, float>;

// exp(x) for x <= 0 in C, one element at a time (in loops GCC vectorises).
template <typename C>
inline C ExpOne(C x) {
  if constexpr (kOwnExp<C>) {
    return ExpNonPositive(x);
  } else {
    return std::exp(x);
  }
}

// exp(z) for z in [-87, 88] (the caller clamps), on a packet P of Eigen's (or one scalar):
// ExpNonPositive's scheme where P holds floats and the build has FMA, Eigen's pexp elsewhere.
// gelu's gradient: 0.35 ns per element against 0.55 through Eigen's pexp (AVX-512, one
// thread, in L1; benchmarks/research/gelu_cost.cc).
template <typename P>
inline P ExpPacket(const P& z) {
  using namespace Eigen::internal;
  if constexpr (kHaveFma && std::is_same_v<typename unpacket_traits<P>::type, float> && unpacket_traits<P>::size > 1) {
    using PI = typename unpacket_traits<P>::integer_packet;
    using K = ExpConstants;
    const P bias = pset1<P>(K::kMagicBias);
    P n = pmadd(z, pset1<P>(K::kLog2e), bias);
    const P scale = preinterpret<P>(plogical_shift_left<23>(preinterpret<PI>(n)));  // 2^n
    n = psub(n, bias);
    P t = pmadd(n, pset1<P>(-K::kLn2Hi), z);
    t = pmadd(n, pset1<P>(-K::kLn2Lo), t);
    P p = pmadd(pset1<P>(K::c5), t, pset1<P>(K::c4));
    p = pmadd(p, t, pset1<P>(K::c3));
    p = pmadd(p, t, pset1<P>(K::c2));
    p = pmadd(p, t, pset1<P>(K::c1));
    return pmadd(pmul(t, scale), p, scale);
  } else {
    return pexp(z);
  }
}

}  // namespace stratbench
