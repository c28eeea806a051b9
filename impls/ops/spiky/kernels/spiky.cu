// spiky's CUDA kernels and their launchers (gpu.h's signature), for the TensorFlow op
// (spiky.cc) and, as-is, for the standalone harness (benchmarks/research/gpu_harness.py),
// so the kernels measured on a GPU are the ones the op runs.
#include "stratbench.cuh"

namespace stratbench {
namespace {

// r = x - floor(x) is floor-mod by 1; NaN (from NaN or +-inf) fails r <= 0.5 and gives 0.
template <typename C> __device__ __forceinline__ bool spiky_keep(C x, C* r) {
  *r = x - floor(x);
  return *r <= C(0.5);
}

struct Forward {  // y = r or 0
  template <typename C> __device__ C operator()(C x, C) const {
    C r;
    return spiky_keep(x, &r) ? r : C(0);
  }
};
struct Grad {  // dx = dy or 0, the mask recomputed from x
  template <typename C> __device__ C operator()(C x, C dy) const {
    C r;
    return spiky_keep(x, &r) ? dy : C(0);
  }
};

}  // namespace

int ForwardGpu(DType t, const void* x, const void* dy, void* y, int64_t rows, int64_t cols, void* stream) {
  return launch_elementwise<Forward, false>(t, x, dy, y, rows, cols, stream);
}
int GradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream) {
  return launch_elementwise<Grad, true>(t, x, dy, dx, rows, cols, stream);
}

}  // namespace stratbench

STRATBENCH_GPU_ENTRY()
