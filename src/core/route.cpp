// Runs validated arguments and memory steps on the backend of their device (src/cpu or
// src/cuda), on the context's stream.
#include "route.hpp"

#include <cstring>

#include "../cpu/backend.hpp"
#include "../cuda/backend.hpp"
#include "cpattn/error.hpp"

namespace cpattn::detail {

Context& resolve_context(Context* ctx, Device device) {
  if (!ctx) return Context::default_for(device);
  if (ctx->device() != device)
    throw Error("ctx", "a Context on " + device_name(device) + " (the tensors' device)",
                "a Context on " + device_name(ctx->device()));
  return *ctx;
}

// Every CUDA step runs under a DeviceGuard for the Context's device (which resolve_context
// has matched with the tensors' device).
void run_merge(const MergeArgs& a, Context& ctx) {
  if (a.B == 0 || a.H == 0) return;
  if (a.device.type == DeviceType::cuda) {
    cuda::DeviceGuard on(a.device.index, a.dst);
    cuda::merge(a, ctx.stream(), ctx.pdl());
  } else {
    cpu::merge(a);
  }
}

void run_pack(const PackArgs& a, Context& ctx) {
  if (a.device.type == DeviceType::cuda) {
    if (a.B == 0 || a.L == 0 || a.row_bytes == 0) return;
    void* ws = ctx.workspace(cuda::pack_workspace_bytes(a));
    cuda::DeviceGuard on(a.device.index, a.tokens);
    cuda::pack(a, ws, ctx.stream());
  } else {
    cpu::pack(a);
  }
}

void run_cp_direct(const DirectArgs& a, Context& ctx) {
  cuda::DeviceGuard on(a.device.index, a.result);
  cuda::cp_direct(a, ctx.stream(), ctx.pdl());
}

void run_sum(const void* const* srcs, int n, void* dst, size_t count, DType dtype, Context& ctx) {
  if (count == 0) return;
  if (ctx.device().type == DeviceType::cuda) {
    cuda::DeviceGuard on(ctx.device().index, dst);
    cuda::sum_buffers(srcs, n, dst, count, dtype, ctx.stream());
  } else {
    cpu::sum_buffers(srcs, n, dst, count, dtype);
  }
}

void run_copy(void* dst, const void* src, size_t bytes, Context& ctx) {
  if (bytes == 0 || dst == src) return;
  if (ctx.device().type == DeviceType::cuda) {
    cuda::DeviceGuard on(ctx.device().index, dst);
    cuda::memcpy_async(dst, src, bytes, ctx.stream());
  } else {
    std::memcpy(dst, src, bytes);
  }
}

void wait_for_stream(Context& ctx) {
  if (ctx.device().type == DeviceType::cuda) cuda::stream_synchronize(ctx.stream());
}

}  // namespace cpattn::detail
