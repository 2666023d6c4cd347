#pragma once
// Context-parallel combination across the ranks of a Communicator. Every rank calls the
// same function with the same shapes; rank r holds its partial out [B, H, D] and lse
// [B, H] computed over its own KV shard.
#include <string>

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

// The three cp functions, one name each (the CLI and the bench use the same enum).
enum class CpOp : uint8_t { rs, ar, a2a };
const char* cp_op_name(CpOp op);  // "cp_lse_ag_out_rs", "cp_lse_ag_out_ar", "cp_lse_a2a_merge"

// How the cp functions move data between ranks.
enum class CpPath : uint8_t {
  // direct where it runs and is the faster of the two for the call's size (see cp_plan),
  // collectives otherwise; never an error
  automatic,
  // the Communicator's collectives (any backend)
  collectives,
  // one kernel per call over NVLink symmetric memory: every rank stores its partial into
  // its peers' registered buffers, waits on a device-side barrier, and merges in f32. Needs
  // an NcclComm whose ranks share one NVLink domain (NCCL >= 2.28 symmetric windows);
  // elsewhere the call throws, naming the reason.
  direct,
};
const char* cp_path_name(CpPath path);  // "auto", "collectives", "direct"

struct CpOptions {
  LseBase lse_base = LseBase::e;
  // Optional [B] int32/int64 local KV lengths: rows with 0 are empty shards on this rank
  // (their lse and out are ignored, whatever the attention kernel left there).
  const TensorView* kv_lens = nullptr;
  // Optional merged-lse output: [B, H/N] for rs and a2a, [B, H] for ar.
  const TensorView* out_lse = nullptr;
  ConsistencyCheck check_consistency = ConsistencyCheck::first_call;
  CpPath path = CpPath::automatic;
};

// The cp function of `op`, for callers that choose it at run time.
void cp_combine(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
                const CpOptions& options = {}, Context* ctx = nullptr);

// The transport a call with these arguments takes, and why: for CpPath::automatic, the
// direct path where the communicator offers it and this rank's out (B * H * D elements)
// is at most direct_auto_max_bytes(op), the collectives otherwise. `reason` says why
// direct is not taken (empty when it is). For CpPath::direct where it cannot run, path
// is direct and `reason` the error the call raises. Never throws.
struct CpPlan {
  CpPath path = CpPath::collectives;
  std::string reason;
};
CpPlan cp_plan(CpOp op, const TensorView& out, Communicator& comm, const CpOptions& options = {});
// The size of this rank's out up to which CpPath::automatic takes the direct path, from the
// crossover measured on 2 H200s over NVLink (docs/performance.md, "Multi-GPU"): rs and a2a
// move each partial once, and the direct path was faster at every size measured (up to
// 256 MiB); ar sends every rank's whole output to every peer and is overtaken by the
// collectives between 32 and 256 MiB. Past it the symmetric buffers would also grow large
// (2 x N x the per-owner slice).
constexpr size_t direct_auto_max_bytes(CpOp op) { return op == CpOp::ar ? size_t{64} << 20 : size_t{256} << 20; }

// All-gather the LSEs, correct the local output, reduce-scatter (sum) over heads: rank r
// gets heads [r*H/N, (r+1)*H/N) in result [B, H/N, D] (contiguous). H % N != 0 throws.
// The reduction runs in the data dtype (as in vLLM's Triton functions). Size 1 copies out to result.
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
