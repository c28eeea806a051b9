// What bounds the compiled softmax's CPU kernel, one thread, rows in L1: nanoseconds per
// element of each step of a row (max, exp, sum, scale), with Eigen's vectorised exp and
// with the kernel's own ExpNonPositive, and the latter's largest relative error over
// [-104, 0].  It includes the kernel source itself, so it times the code the op runs.
//
//   TFINC=$(.venv/bin/python -c "import tensorflow as tf; print(tf.sysconfig.get_include())")
//   g++ -O3 -DNDEBUG -mavx2 -mfma -mf16c -fno-trapping-math -fno-math-errno -std=c++17 \
//       -I"$TFINC" benchmarks/research/softmax_exp_cost.cc -o /tmp/softmax_exp_cost && /tmp/softmax_exp_cost
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "unsupported/Eigen/CXX11/Tensor"

#include "ns_per_element.h"
#include "../../impls/kernels/exp.h"

using Array = Eigen::Array<float, Eigen::Dynamic, 1>;

__attribute__((noinline)) void ExpLoop(const float* __restrict x, float m, float* __restrict e, int64_t n) {
  for (int64_t i = 0; i < n; ++i) e[i] = stratbench::ExpNonPositive(x[i] - m);
}

int main() {
  const int64_t n = 2048;  // a row of the 4096x2048 case: 8 KiB, in L1
  const int reps = 200000;
  Array x(n), e(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = 4 * std::sin(0.37 * i);
  volatile float sink;
  const float m = x.maxCoeff();
  std::printf("step (one thread, %lld-element row in L1)   ns/element\n", static_cast<long long>(n));
  std::printf("max                                       %.3f\n", NsPerElement([&] { sink = x.maxCoeff(); }, n, reps));
  std::printf("exp, Eigen                                %.3f\n", NsPerElement([&] { e = (x - m).exp(); }, n, reps));
  std::printf("exp, ExpNonPositive (the kernel's)        %.3f\n",
              NsPerElement([&] { ExpLoop(x.data(), m, e.data(), n); }, n, reps));
  std::printf("sum                                       %.3f\n", NsPerElement([&] { sink = e.sum(); }, n, reps));
  std::printf("scale                                     %.3f\n", NsPerElement([&] { y = e * 0.5f; }, n, reps));
  std::printf("row: max, exp, sum, scale (kernel's exp)  %.3f\n", NsPerElement([&] {
                ExpLoop(x.data(), x.maxCoeff(), e.data(), n);
                y = e * (1 / e.sum());
              }, n, reps));
  double worst = 0;
  for (double v = -104; v <= 0; v += 1e-4) {
    const double want = std::exp(static_cast<double>(static_cast<float>(v)));
    if (want > 1.2e-38) worst = std::max(worst, std::fabs(stratbench::ExpNonPositive(static_cast<float>(v)) - want) / want);
  }
  std::printf("ExpNonPositive largest relative error on [-104, 0] (normal results): %.3g\n", worst);
}
