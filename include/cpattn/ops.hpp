#pragma once
// The single-device ops. Each runs on the device of its tensors (all tensors of one call
// must share it) and takes an optional Context (stream, workspace).
//
// Shapes: N = partials (CP ranks), B = rows (tokens), H = heads, D = head dim.
// Data: f32, f16, bf16 (a merge's out may also be fp8_e4m3, see MergeOptions::out_scale).
// LSE: f32, f16, bf16. All math in f32; each output is rounded once (round to nearest even).
// sanitize(x): NaN and +inf become -inf.
#include <cstdint>
#include <limits>

#include "cpattn/context.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn {

// LSE units: natural log (vLLM, FlashAttention) or log2 (FlashInfer).
enum class LseBase : uint8_t { e, two };

struct MergeOptions {
  LseBase lse_base = LseBase::e;
  // Optional [N, B] int32/int64 KV lengths of each partial: a partial of a row whose
  // length is 0 counts as empty (weight 0) whatever its lse holds.
  const TensorView* kv_lens = nullptr;
  // fp8 output of the merges (merge_attn_states, merge_attn_states_varlen), as vLLM's CUDA
  // merge offers: with an fp8_e4m3 `out`, a one-element f32 tensor on the tensors' device
  // holding the per-tensor scale; out = round(merged / scale), saturating at +-448 (NaN stays
  // NaN). Required with an fp8_e4m3 out and refused with any other out dtype. The scale is read
  // on the device (no host sync): a scale of 0 or below gives what the division gives.
  const TensorView* out_scale = nullptr;
};

// merge_attn_states: outs [N, B, H, D], lses [N, B, H] -> out [B, H, D], out_lse [B, H].
//   m = max_r sanitize(lse_r); lse = m + log(sum_r exp(sanitize(lse_r) - m));
//   out = sum_r exp(sanitize(lse_r) - lse) * outs_r.
// A partial with weight 0 contributes exact zeros even if its outs row holds NaN/inf.
// A row whose partials are all empty gets lse = -inf and out = 0 (vLLM's Triton functions give NaN).
// out_lse may be nullptr. Any strides (outputs: no zero strides on dims of size > 1).
void merge_attn_states(const TensorView& outs, const TensorView& lses, const TensorView& out,
                       const TensorView* out_lse = nullptr, const MergeOptions& options = {},
                       Context* ctx = nullptr);

// merge_attn_states_varlen: a variable number of partials per row (split-KV decode, as
// FlashInfer's VariableLengthMergeStates). outs [P, H, D] holds every row's partials back to
// back, lses [P, H]; offsets [B + 1] int32/int64: row b's partials are p in
// [offsets[b], offsets[b + 1]) -> out [B, H, D], out_lse [B, H] (optional). Same math, empty
// rules and fp8 output as merge_attn_states; a row with no partials (offsets[b] ==
// offsets[b + 1]) gets lse = -inf and out = 0. Any number of partials per row. Partials of
// [0, P) no row names are not read. options.kv_lens is refused (leave an empty partial out of
// its row, or give it lse -inf). CPU checks offsets (offsets[0] >= 0, non-decreasing,
// offsets[B] <= P) and throws; CUDA never reads them on the host: each row's range is clamped
// into [0, P] (a decreasing pair is an empty row).
void merge_attn_states_varlen(const TensorView& outs, const TensorView& lses, const TensorView& offsets,
                              const TensorView& out, const TensorView* out_lse = nullptr,
                              const MergeOptions& options = {}, Context* ctx = nullptr);

// correct_attn_out: out [B, H, D] (this rank's partial), lses [N, B, H] (all ranks'),
// rank in [0, N) -> new_out = out * exp(sanitize(lses[rank]) - lse), out_lse = lse [B, H].
// new_out may be `out` itself (in place, vLLM's behaviour) or a separate tensor.
void correct_attn_out(const TensorView& out, const TensorView& lses, int64_t rank,
                      const TensorView& new_out, const TensorView* out_lse = nullptr,
                      const MergeOptions& options = {}, Context* ctx = nullptr);

struct PackOptions {
  // Value for rows past a sequence's end (pack only). Converted to the element type;
  // integer types need an exactly representable value.
  double pad_value = -std::numeric_limits<double>::infinity();
  // `lengths` holds B+1 prefix offsets (cu_seqlens) instead of B lengths.
  bool cu_seqlens = false;
};

// pack_seq: x [T, ...] -> out [B, L, ...]. Row t < min(len_b, L) of sequence b is
// x[start_b + t]; the other rows hold pad_value. L = out.shape[1]; lengths past L are
// truncated (the tail is dropped). Trailing dims must match and be contiguous; x and out
// have the same dtype, any element size (1, 2, 4, 8 bytes). lengths: int32 or int64.
// sum(lengths) <= T: the rows of x past the sum are never read (a padded token batch).
// CPU checks lengths (negative, sum > T) and throws. CUDA never reads lengths on the
// host: negative lengths count as 0 and source rows past T read as pad.
void pack_seq(const TensorView& x, const TensorView& lengths, const TensorView& out,
              const PackOptions& options = {}, Context* ctx = nullptr);

// unpack_seq: packed [B, L, ...] -> out [T, ...], out[start_b + t] = packed[b, t] for
// t < len_b. sum(lengths) <= T: the rows of out past the sum are left untouched. CPU
// checks lengths (negative, a length past L, sum > T) and throws. CUDA does not: it
// writes only the rows that a valid (b, t < min(len_b, L)) maps into [0, T), and leaves
// the others (lengths past L, rows past the sum) untouched.
void unpack_seq(const TensorView& packed, const TensorView& lengths, const TensorView& out,
                const PackOptions& options = {}, Context* ctx = nullptr);

// Batch size, longest sequence and total tokens of `lengths` (or cu_seqlens), checked
// (negative lengths, decreasing offsets throw). Synchronises with the host on CUDA: this
// is the one call that does, and the one pack/unpack callers need when they do not know
// L or T already.
struct SeqLengthStats {
  int64_t batch = 0, max_len = 0, total = 0;
};
SeqLengthStats seq_length_stats(const TensorView& lengths, bool cu_seqlens = false,
                                Context* ctx = nullptr);

}  // namespace cpattn
