#pragma once
// The case matrix shared by the CPU and CUDA merge/correct tests.
#include <vector>

#include "test_data.hpp"

namespace cpattn::testing {

inline std::vector<int64_t> matrix_n() { return {1, 2, 3, 5, 8, 16, 64}; }
inline std::vector<int64_t> matrix_d() { return {1, 3, 64, 96, 128, 576, 1000}; }

// Every N x D with every data dtype, rotating layouts and adversarial patterns so each
// appears with every dtype; plus LSE dtypes, base 2, kv_lens and zero sizes.
inline std::vector<MergeCase> merge_matrix() {
  std::vector<MergeCase> cases;
  const Layout layouts[] = {Layout::contiguous, Layout::padded, Layout::inner, Layout::unaligned, Layout::reversed};
  uint32_t seed = 1;
  for (DType dt : {DType::f32, DType::f16, DType::bf16})
    for (int64_t N : matrix_n())
      for (int64_t D : matrix_d()) {
        MergeCase c;
        c.dtype = dt;
        c.N = N, c.D = D, c.B = 3, c.H = D >= 576 ? 2 : 5;
        c.layout = layouts[seed % 5];
        if (seed % 2) c.adv = Adversarial::all();
        c.seed = seed++;
        cases.push_back(c);
      }
  for (DType lse : {DType::f16, DType::bf16}) {
    MergeCase c;
    c.lse_dtype = lse, c.dtype = DType::bf16, c.N = 4, c.D = 128, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  for (Layout l : layouts) {
    MergeCase c;
    c.base = LseBase::two, c.N = 3, c.D = 96, c.layout = l, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
    c.base = LseBase::e, c.adv = Adversarial{}, c.adv.kv_lens = true, c.dtype = DType::bf16, c.seed = seed++;
    cases.push_back(c);
  }
  // many partials: shared-memory weights for a few rows per warp, and past that the
  // fallback kernel that recomputes them (CUDA)
  for (auto [N, D, dt] : {std::tuple{300, 3, DType::f32}, {300, 128, DType::bf16}, {5000, 3, DType::f32}}) {
    MergeCase c;
    c.N = N, c.D = D, c.dtype = dt, c.B = 2, c.H = 3, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  // calls large enough (several waves of the GPU) for the CUDA kernels' several-vectors-per-
  // lane paths: merge with N <= 4; correct with 2 vectors per lane (rows under 16 vectors,
  // N <= 4) and 4 (the rest), in each bucket of N; odd N and a padded layout included
  for (auto [N, D, dt, l] : {std::tuple{2, 128, DType::bf16, Layout::contiguous}, {3, 128, DType::f32, Layout::padded},
                             {3, 64, DType::bf16, Layout::contiguous}, {4, 96, DType::f16, Layout::contiguous},
                             {5, 96, DType::bf16, Layout::contiguous}, {16, 64, DType::f32, Layout::contiguous}}) {
    MergeCase c;
    c.N = N, c.D = D, c.dtype = dt, c.B = 2048, c.H = 17, c.layout = l, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  for (auto [B, H, D] : {std::tuple{0, 4, 8}, {3, 0, 8}, {3, 4, 0}, {0, 0, 0}}) {
    MergeCase c;
    c.B = B, c.H = H, c.D = D, c.N = 3, c.seed = seed++;
    cases.push_back(c);
  }
  return cases;
}

}  // namespace cpattn::testing
