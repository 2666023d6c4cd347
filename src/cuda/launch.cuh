#pragma once
// Kernel launches, optionally as programmatic dependent launches (PDL, sm_90+).
//
// A dependent launch lets the kernel's blocks be scheduled while the kernel before it on the
// stream is still running (once that one has executed griddepcontrol.launch_dependents in
// every block, or exited); griddepcontrol.wait then holds the new kernel until the previous
// one has completed and its writes are visible. Most of a decode-size merge's time is
// launch and scheduling latency, and that is the part PDL overlaps.
#include <cuda_runtime.h>

#include <utility>

#include "../backend/check_cuda.hpp"
#include "backend.hpp"

namespace cpattn::cuda {

// Every kernel launched through launch() calls this before its first global memory access
// (a read of the previous kernel's output, or a write over what it still reads). A no-op
// when the kernel was launched normally.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets a dependent launch of the next kernel be scheduled now: that kernel still waits in
// wait_for_previous_kernel() for this one to finish, so this orders nothing.
__device__ __forceinline__ void allow_next_kernel_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), as a dependent launch when `pdl` is set
// and the current device runs it (pdl_supported()); otherwise an ordinary launch.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Stream stream, bool pdl,
            Args&&... args) {
  if (!pdl || !pdl_supported()) {
    kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
    CPATTN_CHECK_LAUNCH();
    return;
  }
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  CPATTN_CHECK_CUDA(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace cpattn::cuda
