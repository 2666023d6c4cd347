#pragma once
// CPU kernels. Arguments arrive validated (src/core/validate.cpp).
#include <cstddef>

#include "../backend/args.hpp"

namespace cpattn::cpu {

// Elements a call must touch before its OpenMP region runs on more than one thread: below it,
// waking the team costs more than the work (microseconds, and milliseconds when a thread of
// the team is descheduled on a busy machine).
constexpr int64_t kParallelMinElements = int64_t{1} << 16;

void merge(const detail::MergeArgs& args);                 // merge and correct
// merge_by_row.cpp: the merges with offsets (varlen) or fp8 output; merge() sends them there
void merge_by_row(const detail::MergeArgs& args);
void pack(const detail::PackArgs& args);                   // pack and unpack; checks lengths
// dst[i] = sum_r srcs[r][i] in f32 (rank order), rounded once; dst may be one of srcs.
void sum_buffers(const void* const* srcs, int count_srcs, void* dst, size_t count, DType dtype);

}  // namespace cpattn::cpu
