// The softmax kernel's exp, in a header of its own so that
// benchmarks/research/softmax_exp_cost.cc can time the very code the op runs.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace stratbench {

// exp(x) for x <= 0 (softmax's x - max), in float: 1.7x faster than Eigen's exp with AVX2
// and FMA, within 1.7e-7 relative (measured: README, "The compiled op").  The scheme of
// XNNPACK's softmax kernels (Dukhan & Ablavatski, arXiv 2001.04438): n = round(x log2 e)
// by a magic bias that also forms 2^n, x - n ln 2 in two steps, a degree-5 polynomial.
// -inf and anything below exp's float range give 0, NaN stays NaN.  GCC vectorises a loop
// of it; without hardware FMA std::fma is a library call, so Eigen's exp is used there.
inline float ExpNonPositive(float x) {
  constexpr float kMagicBias = 0x1.8000FEp23f, kLog2e = 0x1.715476p+0f;
  constexpr float kLn2Hi = 0x1.62E400p-1f, kLn2Lo = 0x1.7F7D1Cp-20f;
  constexpr float c5 = 0x1.0F9F9Cp-7f, c4 = 0x1.573A1Ap-5f, c3 = 0x1.555A80p-3f, c2 = 0x1.FFFDC6p-2f,
                  c1 = 0x1.FFFFF6p-1f;
  constexpr float kZeroBelow = -0x1.5D589Ep6f;  // ln of the smallest normal float
  float n = std::fma(x, kLog2e, kMagicBias);
  int32_t bits;
  std::memcpy(&bits, &n, sizeof bits);
  bits <<= 23;  // the low bits of n + bias, moved into the exponent: 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  n -= kMagicBias;
  float t = std::fma(n, -kLn2Hi, x);
  t = std::fma(n, -kLn2Lo, t);
  float p = std::fma(c5, t, c4);
  p = std::fma(p, t, c3);
  p = std::fma(p, t, c2);
  p = std::fma(p, t, c1);
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

}  // namespace stratbench
