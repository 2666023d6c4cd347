#pragma once
// Float64 references used by tests, `cpattn verify` and `cpattn demo`. Plain loops over
// strided views, written for clarity, never for speed. Inputs may be any dtype/device-cpu.
#include <cstdint>
#include <vector>

#include "cpattn/ops.hpp"

namespace cpattn::reference {

// Element `index` of a host array of `dtype`, as f64; and the other way: float formats
// through f32, rounded to nearest even, integers truncated toward zero (test inputs).
double load_element(const void* data, DType dtype, int64_t index);
void store_element(void* data, DType dtype, int64_t index, double value);
double load(const TensorView& t, int64_t offset);  // element at `offset` (elements), as f64
int64_t offset_of(const TensorView& t, std::initializer_list<int64_t> index);

// Results as dense row-major f64 arrays: out [B*H*D], lse [B*H].
struct MergeResult {
  std::vector<double> out, lse;
};
MergeResult merge_attn_states(const TensorView& outs, const TensorView& lses,
                              const MergeOptions& options = {});
MergeResult correct_attn_out(const TensorView& out, const TensorView& lses, int64_t rank,
                             const MergeOptions& options = {});

// Attention of one query per (row, head) against that row's first kv_len[b] keys:
// q [B, H, D], k/v [B, S, kv_heads, D] (S >= max kv_len; head h reads KV head
// h / (H / kv_heads), as in GQA), scores scaled by `scale`.
// Returns out [B*H*D] and natural-log lse [B*H]; rows with no keys get out 0, lse -inf.
// `kv_begin`/`kv_end` select a shard [begin, end) of each row's keys (clamped to kv_len).
MergeResult attention(const std::vector<double>& q, const std::vector<double>& k,
                      const std::vector<double>& v, int64_t B, int64_t S, int64_t H, int64_t D,
                      const std::vector<int64_t>& kv_len, double scale,
                      const std::vector<int64_t>* kv_begin = nullptr,
                      const std::vector<int64_t>* kv_end = nullptr, int64_t kv_heads = 0 /* = H */);

// A context-parallel decode problem: random q [B,H,D], k/v [B,S,1,D] (one KV head shared
// by all query heads, as MLA decode reads its latent cache; keeps MLA-sized demos in
// memory), per-row KV lengths in [0, S] that include rows shorter than `ranks` (so some
// shards are empty) and an empty row; each row's keys split into `ranks` contiguous
// shards. Holds the unsplit f64 result and every rank's partial (out, natural-log lse)
// over its shard.
struct CpAttention {
  int64_t B = 0, S = 0, H = 0, D = 0, ranks = 0;
  double scale = 1.0;
  std::vector<double> q, k, v;
  std::vector<int64_t> kv_len;
  std::vector<std::vector<int64_t>> shard_begin, shard_end, shard_len;  // [rank][row]
  MergeResult full;
  std::vector<MergeResult> partial;  // [rank]
};
CpAttention make_cp_attention(int64_t B, int64_t S, int64_t H, int64_t D, int64_t ranks, uint32_t seed);

}  // namespace cpattn::reference
