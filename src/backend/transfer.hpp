#pragma once
// The memory steps a Communicator backend runs on its caller's device (LocalComm's copies
// and sums between the ranks' buffers). Declared here and defined by src/core
// (route.cpp), which sends each to src/cpu or src/cuda by the context's device, so a comm
// backend needs no device code of its own.
#include <cstddef>

#include "cpattn/context.hpp"

namespace cpattn::detail {

// dst[i] = sum_r srcs[r][i] in f32 (rank order), rounded once; dst may be one of srcs.
// srcs is a host array of `count_srcs` pointers on ctx's device.
void run_sum(const void* const* srcs, int count_srcs, void* dst, size_t count, DType dtype, Context& ctx);
void run_copy(void* dst, const void* src, size_t bytes, Context& ctx);  // any direction
// Returns once the work queued on ctx's stream has finished (at once on the CPU).
void wait_for_stream(Context& ctx);

}  // namespace cpattn::detail
