#include <cstring>
#include <vector>

#include "../cpu/backend.hpp"
#include "../cuda/backend.hpp"
#include "dispatch.hpp"
#include "validate.hpp"

namespace cpattn {
namespace detail {

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

void run_zero(void* dst, size_t bytes, Context& ctx) {
  if (bytes == 0) return;
  if (ctx.device().type == DeviceType::cuda) {
    cuda::DeviceGuard on(ctx.device().index, dst);
    cuda::memset_async(dst, 0, bytes, ctx.stream());
  } else {
    std::memset(dst, 0, bytes);
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

}  // namespace detail

void merge_attn_states(const TensorView& outs, const TensorView& lses, const TensorView& out,
                       const TensorView* out_lse, const MergeOptions& options, Context* ctx) {
  const auto a = detail::make_merge_args(outs, lses, out, out_lse, options);
  detail::run_merge(a, detail::resolve_context(ctx, a.device));
}

void correct_attn_out(const TensorView& out, const TensorView& lses, int64_t rank, const TensorView& new_out,
                      const TensorView* out_lse, const MergeOptions& options, Context* ctx) {
  const auto a = detail::make_correct_args(out, lses, rank, new_out, out_lse, options);
  detail::run_merge(a, detail::resolve_context(ctx, a.device));
}

void pack_seq(const TensorView& x, const TensorView& lengths, const TensorView& out, const PackOptions& options,
              Context* ctx) {
  const auto a = detail::make_pack_args(x, lengths, out, options);
  detail::run_pack(a, detail::resolve_context(ctx, a.device));
}

void unpack_seq(const TensorView& packed, const TensorView& lengths, const TensorView& out,
                const PackOptions& options, Context* ctx) {
  const auto a = detail::make_unpack_args(packed, lengths, out, options);
  detail::run_pack(a, detail::resolve_context(ctx, a.device));
}

SeqLengthStats seq_length_stats(const TensorView& lengths, bool cu_seqlens, Context* ctx) {
  const char* name = cu_seqlens ? "cu_seqlens" : "lengths";
  detail::check_ndim(lengths, name, 1, cu_seqlens ? "[B + 1]" : "[B]");
  detail::check_dtype(lengths, name, {DType::i32, DType::i64});
  detail::check_data(lengths, name);
  const int64_t B = lengths.shape[0] - (cu_seqlens ? 1 : 0);
  if (B < 0) throw Error(name, "B + 1 >= 1 prefix offsets", lengths.describe());
  if (lengths.device.type == DeviceType::cpu)
    return detail::scan_lengths(lengths.data, lengths.dtype, lengths.strides[0], B, cu_seqlens, nullptr);
  Context& c = detail::resolve_context(ctx, lengths.device);
  // Copy the (possibly strided) lengths to the host once: B is small next to the data.
  const int64_t n = lengths.shape[0];
  const int64_t stride = lengths.strides[0];
  const size_t esize = lengths.element_size();
  std::vector<char> host(static_cast<size_t>(n) * esize);
  cuda::DeviceGuard on(lengths.device.index, lengths.data);
  if (stride == 1 || n <= 1) {
    cuda::memcpy_to_host(host.data(), lengths.data, host.size(), c.stream());
  } else {
    for (int64_t i = 0; i < n; ++i)
      cuda::memcpy_async(host.data() + i * esize, static_cast<const char*>(lengths.data) + i * stride * int64_t(esize),
                         esize, c.stream());
    cuda::stream_synchronize(c.stream());
  }
  return detail::scan_lengths(host.data(), lengths.dtype, 1, B, cu_seqlens, nullptr);
}

}  // namespace cpattn
