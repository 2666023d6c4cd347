#pragma once
// Runs validated arguments on the backend of their device.
#include "args.hpp"
#include "cpattn/context.hpp"

namespace cpattn::detail {

// The context to run on: `ctx` if given (its device must be `device`), else the
// per-thread default.
Context& resolve_context(Context* ctx, Device device);
void run_merge(const MergeArgs& args, Context& ctx);
void run_pack(const PackArgs& args, Context& ctx);
void run_cp_direct(const DirectArgs& args, Context& ctx);
void run_sum(const void* const* srcs, int count_srcs, void* dst, size_t count, DType dtype, Context& ctx);
void run_zero(void* dst, size_t bytes, Context& ctx);
void run_copy(void* dst, const void* src, size_t bytes, Context& ctx);

}  // namespace cpattn::detail
