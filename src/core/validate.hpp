#pragma once
// The one validation layer: turns public arguments into checked MergeArgs / PackArgs, or
// throws cpattn::Error naming the argument, what was expected and what came. The checks
// are shared with the cp functions' validation (cp_args.cpp).
#include <initializer_list>
#include <string>

#include "../backend/args.hpp"
#include "cpattn/error.hpp"

namespace cpattn::detail {

std::string join_dtypes(std::initializer_list<DType> dtypes);
void check_ndim(const TensorView& t, const char* name, int ndim, const char* dims);
void check_dtype(const TensorView& t, const char* name, std::initializer_list<DType> allowed);
void check_dim(const TensorView& t, const char* name, int dim, int64_t expected,
               const char* what);
void check_device(const TensorView& t, const char* name, Device expected);
void check_data(const TensorView& t, const char* name);           // non-null unless empty
void check_writable(const TensorView& t, const char* name);       // no zero stride on size > 1
void check_contiguous(const TensorView& t, const char* name);
// kv_lens [N, B] of merge/correct, or [B] (N < 0) of the cp functions: int32/int64 on `device`.
void check_kv_lens(const TensorView& kv, Device device, int64_t B, int64_t N = -1);
// Throws when the memory spans of a and b overlap, unless they are the same view and
// `same_ok` (in place).
void check_no_overlap(const TensorView& a, const char* a_name, const TensorView& b,
                      const char* b_name, bool same_ok);

MergeArgs make_merge_args(const TensorView& outs, const TensorView& lses, const TensorView& out,
                          const TensorView* out_lse, const MergeOptions& options);
MergeArgs make_varlen_merge_args(const TensorView& outs, const TensorView& lses, const TensorView& offsets,
                                 const TensorView& out, const TensorView* out_lse, const MergeOptions& options);
MergeArgs make_correct_args(const TensorView& out, const TensorView& lses, int64_t rank,
                            const TensorView& new_out, const TensorView* out_lse,
                            const MergeOptions& options);
PackArgs make_pack_args(const TensorView& x, const TensorView& lengths, const TensorView& out,
                        const PackOptions& options);
PackArgs make_unpack_args(const TensorView& packed, const TensorView& lengths,
                          const TensorView& out, const PackOptions& options);
// Converts a pad value to `dtype`'s bits; integers must represent it exactly.
uint64_t pad_bits(double value, DType dtype);

}  // namespace cpattn::detail
