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

// A kernel that takes part in dependent launches is built twice, on a template flag
// DEPENDENT: with the two griddepcontrol instructions below (launched as a dependent), and
// without them (launched normally). Executed in an ordinary launch they are not free: on H200,
// in CUDA-graph replay, a two-wave merge of 25 MB took 6.2 us with them and 5.0 without, one
// of 13 MB 3.7 against 3.1 (bench/probes/small_shapes.cu). Skipping them behind a run-time
// flag left cpattn's merge of 25 MB at 6.45 us; the variant without them runs it in 6.19.

// The dependent variant calls this before it reads the previous kernel's output or writes
// what that kernel reads or writes; before the wait it may read what the previous kernel only
// reads and write memory the previous kernel does not touch. In every launch some thread
// calls it (each thread that owns work does, on every path), so the grid cannot complete
// before the previous kernel: the work after it on the stream relies on that.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets a dependent launch of the next kernel be scheduled now: that kernel still waits in
// wait_for_previous_kernel() for this one to finish, so this orders nothing. A dependent
// launched after a kernel that never signals starts when that kernel ends.
__device__ __forceinline__ void allow_next_kernel_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), or a dependent launch of it when
// `as_dependent` (the caller has checked pdl_supported()). Only for kernels that call
// wait_for_previous_kernel() before they touch the previous kernel's output or what it still
// reads, and in every launch before the grid ends.
template <class... Params, class... Args>
void launch_as(void (*kernel)(Params...), bool as_dependent, dim3 grid, dim3 block, size_t smem, Stream stream,
               Args&&... args) {
  if (!as_dependent) {
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

// The two variants of one kernel: `dependent` (built with DEPENDENT = true) as a dependent
// launch where `pdl` is set and the current device runs it (pdl_supported()), else
// `ordinary` (DEPENDENT = false) launched normally.
template <class... Params, class... Args>
void launch(void (*ordinary)(Params...), void (*dependent)(Params...), dim3 grid, dim3 block, size_t smem, Stream stream,
            bool pdl, Args&&... args) {
  const bool as_dependent = pdl && pdl_supported();
  launch_as(as_dependent ? dependent : ordinary, as_dependent, grid, block, smem, stream, std::forward<Args>(args)...);
}

}  // namespace cpattn::cuda
