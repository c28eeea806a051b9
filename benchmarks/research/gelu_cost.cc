// What gelu's compiled kernel spends on arithmetic: nanoseconds per element, one thread,
// 4096 floats in L1, of the kernel's own forward and gradient (GeluPacket, included from
// the kernel's header) against the forms tried instead, and the gradient's largest error
// against float64 on [-20, 20].
//
//   TFINC=$(.venv/bin/python -c "import tensorflow as tf; print(tf.sysconfig.get_include())")
//   g++ -O3 -DNDEBUG -mavx512f -mavx512vl -mavx512dq -mavx512bw -mavx2 -mfma -mf16c -fno-trapping-math \
//       -fno-math-errno -Wno-ignored-attributes -std=c++17 -I"$TFINC" -Iimpls/kernels benchmarks/research/gelu_cost.cc -o /tmp/gelu_cost
//   /tmp/gelu_cost      (the avx2 build: drop the -mavx512 flags)
#include <cmath>
#include <cstdio>
#include <vector>

#include "ns_per_element.h"
#include "../../impls/ops/gelu/kernels/gelu_math.h"

using namespace Eigen::internal;
using P = packet_traits<float>::type;
using stratbench::kA;
using stratbench::kC;

// Forward as x * sigmoid(2u) = x / (1 + exp(-2u)), with the kernel's exp.
P ForwardFromExp(const P& x, const P&) {
  const P minus_2u = pmul(x, pmadd(pset1<P>(float(-2 * kC * kA)), pmul(x, x), pset1<P>(float(-2 * kC))));
  const P e = stratbench::ExpPacket(pmax(pmin(minus_2u, pset1<P>(88.f)), pset1<P>(-87.f)));
  return pdiv(x, padd(pset1<P>(1.f), e));
}

// The gradient as the kernel had it before, through Eigen's pexp and 1 - s.
P GradientEigenExp(const P& x, const P& dy) {
  const P x2 = pmul(x, x);
  const P u = pmul(pset1<P>(float(kC)), pmadd(pmul(pset1<P>(float(kA)), x), x2, x));
  const P one = pset1<P>(1.f);
  const P s = pdiv(one, padd(one, pexp(pmul(pset1<P>(-2.f), u))));
  const P du = pmul(pset1<P>(float(kC)), pmadd(pset1<P>(float(3 * kA)), x2, one));
  const P ds = pmul(pmul(pset1<P>(2.f), x), pmul(s, psub(one, s)));
  return pmul(dy, pmadd(ds, du, s));
}

template <P (*F)(const P&, const P&)>
__attribute__((noinline)) void Loop(const float* x, const float* dy, float* out, long n) {
  constexpr long k = unpacket_traits<P>::size;
  for (long i = 0; i < n; i += k) pstoreu(out + i, F(ploadu<P>(x + i), ploadu<P>(dy + i)));
}

template <P (*F)(const P&, const P&)>
double WorstGradientError() {
  double worst = 0;
  for (double v = -20; v <= 20; v += 1e-4) {
    const float xf = static_cast<float>(v);
    float got[unpacket_traits<P>::size];
    pstoreu(got, F(pset1<P>(xf), pset1<P>(1.f)));
    const double x = xf, t = std::tanh(kC * (x + kA * x * x * x));
    const double want = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * kC * (1 + 3 * kA * x * x);
    worst = std::max(worst, std::fabs(got[0] - want));
  }
  return worst;
}

int main() {
  const long n = 4096;
  const int reps = 100000;
  std::vector<float> x(n), dy(n), out(n);
  for (long i = 0; i < n; ++i) x[i] = 6 * std::sin(0.37 * i), dy[i] = std::cos(0.11 * i);
  auto time = [&](auto loop) { return NsPerElement([&] { loop(x.data(), dy.data(), out.data(), n); }, n, reps); };
  std::printf("gelu arithmetic, one thread, %ld floats in L1          ns/element\n", n);
  std::printf("forward, the kernel's (Eigen's tanh)                   %.3f\n", time(Loop<stratbench::GeluPacket<P, false>>));
  std::printf("forward, x / (1 + exp(-2u)) with the kernel's exp      %.3f\n", time(Loop<ForwardFromExp>));
  std::printf("gradient, the kernel's (ExpPacket, 1 - s = e s)        %.3f\n", time(Loop<stratbench::GeluPacket<P, true>>));
  std::printf("gradient, through Eigen's pexp                         %.3f\n", time(Loop<GradientEigenExp>));
  std::printf("gradient's largest absolute error on [-20, 20]: the kernel's %.3g, through Eigen's pexp %.3g\n",
              WorstGradientError<stratbench::GeluPacket<P, true>>(), WorstGradientError<GradientEigenExp>());
}
