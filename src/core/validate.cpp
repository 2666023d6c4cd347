#include "validate.hpp"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "../backend/convert.hpp"

namespace cpattn::detail {
namespace {

constexpr std::initializer_list<DType> kDataDTypes = {DType::f32, DType::f16, DType::bf16};
constexpr std::initializer_list<DType> kIndexDTypes = {DType::i32, DType::i64};

std::string num(double v) {
  if (v == std::floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0)
    return std::to_string(static_cast<int64_t>(v));  // integer bounds such as 2147483647 exactly
  std::ostringstream o;
  o << v;
  return o.str();
}

// [lo, hi) byte span a view touches; empty when it has no elements.
struct Span {
  uintptr_t lo = 0, hi = 0;
  bool empty() const { return hi <= lo; }
};
Span span_of(const TensorView& t) {
  if (t.numel() == 0 || !t.data) return {};
  const auto esize = static_cast<int64_t>(t.element_size());
  int64_t lo = 0, hi = 0;
  for (int i = 0; i < t.ndim; ++i) {
    int64_t ext = 0;
    int64_t& side = t.strides[i] < 0 ? lo : hi;
    if (__builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &ext) || __builtin_mul_overflow(ext, esize, &ext) ||
        __builtin_add_overflow(side, ext, &side))
      return {0, UINTPTR_MAX};  // not addressable: treated as overlapping everything (rejected)
  }
  if (__builtin_add_overflow(hi, esize, &hi)) return {0, UINTPTR_MAX};
  const auto base = reinterpret_cast<uintptr_t>(t.data);
  return {base + static_cast<uintptr_t>(lo), base + static_cast<uintptr_t>(hi)};
}

bool same_view(const TensorView& a, const TensorView& b) {
  if (a.data != b.data || a.dtype != b.dtype || a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i] || (a.shape[i] > 1 && a.strides[i] != b.strides[i])) return false;
  return true;
}

void check_float_tensor(const TensorView& t, const char* name, int ndim, const char* dims) {
  check_ndim(t, name, ndim, dims);
  check_dtype(t, name, kDataDTypes);
  check_data(t, name);
}

RowMap rows_of(const TensorView& t) {  // [B, H, ...] view
  return RowMap{t.strides[0], t.strides[1], 0, std::max<int64_t>(t.shape[1], 1)};
}

void fill_lse_out(MergeArgs& a, const TensorView* out_lse, const std::initializer_list<const TensorView*> inputs,
                  const char* dims) {
  a.lse_h_begin = 0;
  a.lse_h_end = a.H;
  if (!out_lse) return;
  check_float_tensor(*out_lse, "out_lse", 2, dims);
  check_dim(*out_lse, "out_lse", 0, a.B, "B");
  check_dim(*out_lse, "out_lse", 1, a.H, "H");
  check_device(*out_lse, "out_lse", a.device);
  check_writable(*out_lse, "out_lse");
  for (const TensorView* in : inputs) check_no_overlap(*out_lse, "out_lse", *in, "an input", false);
  a.dst_lse = out_lse->data;
  a.dst_lse_dtype = out_lse->dtype;
  a.dst_lse_rows = rows_of(*out_lse);
}

void fill_kv_lens(MergeArgs& a, const MergeOptions& o) {
  if (!o.kv_lens) return;
  const TensorView& k = *o.kv_lens;
  check_kv_lens(k, a.device, a.B, a.N);
  a.kv_lens = k.data;
  a.kv_dtype = k.dtype;
  a.kv_sn = k.strides[0];
  a.kv_sb = k.strides[1];
}

// The [B, H, D] output of merge/correct: same dtype and device as the input `like` (the
// merges: or fp8_e4m3, with options.out_scale).
void check_row_output(const MergeArgs& a, const TensorView& t, const char* name, const char* like, bool fp8_allowed) {
  check_ndim(t, name, 3, "[B, H, D]");
  check_data(t, name);
  check_device(t, name, a.device);
  if (t.dtype != a.dtype && !(fp8_allowed && t.dtype == DType::fp8_e4m3))
    throw Error(name,
                std::string("dtype ") + dtype_name(a.dtype) + " (that of " + like + ")" +
                    (fp8_allowed ? " or fp8_e4m3 (with options.out_scale)" : ""),
                t.describe());
  check_dim(t, name, 0, a.B, "B");
  check_dim(t, name, 1, a.H, "H");
  check_dim(t, name, 2, a.D, "D");
  check_writable(t, name);
}

// The fp8 scale of a merge's out: required with an fp8_e4m3 out, refused otherwise.
void fill_out_scale(MergeArgs& a, const TensorView& out, const char* out_name, const MergeOptions& o, bool merge) {
  const bool fp8 = out.dtype == DType::fp8_e4m3;
  if (!o.out_scale) {
    if (fp8) throw Error("out_scale", "a one-element f32 scale tensor for the fp8_e4m3 out", "none");
    return;
  }
  const TensorView& s = *o.out_scale;
  if (!merge)
    throw Error("out_scale",
                "none (correct_attn_out writes the dtype of its input; fp8 output is for merge_attn_states and "
                "merge_attn_states_varlen)",
                s.describe());
  if (!fp8) throw Error("out_scale", std::string("none unless ") + out_name + " is fp8_e4m3", s.describe());
  check_dtype(s, "out_scale", {DType::f32});
  if (s.numel() != 1) throw Error("out_scale", "a one-element tensor (the per-tensor scale)", s.describe());
  check_device(s, "out_scale", a.device);
  check_data(s, "out_scale");
  check_no_overlap(out, out_name, s, "out_scale", false);
  a.out_scale = static_cast<const float*>(s.data);
}

// The checked output [B, H, D] of merge/correct, with the optional lse output and the options.
void fill_output(MergeArgs& a, const TensorView& dst, const TensorView* out_lse,
                 std::initializer_list<const TensorView*> inputs, const MergeOptions& o) {
  fill_lse_out(a, out_lse, inputs, "[B, H]");
  fill_kv_lens(a, o);
  a.lse_base = o.lse_base;
  a.dst = dst.data;
  a.dst_rows = rows_of(dst);
  a.dst_sd = dst.strides[2];
}

void fill_lses(MergeArgs& a, const TensorView& lses) {
  check_float_tensor(lses, "lses", 3, "[N, B, H]");
  check_device(lses, "lses", a.device);
  a.lses = lses.data;
  a.lse_dtype = lses.dtype;
  a.lse_sn = lses.strides[0];
  a.lse_sb = lses.strides[1];
  a.lse_sh = lses.strides[2];
}

}  // namespace

std::string join_dtypes(std::initializer_list<DType> dtypes) {
  std::string s;
  for (DType d : dtypes) s += (s.empty() ? "" : "/") + std::string(dtype_name(d));
  return s;
}

void check_ndim(const TensorView& t, const char* name, int ndim, const char* dims) {
  if (t.ndim != ndim)
    throw Error(name, "a " + std::to_string(ndim) + "-D tensor " + dims, t.describe());
}

void check_dtype(const TensorView& t, const char* name, std::initializer_list<DType> allowed) {
  if (std::find(allowed.begin(), allowed.end(), t.dtype) == allowed.end())
    throw Error(name, "dtype " + join_dtypes(allowed), t.describe());
}

void check_dim(const TensorView& t, const char* name, int dim, int64_t expected, const char* what) {
  if (t.shape[dim] != expected)
    throw Error(name, std::string("size ") + std::to_string(expected) + " (" + what + ") in dim " +
                          std::to_string(dim),
                t.describe());
}

void check_device(const TensorView& t, const char* name, Device expected) {
  if (t.device != expected)
    throw Error(name, "a tensor on " + device_name(expected) + " like the others", t.describe());
}

void check_data(const TensorView& t, const char* name) {
  for (int i = 0; i < t.ndim; ++i)
    if (t.shape[i] < 0) throw Error(name, "non-negative sizes", t.describe());
  // every element offset and byte offset must fit in int64 (found by fuzz_validation: the
  // size arithmetic overflowed, undefined behaviour, before any check could reject it)
  const auto esize = static_cast<int64_t>(t.element_size());
  int64_t count = 1, extent = 0, scratch = 0;
  bool overflow = false;
  for (int i = 0; i < t.ndim; ++i) {
    const int64_t stride = t.strides[i];
    overflow |= __builtin_mul_overflow(count, t.shape[i], &count);
    overflow |= __builtin_mul_overflow(stride, esize, &scratch);  // byte strides are formed even for empty views
    if (t.shape[i] > 0) {
      int64_t step = 0;
      if (stride == INT64_MIN) overflow = true;
      else overflow |= __builtin_mul_overflow(t.shape[i] - 1, stride < 0 ? -stride : stride, &step);
      overflow |= __builtin_add_overflow(extent, step, &extent);
    }
  }
  overflow |= __builtin_add_overflow(extent, int64_t{1}, &extent);  // elements spanned
  overflow |= __builtin_mul_overflow(extent, esize, &scratch);      // bytes spanned
  if (overflow) throw Error(name, "sizes and strides whose offsets fit in 64 bits", t.describe());
  if (!t.data && t.numel() > 0) throw Error(name, "a non-null data pointer", "nullptr for " + t.describe());
  // a typed access through a pointer off its element size is undefined on the CPU and a
  // misaligned-address fault on CUDA (16-byte misalignment alone is fine: scalar path)
  const auto misaligned = static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.data) % static_cast<uintptr_t>(esize));
  if (misaligned != 0 && t.numel() > 0)
    throw Error(name, "a data pointer aligned to the element size (" + std::to_string(esize) + " bytes)",
                t.describe() + ", " + std::to_string(misaligned) + " bytes past such a boundary");
}

void check_writable(const TensorView& t, const char* name) {
  if (t.numel() == 0) return;  // nothing is written (numpy and DLPack give empty arrays zero strides)
  for (int i = 0; i < t.ndim; ++i)
    if (t.shape[i] > 1 && t.strides[i] == 0)
      throw Error(name, "an output with no zero (broadcast) stride", t.describe());
}

void check_contiguous(const TensorView& t, const char* name) {
  if (!t.is_contiguous()) throw Error(name, "a contiguous tensor", t.describe());
}

void check_kv_lens(const TensorView& kv, Device device, int64_t B, int64_t N) {
  const bool per_partial = N >= 0;
  check_ndim(kv, "kv_lens", per_partial ? 2 : 1, per_partial ? "[N, B]" : "[B]");
  check_dtype(kv, "kv_lens", kIndexDTypes);
  if (per_partial) check_dim(kv, "kv_lens", 0, N, "N");
  check_dim(kv, "kv_lens", per_partial ? 1 : 0, B, "B");
  check_device(kv, "kv_lens", device);
  check_data(kv, "kv_lens");
}

void check_no_overlap(const TensorView& a, const char* a_name, const TensorView& b, const char* b_name,
                      bool same_ok) {
  const Span sa = span_of(a), sb = span_of(b);
  if (sa.empty() || sb.empty() || sa.hi <= sb.lo || sb.hi <= sa.lo) return;
  if (same_ok && same_view(a, b)) return;
  throw Error(a_name, std::string("memory that does not overlap ") + b_name +
                          (same_ok ? " (or is exactly the same view, in place)" : ""),
              "an overlapping " + a.describe());
}

MergeArgs make_merge_args(const TensorView& outs, const TensorView& lses, const TensorView& out,
                          const TensorView* out_lse, const MergeOptions& o) {
  MergeArgs a;
  check_float_tensor(outs, "outs", 4, "[N, B, H, D]");
  a.device = outs.device;
  a.N = outs.shape[0], a.B = outs.shape[1], a.H = outs.shape[2], a.D = outs.shape[3];
  a.dtype = outs.dtype;
  fill_lses(a, lses);
  check_dim(lses, "lses", 0, a.N, "N, from outs");
  check_dim(lses, "lses", 1, a.B, "B, from outs");
  check_dim(lses, "lses", 2, a.H, "H, from outs");
  check_row_output(a, out, "out", "outs", true);
  check_no_overlap(out, "out", outs, "outs", false);
  check_no_overlap(out, "out", lses, "lses", false);
  fill_out_scale(a, out, "out", o, true);
  fill_output(a, out, out_lse, {&outs, &lses, &out}, o);
  a.src = outs.data;
  a.src_sn = outs.strides[0];
  a.src_rows = RowMap{outs.strides[1], outs.strides[2], 0, std::max<int64_t>(a.H, 1)};
  a.src_sd = outs.strides[3];
  return a;
}

MergeArgs make_varlen_merge_args(const TensorView& outs, const TensorView& lses, const TensorView& offsets,
                                 const TensorView& out, const TensorView* out_lse, const MergeOptions& o) {
  MergeArgs a;
  check_float_tensor(outs, "outs", 3, "[P, H, D]");
  a.device = outs.device;
  a.N = outs.shape[0], a.H = outs.shape[1], a.D = outs.shape[2];
  a.dtype = outs.dtype;
  check_float_tensor(lses, "lses", 2, "[P, H]");
  check_device(lses, "lses", a.device);
  check_dim(lses, "lses", 0, a.N, "P, from outs");
  check_dim(lses, "lses", 1, a.H, "H, from outs");
  check_ndim(offsets, "offsets", 1, "[B + 1]");
  check_dtype(offsets, "offsets", kIndexDTypes);
  check_device(offsets, "offsets", a.device);
  check_data(offsets, "offsets");
  a.B = offsets.shape[0] - 1;
  if (a.B < 0) throw Error("offsets", "B + 1 >= 1 offsets", offsets.describe());
  if (o.kv_lens)
    throw Error("options.kv_lens",
                "none for merge_attn_states_varlen (leave an empty partial out of its row's offsets, or give it lse -inf)",
                o.kv_lens->describe());
  if (a.device.type == DeviceType::cpu) {  // CUDA clamps on the device instead (no host sync)
    const auto at = [&](int64_t b) { return "offsets[" + std::to_string(b) + "]"; };
    int64_t previous = 0;
    for (int64_t b = 0; b <= a.B; ++b) {
      const int64_t v = load_index(offsets.data, offsets.dtype, b * offsets.strides[0]);
      const std::string got = at(b) + " = " + std::to_string(v);
      if (b == 0 && v < 0) throw Error("offsets", "offsets[0] >= 0", got);
      if (b > 0 && v < previous)
        throw Error("offsets", "non-decreasing offsets", got + " < " + at(b - 1) + " = " + std::to_string(previous));
      if (v > a.N) throw Error("offsets", "offsets at most P = " + std::to_string(a.N) + " (outs.shape[0])", got);
      previous = v;
    }
  }
  check_row_output(a, out, "out", "outs", true);
  check_no_overlap(out, "out", outs, "outs", false);
  check_no_overlap(out, "out", lses, "lses", false);
  check_no_overlap(out, "out", offsets, "offsets", false);
  fill_out_scale(a, out, "out", o, true);
  fill_output(a, out, out_lse, {&outs, &lses, &offsets, &out}, o);
  a.src = outs.data;
  a.src_sn = outs.strides[0];
  a.src_rows = RowMap{0, outs.strides[1], 0, std::max<int64_t>(a.H, 1)};
  a.src_sd = outs.strides[2];
  a.lses = lses.data;
  a.lse_dtype = lses.dtype;
  a.lse_sn = lses.strides[0];
  a.lse_sb = 0;
  a.lse_sh = lses.strides[1];
  a.offsets = offsets.data;
  a.offsets_dtype = offsets.dtype;
  a.offsets_stride = offsets.strides[0];
  return a;
}

MergeArgs make_correct_args(const TensorView& out, const TensorView& lses, int64_t rank,
                            const TensorView& new_out, const TensorView* out_lse, const MergeOptions& o) {
  MergeArgs a;
  check_float_tensor(out, "out", 3, "[B, H, D]");
  a.device = out.device;
  a.B = out.shape[0], a.H = out.shape[1], a.D = out.shape[2];
  a.dtype = out.dtype;
  fill_lses(a, lses);
  a.N = lses.shape[0];
  if (a.N < 1) throw Error("lses", "at least one partial (N >= 1) in dim 0", lses.describe());
  check_dim(lses, "lses", 1, a.B, "B, from out");
  check_dim(lses, "lses", 2, a.H, "H, from out");
  if (rank < 0 || rank >= a.N)
    throw Error("rank", "a rank in [0, " + std::to_string(a.N) + ") (N from lses)", std::to_string(rank));
  check_row_output(a, new_out, "new_out", "out", false);
  fill_out_scale(a, new_out, "new_out", o, false);
  check_no_overlap(new_out, "new_out", out, "out", true);
  check_no_overlap(new_out, "new_out", lses, "lses", false);
  fill_output(a, new_out, out_lse, {&out, &lses, &new_out}, o);
  a.rank = rank;
  a.src = out.data;
  a.src_rows = rows_of(out);
  a.src_sd = out.strides[2];
  return a;
}

uint64_t pad_bits(double v, DType dt) {
  uint64_t bits = 0;
  auto put = [&](auto x) { std::memcpy(&bits, &x, sizeof(x)); };
  auto exact_int = [&](double lo, double hi) {
    if (!(std::isfinite(v) && v == std::floor(v) && v >= lo && v <= hi))
      throw Error("pad_value", std::string("a value exactly representable in ") + dtype_name(dt) +
                                   " (an integer in [" + num(lo) + ", " + num(hi) + "])",
                  num(v));
    return static_cast<int64_t>(v);
  };
  switch (dt) {
    case DType::f64: put(v); break;
    case DType::f32: put(static_cast<float>(v)); break;
    case DType::f16: put(f32_to_f16(static_cast<float>(v))); break;
    case DType::bf16: put(f32_to_bf16(static_cast<float>(v))); break;
    case DType::fp8_e4m3: put(f32_to_fp8(static_cast<float>(v), true)); break;
    case DType::fp8_e5m2: put(f32_to_fp8(static_cast<float>(v), false)); break;
    case DType::i64: put(exact_int(-9223372036854775808.0, 9223372036854774784.0)); break;
    case DType::i32: put(static_cast<int32_t>(exact_int(-2147483648.0, 2147483647.0))); break;
    case DType::i16: put(static_cast<int16_t>(exact_int(-32768.0, 32767.0))); break;
    case DType::i8: put(static_cast<int8_t>(exact_int(-128.0, 127.0))); break;
    case DType::u8: put(static_cast<uint8_t>(exact_int(0.0, 255.0))); break;
  }
  return bits;
}

namespace {

// Shared by pack and unpack: `tokens` [T, ...], `padded` [B, L, ...].
PackArgs make_seq_args(bool to_padded, const TensorView& tokens, const char* tokens_name,
                       const TensorView& lengths, const TensorView& padded, const char* padded_name,
                       const PackOptions& o) {
  PackArgs a;
  a.to_padded = to_padded;
  if (tokens.ndim < 1)
    throw Error(tokens_name, "a tensor [T, ...] with at least 1 dim", tokens.describe());
  if (padded.ndim != tokens.ndim + 1)
    throw Error(padded_name, "a " + std::to_string(tokens.ndim + 1) + "-D tensor [B, L, ...] (" +
                                 tokens_name + " has " + std::to_string(tokens.ndim) + " dims)",
                padded.describe());
  check_data(tokens, tokens_name);
  check_data(padded, padded_name);
  a.device = tokens.device;
  check_device(padded, padded_name, a.device);
  if (padded.dtype != tokens.dtype)
    throw Error(padded_name, std::string("dtype ") + dtype_name(tokens.dtype) + " (that of " + tokens_name + ")",
                padded.describe());
  int64_t row = 1;
  for (int i = tokens.ndim - 1; i >= 1; --i) {
    if (padded.shape[i + 1] != tokens.shape[i])
      throw Error(padded_name, "trailing dims equal to those of " + std::string(tokens_name), padded.describe());
    if (tokens.shape[i] != 1 && tokens.strides[i] != row)
      throw Error(tokens_name, "contiguous trailing dims (only dim 0 may be strided)", tokens.describe());
    if (padded.shape[i + 1] != 1 && padded.strides[i + 1] != row)
      throw Error(padded_name, "contiguous trailing dims (only dims 0 and 1 may be strided)", padded.describe());
    row *= tokens.shape[i];
  }
  const TensorView& written = to_padded ? padded : tokens;
  check_writable(written, to_padded ? padded_name : tokens_name);
  check_no_overlap(padded, padded_name, tokens, tokens_name, false);

  check_ndim(lengths, o.cu_seqlens ? "cu_seqlens" : "lengths", 1, o.cu_seqlens ? "[B + 1]" : "[B]");
  check_dtype(lengths, o.cu_seqlens ? "cu_seqlens" : "lengths", kIndexDTypes);
  check_device(lengths, o.cu_seqlens ? "cu_seqlens" : "lengths", a.device);
  check_data(lengths, o.cu_seqlens ? "cu_seqlens" : "lengths");
  // on CUDA the copy reads lengths while it writes (pad rows go out before the scan is done)
  check_no_overlap(written, to_padded ? padded_name : tokens_name, lengths, o.cu_seqlens ? "cu_seqlens" : "lengths", false);
  const int64_t B = o.cu_seqlens ? lengths.shape[0] - 1 : lengths.shape[0];
  if (B < 0) throw Error("cu_seqlens", "B + 1 >= 1 prefix offsets", lengths.describe());
  check_dim(padded, padded_name, 0, B, o.cu_seqlens ? "B, from cu_seqlens" : "B, from lengths");

  a.B = B;
  a.L = padded.shape[1];
  a.T = tokens.shape[0];
  a.elem_bytes = static_cast<int64_t>(tokens.element_size());
  a.row_bytes = row * a.elem_bytes;
  a.tokens = static_cast<char*>(tokens.data);
  a.token_stride = tokens.strides[0] * a.elem_bytes;
  a.padded = static_cast<char*>(padded.data);
  a.padded_sb = padded.strides[0] * a.elem_bytes;
  a.padded_sl = padded.strides[1] * a.elem_bytes;
  a.lengths = lengths.data;
  a.lengths_dtype = lengths.dtype;
  a.lengths_stride = lengths.strides[0];
  a.cu_seqlens = o.cu_seqlens;
  if (to_padded) a.pad_bits = pad_bits(o.pad_value, tokens.dtype);
  return a;
}

}  // namespace

PackArgs make_pack_args(const TensorView& x, const TensorView& lengths, const TensorView& out,
                        const PackOptions& o) {
  return make_seq_args(true, x, "x", lengths, out, "out", o);
}

PackArgs make_unpack_args(const TensorView& packed, const TensorView& lengths, const TensorView& out,
                          const PackOptions& o) {
  return make_seq_args(false, out, "out", lengths, packed, "packed", o);
}

}  // namespace cpattn::detail
