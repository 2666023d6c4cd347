#pragma once
// Sends validated arguments to the backend of their device: src/cpu or src/cuda.
#include "../backend/args.hpp"
#include "../backend/transfer.hpp"
#include "cpattn/context.hpp"

namespace cpattn::detail {

// The context to run on: `ctx` if given (its device must be `device`), else the
// per-thread default.
Context& resolve_context(Context* ctx, Device device);
void run_merge(const MergeArgs& args, Context& ctx);
void run_pack(const PackArgs& args, Context& ctx);
void run_cp_direct(const DirectArgs& args, Context& ctx);

}  // namespace cpattn::detail
