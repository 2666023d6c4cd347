#pragma once
// The normalised, validated form of each op's arguments: what every backend consumes.
// Built only by src/core/validate.cpp (the single-device ops) and src/core/cp_args.cpp (the
// steps of the cp functions), so a backend never sees an unchecked tensor.
// Strides: `x_sn`, `x_sb`, `x_sh`, `x_sd`, `x_sl` are tensor x's stride over N (partials),
// B (rows), H (heads), D (head dim) and L (padded positions), in elements (PackArgs: bytes).
#include <cstdint>

#include "cpattn/comm.hpp"
#include "cpattn/cp.hpp"
#include "cpattn/ops.hpp"
#include "dtype_dispatch.hpp"

namespace cpattn::detail {

// Element offset of row (b, h):
//   b * batch_stride + (h / heads_inner) * outer_stride + (h % heads_inner) * head_stride.
// heads_inner == H (outer_stride unused) for ordinary [B, H, D] views; the cp functions split
// H into [N, H/N] to write the reduce-scatter layout directly.
struct RowMap {
  int64_t batch_stride = 0, head_stride = 0, outer_stride = 0, heads_inner = 1;
};

// merge_attn_states (rank < 0) and correct_attn_out (rank >= 0).
struct MergeArgs {
  int64_t N = 0, B = 0, H = 0, D = 0;
  int64_t rank = -1;
  LseBase lse_base = LseBase::e;
  DType dtype = DType::f32;  // data dtype of src and dst
  Device device{};
  // src: outs [N, B, H, D] (merge) or the rank's out [B, H, D] (correct; src_sn unused)
  const void* src = nullptr;
  int64_t src_sn = 0, src_sd = 1;
  RowMap src_rows;
  // lses [N, B, H]
  const void* lses = nullptr;
  DType lse_dtype = DType::f32;
  int64_t lse_sn = 0, lse_sb = 0, lse_sh = 0;
  // dst [B, H, D]
  void* dst = nullptr;
  int64_t dst_sd = 1;
  RowMap dst_rows;
  // optional dst_lse: row (b, h) for heads h in [lse_h_begin, lse_h_end) lands at
  // element dst_lse_rows(b, h - lse_h_begin)
  void* dst_lse = nullptr;
  DType dst_lse_dtype = DType::f32;
  RowMap dst_lse_rows;
  int64_t lse_h_begin = 0, lse_h_end = 0;
  // optional kv_lens [N, B]: 0 marks an empty partial
  const void* kv_lens = nullptr;
  DType kv_dtype = DType::i32;
  int64_t kv_sn = 0, kv_sb = 0;
  // optional fp8 output (merges): non-null means dst is fp8_e4m3 and out = round(merged /
  // *out_scale), saturating; the scale lives on the tensors' device
  const float* out_scale = nullptr;
  // optional offsets [B + 1] (merge_attn_states_varlen): row b's partials are p in
  // [offsets[b], offsets[b + 1]), partial p of row (b, h) at src + p * src_sn +
  // h * src_rows.head_stride and lses + p * lse_sn + h * lse_sh (batch strides 0); N is then
  // P, the partials in all
  const void* offsets = nullptr;
  DType offsets_dtype = DType::i32;
  int64_t offsets_stride = 1;
};

// pack_seq (to_padded) and unpack_seq. Offsets in bytes; rows are `row_bytes` long and
// contiguous inside.
struct PackArgs {
  bool to_padded = true;
  int64_t B = 0, L = 0, T = 0;
  int64_t row_bytes = 0, elem_bytes = 1;
  Device device{};
  // one of tokens / padded is read and the other written, as to_padded says
  char* tokens = nullptr;  // [T] rows: x for pack, out for unpack
  int64_t token_stride = 0;
  char* padded = nullptr;  // [B, L] rows: out for pack, packed for unpack
  int64_t padded_sb = 0, padded_sl = 0;
  const void* lengths = nullptr;  // [B] lengths or [B + 1] cu_seqlens
  DType lengths_dtype = DType::i32;
  int64_t lengths_stride = 1;
  bool cu_seqlens = false;
  uint64_t pad_bits = 0;  // pad value in the element type, low elem_bytes bytes
};

// One cp_* call over the direct transport (src/cuda/cp_direct.cu). Rank `rank` of N holds
// out [B, H, D] and lse [B, H]; the ranks exchange, for each owner o, the rows of the heads
// o keeps (rs/a2a: heads [o*kept, (o+1)*kept) with kept = H/N; ar: all heads, kept = H)
// through the symmetric buffers, whose layout is
//   [flags: uint32 [kMaxRanks][kMaxBlocks]] [data: 2 halves (by call parity) of N slots]
// where slot s of a half holds source rank s's rows [B * kept, D] in the data dtype,
// then its f32 lses [B * kept], the slot padded to `slot_bytes`.
struct DirectArgs {
  static constexpr int kMaxBlocks = 1024;
  static constexpr size_t kFlagsBytes = sizeof(uint32_t) * SymmetricBuffers::kMaxRanks * kMaxBlocks;
  CpOp op = CpOp::rs;
  int N = 1, rank = 0;
  int64_t B = 0, H = 0, D = 0, kept = 0;
  LseBase lse_base = LseBase::e;
  DType dtype = DType::f32;
  Device device{};
  const void* out = nullptr;  // [B, H, D]
  int64_t out_sb = 0, out_sh = 0, out_sd = 1;
  const void* lse = nullptr;  // [B, H]
  DType lse_dtype = DType::f32;
  int64_t lse_sb = 0, lse_sh = 0;
  const void* kv_lens = nullptr;  // optional [B]: 0 marks this rank's empty shard
  DType kv_dtype = DType::i32;
  int64_t kv_sb = 0;
  void* result = nullptr;  // [B, kept, D], contiguous
  void* out_lse = nullptr;  // optional [B, kept]
  DType out_lse_dtype = DType::f32;
  int64_t out_lse_sb = 0, out_lse_sh = 0;
  SymmetricBuffers buffers;
  size_t slot_bytes = 0;  // one source rank's rows and lses, 256-byte aligned
};

// Bytes of symmetric buffer a direct call needs: the flags and two halves of N slots.
inline size_t direct_slot_bytes(int64_t rows, int64_t D, size_t element_bytes) {
  const auto align = [](size_t n) { return (n + 255) / 256 * 256; };
  return align(static_cast<size_t>(rows) * static_cast<size_t>(D) * element_bytes) +
         align(static_cast<size_t>(rows) * sizeof(float));
}
inline size_t direct_buffer_bytes(int N, size_t slot_bytes) {
  return DirectArgs::kFlagsBytes + 2 * static_cast<size_t>(N) * slot_bytes;
}

inline int64_t row_offset(const RowMap& m, int64_t b, int64_t h) {
  return b * m.batch_stride + (h / m.heads_inner) * m.outer_stride + (h % m.heads_inner) * m.head_stride;
}

// The dtypes a merge or direct call reads element by element at run time (lses, kv_lens, the
// lse output), checked once per call by the backends' entry points: their accessors take
// every dtype but f16, bf16 (i64) as f32 (i32).
inline void check_element_dtypes(const MergeArgs& a) {
  check_float_dtype(a.lse_dtype, "lses dtype");
  if (a.dst_lse) check_float_dtype(a.dst_lse_dtype, "out_lse dtype");
  if (a.kv_lens) check_index_dtype(a.kv_dtype, "kv_lens dtype");
  if (a.offsets) check_index_dtype(a.offsets_dtype, "offsets dtype");
}
inline void check_element_dtypes(const DirectArgs& a) {
  check_float_dtype(a.lse_dtype, "lse dtype");
  if (a.out_lse) check_float_dtype(a.out_lse_dtype, "out_lse dtype");
  if (a.kv_lens) check_index_dtype(a.kv_dtype, "kv_lens dtype");
}

// Loads an index/length element of an int32/int64 tensor.
inline int64_t load_index(const void* p, DType dt, int64_t offset) {
  return dt == DType::i64 ? static_cast<const int64_t*>(p)[offset]
                          : static_cast<const int32_t*>(p)[offset];
}

}  // namespace cpattn::detail
