#pragma once
// Checks shared by the CPU and CUDA tests for issue-7 guarantees: 64-bit sizes (tensors
// past 2^31 elements and bytes, checked element by element) and bitwise repeatability.
#include <gtest/gtest.h>

#include "cpattn/cpattn.hpp"

namespace cpattn::testing {

// correct_attn_out in place on bf16 [524289, 8, 512] (2^31 + 4096 elements, 4.3 GB):
// every element against w(row) * x(row, d) computed in f64.
::testing::AssertionResult correct_past_int32(Device device);

// pack_seq then unpack_seq of u8 [524289, 4096] (2^31 + 4096 bytes) in two sequences:
// every padded row and the round trip compared byte for byte (about 6.5 GB).
::testing::AssertionResult pack_unpack_past_int32(Device device);

// Same inputs and launch configuration, twice: merge, correct (with out_lse), and the cp
// functions over 3 LocalComm ranks must give bitwise identical results.
::testing::AssertionResult ops_bitwise_repeatable(Device device);

}  // namespace cpattn::testing
