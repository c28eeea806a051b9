// CUDA launchers for the stratbench ops. Plain C++ (no TensorFlow, no CUDA headers), so
// the TensorFlow op (stratbench_ops.cc) and the standalone GPU harness call the same code.
#pragma once

#include <cstdint>

namespace stratbench {

// Element types, by storage: IEEE half, bfloat16, float, double.
enum DType : int { kHalf = 0, kBFloat16 = 1, kFloat = 2, kDouble = 3 };

// Each returns 0 (cudaSuccess) or a cudaError_t code; `stream` is a cudaStream_t.
int SpikyForwardGpu(DType t, const void* x, void* y, int64_t n, void* stream);
int SpikyGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t n, void* stream);
// Softmax along the last axis of a [rows, cols] array; the gradient recomputes y from x.
int SoftmaxForwardGpu(DType t, const void* x, void* y, int64_t rows, int64_t cols, void* stream);
int SoftmaxGradGpu(DType t, const void* x, const void* dy, void* dx, int64_t rows, int64_t cols, void* stream);
const char* GpuErrorString(int code);

}  // namespace stratbench
