#pragma once
// Context-parallel combination across the ranks of a Communicator. Every rank calls the
// same function with the same shapes; rank r holds its partial out [B, H, D] and lse
// [B, H] computed over its own KV shard.
#include "cpattn/comm.hpp"
#include "cpattn/ops.hpp"

namespace cpattn {

// Whether the cp functions first make every rank agree on the call (op, shapes, dtypes,
// options) with a small host-side exchange, so that a mismatch or a rank's invalid
// arguments raise the same error on every rank instead of hanging in a collective.
enum class ConsistencyCheck {
  // Once per distinct call on a communicator: the first call with a new signature pays the
  // exchange (a host sync on NCCL); later identical calls skip it, so a steady decode loop,
  // and a CUDA graph captured after one eager call, never synchronise with the host.
  first_call,
  every_call,  // every call (a host sync each time; not capturable)
  off,         // never: ranks must be known to agree
};

struct CpOptions {
  LseBase lse_base = LseBase::e;
  // Optional [B] int32/int64 local KV lengths: rows with 0 are empty shards on this rank
  // (their lse and out are ignored, whatever the attention kernel left there).
  const TensorView* kv_lens = nullptr;
  // Optional merged-lse output: [B, H/N] for rs and a2a, [B, H] for ar.
  const TensorView* out_lse = nullptr;
  ConsistencyCheck check_consistency = ConsistencyCheck::first_call;
};

// All-gather the LSEs, correct the local output, reduce-scatter (sum) over heads: rank r
// gets heads [r*H/N, (r+1)*H/N) in result [B, H/N, D] (contiguous). H % N != 0 throws.
// The reduction runs in the data dtype (as the seed's). Size 1 copies out to result.
void cp_lse_ag_out_rs(const TensorView& out, const TensorView& lse, Communicator& comm,
                      const TensorView& result, const CpOptions& options = {},
                      Context* ctx = nullptr);

// Same, all-reduce: every rank gets all heads, result [B, H, D] (contiguous).
void cp_lse_ag_out_ar(const TensorView& out, const TensorView& lse, Communicator& comm,
                      const TensorView& result, const CpOptions& options = {},
                      Context* ctx = nullptr);

// Same result as cp_lse_ag_out_rs with one collective and one rounding: each rank packs,
// per destination head slice, its partial output and f32 LSE into one buffer; one
// all-to-all moves it; the N partials are merged in f32. result [B, H/N, D] (contiguous).
void cp_lse_a2a_merge(const TensorView& out, const TensorView& lse, Communicator& comm,
                      const TensorView& result, const CpOptions& options = {},
                      Context* ctx = nullptr);

}  // namespace cpattn
