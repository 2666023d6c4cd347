#pragma once
// pack/unpack cases shared by the CPU and CUDA tests.
#include <vector>

#include "test_data.hpp"

namespace cpattn::testing {

inline std::vector<PackCase> pack_matrix(bool for_unpack) {
  std::vector<PackCase> cases;
  const std::vector<std::vector<int64_t>> length_sets = {
      {3, 1, 4}, {0, 2, 5}, {2, 0, 3}, {4, 1, 0}, {0, 0, 0}, {7}, {}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {0}};
  const DType dtypes[] = {DType::bf16, DType::f32, DType::f16, DType::fp8_e4m3, DType::fp8_e5m2,
                          DType::u8,   DType::i8,  DType::i32, DType::i64,      DType::f64};
  const std::vector<std::vector<int64_t>> features = {{8}, {3}, {4, 5}, {}, {64, 2}, {0}};
  const Layout layouts[] = {Layout::contiguous, Layout::unaligned, Layout::reversed};
  uint32_t seed = 1;
  for (DType dt : dtypes)
    for (const auto& lengths : length_sets) {
      PackCase c;
      c.dtype = dt;
      c.lengths = lengths;
      c.features = features[seed % features.size()];
      c.layout = layouts[seed % 3];
      c.cu_seqlens = seed % 4 == 1;
      c.index_dtype = seed % 2 ? DType::i32 : DType::i64;
      c.pad_value = dtype_is_float(dt) ? (seed % 3 ? -1.0 / 0.0 : 0.5) : 7.0;
      c.seed = seed++;
      cases.push_back(c);
    }
  if (!for_unpack) {  // max_len shorter than some lengths: tails dropped
    PackCase c;
    c.lengths = {5, 1, 3};
    c.max_len = 2;
    cases.push_back(c);
    c.max_len = 0;
    cases.push_back(c);
  }
  // a padded token batch: T past the sum, the extra rows NaN (never read, never written)
  for (const auto& lengths : std::vector<std::vector<int64_t>>{{3, 1, 4}, {0, 0}, {}, {2, 0, 5}}) {
    for (int variant = 0; variant < 4; ++variant) {
      PackCase c;
      c.lengths = lengths;
      c.extra_tokens = 1 + 16 * variant;
      c.dtype = variant % 2 ? DType::fp8_e4m3 : DType::bf16;
      c.cu_seqlens = variant >= 2;
      c.index_dtype = variant == 1 ? DType::i32 : DType::i64;
      c.layout = variant == 3 ? Layout::reversed : Layout::contiguous;
      c.seed = seed++;
      cases.push_back(c);
    }
  }
  // many sequences: the CUDA scan of the lengths in passes of 4096 (two and a part), zeros
  // among them, both index dtypes
  for (DType index : {DType::i32, DType::i64}) {
    PackCase c;
    c.lengths.resize(9001);
    for (size_t i = 0; i < c.lengths.size(); ++i) c.lengths[i] = static_cast<int64_t>((i * 7 + i / 5) % 4);
    c.features = {2};
    c.index_dtype = index;
    c.seed = seed++;
    cases.push_back(c);
  }
  // the CUDA scan launches the fewest threads (32 to 1024) whose tile of 4 lengths each holds
  // B: counts at and around each size and tile edge, zeros among the lengths
  for (int64_t count : {1, 33, 100, 128, 129, 300, 513, 1025, 2049, 4096, 4097}) {
    PackCase c;
    c.lengths.resize(static_cast<size_t>(count));
    for (size_t i = 0; i < c.lengths.size(); ++i) c.lengths[i] = static_cast<int64_t>((i * 5 + i / 3) % 5);
    c.features = {4};
    c.index_dtype = count % 2 ? DType::i32 : DType::i64;
    c.cu_seqlens = count == 300;
    c.seed = seed++;
    cases.push_back(c);
  }
  {  // thousands of empty sequences: a copy grid of pad rows only
    PackCase c;
    c.lengths.assign(3000, 0);
    c.max_len = 2;
    c.features = {8};
    c.seed = seed++;
    cases.push_back(c);
  }
  PackCase longer;  // max_len longer than every sequence: extra padding rows
  longer.lengths = {2, 3};
  longer.max_len = 6;
  longer.pad_value = 0.0;
  cases.push_back(longer);
  return cases;
}

}  // namespace cpattn::testing
