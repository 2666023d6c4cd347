// The single-device ops of include/cpattn/ops.hpp: validate, then run on the tensors' device.
#include <vector>

#include "../backend/lengths.hpp"
#include "../cuda/backend.hpp"
#include "route.hpp"
#include "validate.hpp"

namespace cpattn {

void merge_attn_states(const TensorView& outs, const TensorView& lses, const TensorView& out,
                       const TensorView* out_lse, const MergeOptions& options, Context* ctx) {
  const auto a = detail::make_merge_args(outs, lses, out, out_lse, options);
  detail::run_merge(a, detail::resolve_context(ctx, a.device));
}

void merge_attn_states_varlen(const TensorView& outs, const TensorView& lses, const TensorView& offsets,
                              const TensorView& out, const TensorView* out_lse, const MergeOptions& options,
                              Context* ctx) {
  const auto a = detail::make_varlen_merge_args(outs, lses, offsets, out, out_lse, options);
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
