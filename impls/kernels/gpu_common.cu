// The one definition the C++ side needs from the CUDA runtime (gpu.h).
#include <cuda_runtime.h>

#include "gpu.h"

namespace stratbench {
const char* GpuErrorString(int code) { return cudaGetErrorString(cudaError_t(code)); }
}  // namespace stratbench
