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
  // one head per row (row = b) with the lses strided by the batch alone, over more rows than
  // a CPU tile (64): the CPU reads a tile's lses as one run only where they sit one after
  // another, and prefetches the next tile's
  for (Layout l : {Layout::contiguous, Layout::padded, Layout::inner}) {
    MergeCase c;
    c.N = 3, c.D = 64, c.B = 70, c.H = 1, c.layout = l, c.dtype = DType::bf16, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  // calls large enough (several waves of the GPU) for the CUDA kernels' several-vectors-per-
  // lane paths: merge with N = 2 (its own kernel) and N = 3, 4; correct with N <= 8 (2 vectors
  // per lane on rows under 16 vectors with N <= 4, else 4) and with shared lses for N > 8: 2
  // and 4 lses per lane in groups of a whole row's lanes (2 or 4 vectors per lane), and for
  // N = 5-8 on rows of up to 8 vectors (groups of 4 lanes, one idle at 6 vectors; 2 lanes of
  // 2 lses at 4 vectors); odd N and padded layouts included
  for (auto [N, D, dt, l] : {std::tuple{2, 128, DType::bf16, Layout::contiguous}, {2, 64, DType::f16, Layout::padded},
                             {3, 128, DType::f32, Layout::padded}, {3, 64, DType::bf16, Layout::contiguous},
                             {4, 96, DType::f16, Layout::contiguous}, {5, 96, DType::bf16, Layout::contiguous},
                             {16, 64, DType::f32, Layout::contiguous}, {12, 256, DType::bf16, Layout::contiguous},
                             {16, 64, DType::bf16, Layout::contiguous}, {8, 64, DType::bf16, Layout::padded},
                             {7, 48, DType::f16, Layout::contiguous}, {5, 16, DType::f32, Layout::contiguous},
                             {6, 32, DType::f32, Layout::padded}}) {
    MergeCase c;
    c.N = N, c.D = D, c.dtype = dt, c.B = 2048, c.H = 17, c.layout = l, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  // correct with shared lses on rows of more than 32 lanes (f32, 4 vectors per lane): groups of
  // 4 lanes (36 lanes a row), 2 (34) and 1 (33: every lane reads all 9 lses); the rank's
  // partial in another lane than the first of its group; base 2 and kv_lens on the shared path
  // (N = 11: groups of 8 lanes, 2 lses per lane)
  for (auto [N, D, rank_seed] : {std::tuple{16, 576, 6u}, {16, 544, 4u}, {9, 528, 2u}}) {
    MergeCase c;
    c.N = N, c.D = D, c.dtype = DType::f32, c.B = 64, c.H = 17, c.adv = Adversarial::all(), c.seed = seed++ * 16 + rank_seed;
    cases.push_back(c);
  }
  {  // groups of 16 lanes, one lse per lane
    MergeCase c;
    c.N = 16, c.D = 512, c.dtype = DType::bf16, c.B = 128, c.H = 17, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  for (bool kv_lens : {false, true}) {
    MergeCase c;
    c.N = 11, c.D = 128, c.dtype = DType::bf16, c.B = 1024, c.H = 17, c.base = LseBase::two, c.seed = seed++;
    if (kv_lens) c.adv.kv_lens = true;
    else c.adv = Adversarial::all();
    cases.push_back(c);
  }
  for (auto [B, H, D] : {std::tuple{0, 4, 8}, {3, 0, 8}, {3, 4, 0}, {0, 0, 0}}) {
    MergeCase c;
    c.B = B, c.H = H, c.D = D, c.N = 3, c.seed = seed++;
    cases.push_back(c);
  }
  return cases;
}

// merge_attn_states_varlen: rows with 0, 1, a few and many (up to 300) partials, every data
// dtype and layout, the adversarial patterns, both bases, lse dtypes, int64 offsets, no lse
// output, fp8 out (saturating at a small scale), and zero sizes.
inline std::vector<VarlenCase> varlen_matrix() {
  std::vector<VarlenCase> cases;
  const Layout layouts[] = {Layout::contiguous, Layout::padded, Layout::inner, Layout::unaligned, Layout::reversed};
  const std::vector<std::vector<int64_t>> counts = {
      {2, 0, 3}, {1}, {0}, {0, 0}, {5, 1, 0, 8, 2, 16, 3}, {33, 7, 0, 64}, {300, 1}, {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}};
  uint32_t seed = 1;
  for (DType dt : {DType::f32, DType::f16, DType::bf16})
    for (int64_t D : {1, 3, 64, 96, 128, 576})
      for (size_t k = 0; k < counts.size(); k += 1 + seed % 2) {
        VarlenCase c;
        c.dtype = dt, c.D = D, c.H = D >= 576 ? 2 : 3, c.counts = counts[k];
        c.layout = layouts[seed % 5];
        if (seed % 2) c.adv = Adversarial::all();
        c.index_dtype = seed % 3 == 0 ? DType::i64 : DType::i32;
        c.seed = seed++;
        cases.push_back(c);
      }
  for (DType lse : {DType::f16, DType::bf16}) {
    VarlenCase c;
    c.lse_dtype = lse, c.D = 128, c.counts = {4, 0, 9}, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  for (Layout l : layouts) {
    VarlenCase c;
    c.base = LseBase::two, c.D = 96, c.counts = {3, 1, 0, 17}, c.layout = l, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
    c.base = LseBase::e, c.with_lse = false, c.seed = seed++;
    cases.push_back(c);
    c.with_lse = true, c.fp8_scale = seed % 2 ? 0.25 : 1.0 / 512, c.dtype = seed % 3 ? DType::bf16 : DType::f32, c.D = 128,
    c.seed = seed++;
    cases.push_back(c);
  }
  // many rows (several waves of the GPU), few and many partials each
  for (auto [rows, n, D, dt] : {std::tuple{4096, 2, 128, DType::bf16}, {512, 40, 64, DType::f16}, {64, 257, 128, DType::bf16}}) {
    VarlenCase c;
    c.counts.assign(static_cast<size_t>(rows), n);
    for (int64_t b = 0; b < rows; b += 7) c.counts[static_cast<size_t>(b)] = b % 2 ? 0 : n / 2;
    c.D = D, c.H = 8, c.dtype = dt, c.adv = Adversarial::all(), c.seed = seed++;
    cases.push_back(c);
  }
  for (auto [B, H, D] : {std::tuple{0, 4, 8}, {3, 0, 8}, {3, 4, 0}}) {
    VarlenCase c;
    c.counts.assign(static_cast<size_t>(B), 2);
    c.H = H, c.D = D, c.seed = seed++;
    cases.push_back(c);
  }
  return cases;
}

// merge_attn_states with an fp8 out: each data dtype, N and layout, the adversarial patterns;
// the scale pairs are (scale, whether it saturates some elements)
inline std::vector<std::pair<MergeCase, double>> fp8_merge_matrix() {
  std::vector<std::pair<MergeCase, double>> cases;
  const Layout layouts[] = {Layout::contiguous, Layout::padded, Layout::inner, Layout::unaligned, Layout::reversed};
  uint32_t seed = 900;
  for (DType dt : {DType::f32, DType::f16, DType::bf16})
    for (int64_t N : {1, 2, 3, 8, 16, 64})
      for (int64_t D : {3, 64, 128, 576}) {
        MergeCase c;
        c.dtype = dt, c.N = N, c.D = D, c.B = 3, c.H = D >= 576 ? 2 : 5, c.layout = layouts[seed % 5];
        if (seed % 2) c.adv = Adversarial::all();
        c.seed = seed++;
        cases.emplace_back(c, seed % 3 == 0 ? 1.0 / 1024 : 0.5);
      }
  MergeCase large;  // several waves, the paired-vector merge of large calls
  large.N = 2, large.D = 128, large.dtype = DType::bf16, large.B = 2048, large.H = 17, large.adv = Adversarial::all(), large.seed = seed++;
  cases.emplace_back(large, 0.125);
  return cases;
}

}  // namespace cpattn::testing
