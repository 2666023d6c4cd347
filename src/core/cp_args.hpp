#pragma once
// The cp functions' arguments: validate_cp_call checks a call on every rank, and the
// make_cp_* functions fill the backend arguments of each step of cp.cpp. With validate.cpp
// (the single-device ops), the only place that builds MergeArgs and DirectArgs.
#include "../backend/args.hpp"
#include "cpattn/cp.hpp"

namespace cpattn::detail {

// One rank's validated call: N ranks, out [B, H, D], the result keeps `kept` heads (H / N
// for rs and a2a, H for ar).
struct CpCall {
  CpOp op = CpOp::rs;
  int64_t N = 1, rank = 0, B = 0, H = 0, D = 0, kept = 0;
  const TensorView* out = nullptr;
  const TensorView* lse = nullptr;
  const TensorView* result = nullptr;
  const CpOptions* options = nullptr;
  CpPath path = CpPath::collectives;  // the transport, as cp_plan chose it
};

// Checks this rank's arguments (shapes, dtypes, devices, overlaps, the path) without
// talking to the other ranks; throws cpattn::Error naming the argument.
CpCall validate_cp_call_locally(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm,
                                const TensorView& result, const CpOptions& options);
// Checks locally, then (as options.check_consistency says) makes every rank agree with a
// host-side exchange of the call's signature: a local error or a mismatch between ranks
// throws on every rank, so no rank is left waiting in a collective. Every rank calls it.
CpCall validate_cp_call(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm,
                        const TensorView& result, const CpOptions& options);

// The local lse, sanitised and masked by kv_lens, as f32 into `dst` at row map `rows`: a
// merge of one partial with D = 0.
MergeArgs make_cp_mask_args(const CpCall& call, void* dst, RowMap rows);
// World size 1: the merge of the one partial, out into result (an exact copy of the
// non-empty rows, zeros for the empty ones) and the masked lse into out_lse.
MergeArgs make_cp_single_rank_args(const CpCall& call);
// Collectives, rs and ar: out corrected by the gathered lses [N, B, H] (f32) into
// `corrected` ([N, B, H/N, D] for rs, the reduce-scatter layout; result for ar).
MergeArgs make_cp_correct_args(const CpCall& call, const void* gathered_lses, void* corrected);
// Collectives, a2a: the all-to-all buffers hold N chunks of `chunk_bytes`, each the rows
// [B, H/N, D] of one destination followed (at `data_bytes`) by their f32 lses [B, H/N].
MergeArgs make_cp_pack_args(const CpCall& call, char* send, size_t data_bytes, size_t chunk_bytes);
MergeArgs make_cp_merge_args(const CpCall& call, const char* received, size_t data_bytes, size_t chunk_bytes);
// The direct transport: everything but `buffers` (the communicator's symmetric buffers of
// at least direct_buffer_bytes(N, slot_bytes)).
DirectArgs make_cp_direct_args(const CpCall& call);

}  // namespace cpattn::detail
