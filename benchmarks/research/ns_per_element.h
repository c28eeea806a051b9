// The research benchmarks' timer: nanoseconds per element of f over `reps` calls, after one
// warm-up call (softmax_exp_cost.cc, gelu_cost.cc).
#pragma once

#include <chrono>
#include <cstdint>

template <class F>
double NsPerElement(F f, int64_t n, int reps) {
  f();
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) f();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / reps / n;
}
