#pragma once
// The host-side walk over sequence lengths that pack/unpack need on both sides of the
// contract: core checks lengths with it (seq_length_stats, validation), the CPU backend
// turns them into start offsets. (The CUDA backend scans on the device: src/cuda/pack.cu.)
#include <cstdint>

#include "args.hpp"

namespace cpattn::detail {

// Walks host-resident lengths (or cu_seqlens), writes B+1 start offsets when `offsets` is
// given, and throws on negative lengths / decreasing or non-zero-based offsets.
SeqLengthStats scan_lengths(const void* lengths, DType dtype, int64_t stride, int64_t B,
                            bool cu_seqlens, int64_t* offsets);
// The checks a host-side caller can make once the stats are known: sum == T (and, for
// unpack, max length <= L).
void check_lengths_fit(const SeqLengthStats& stats, const PackArgs& args);

}  // namespace cpattn::detail
