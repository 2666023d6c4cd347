// merge_attn_states / correct_attn_out on CUDA (also every data step of the cp_* functions):
// merge_groups_kernel serves every call merge_rows_kernel (merge_rows.cu) does not take.
//
// Each row (b, h) is owned by a group of G = 2^shift lanes of one warp (G <= 32),
// so a row's reductions are warp shuffles and nothing waits on a block barrier. Lane i owns
// partials i, i+G, ... and vectors i, i+G, ... of D (VEC elements each: 16 bytes on the vector
// path, one element on the scalar path taken when D, a stride or a pointer is not 16-byte
// aligned). N is a runtime loop: no recompilation per N.
//
// Decode calls are latency-bound and large ones need many bytes in flight per SM, so the
// instruction count per row matters: row indices use multiply-shift division (FastDiv),
// offsets are computed once per row, and correct issues its data loads before any lse math.
//
// It also takes the merges merge_rows_kernel does not: a variable number of partials per row
// (merge_attn_states_varlen: each row's range read from offsets on the device) and fp8 output.
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "../backend/args.hpp"
#include "../backend/check_cuda.hpp"
#include "../backend/fast_div.hpp"
#include "backend.hpp"
#include "elements.cuh"
#include "launch.cuh"

namespace cpattn::cuda {
namespace {

using detail::FastDiv;
using detail::MergeArgs;
using detail::RowMap;
constexpr int kBlockThreads = 256;
// Vectors per lane that correct loads before its lse math: enough bytes in flight per SM to
// reach copy bandwidth on large calls (2 falls well short).
constexpr int kCorrectVectorsPerLane = 4;
constexpr int kMaxWeightBytes = 16 * 1024;  // shared memory for merge's staged weights per block

enum class Mode {
  correct,          // scale the rank's partial by its weight
  merge_staged,     // sum of weighted partials, the row's weights staged in shared memory
  merge_pairs,      // the same with two vectors per lane per pass: large calls with N <= 4
  merge_recompute,  // the same for N too large to stage: weights recomputed per vector
};

// Divisors of the row index math, built on the host.
struct Divisors {
  FastDiv heads;                       // row -> (b, h)
  FastDiv src_inner, dst_inner, lse_inner;  // h -> (h / heads_inner, h % heads_inner) of each RowMap
};

__device__ __forceinline__ int64_t row_at(const RowMap& m, const FastDiv& inner, uint32_t b, uint32_t h) {
  const uint32_t outer = inner.div(h);
  return static_cast<int64_t>(b) * m.batch_stride + static_cast<int64_t>(outer) * m.outer_stride +
         static_cast<int64_t>(h - outer * inner.divisor) * m.head_stride;
}

// The row's partial lses, sanitised: NaN, +inf and kv_lens == 0 become -inf (empty).
// Holds copies of the fields, not a reference to the kernel parameter (which would put the
// parameter block on the stack).
struct PartialLses {
  const void* lses;
  int dtype;
  int64_t off, sn;
  const void* kv_lens;
  int kv_dtype;
  int64_t kv_off, kv_sn;
  __device__ __forceinline__ float operator()(int64_t r) const {
    float l = load_float(lses, static_cast<DType>(dtype), off + r * sn);
    l = sanitized_lse(l);
    if (kv_lens && load_index(kv_lens, static_cast<DType>(kv_dtype), kv_off + r * kv_sn) == 0) l = -INFINITY;
    return l;
  }
};

// Row b's partials of a varlen merge, [first, first + count): offsets[b] and offsets[b + 1]
// clamped into [0, P] (the host never reads offsets; a decreasing pair is an empty row).
struct Partials {
  int64_t first, count;
};
__device__ __forceinline__ Partials row_partials(const MergeArgs& a, uint32_t b) {
  const int64_t P = a.N;
  const int64_t begin = load_index(a.offsets, a.offsets_dtype, static_cast<int64_t>(b) * a.offsets_stride);
  const int64_t end = load_index(a.offsets, a.offsets_dtype, (static_cast<int64_t>(b) + 1) * a.offsets_stride);
  const int64_t first = begin < 0 ? 0 : begin > P ? P : begin;
  const int64_t last = end < first ? first : end > P ? P : end;
  return {first, last - first};
}

// Stores VEC merged values at dst + offset (elements): rounded to T, or (out_scale) divided by
// the scale and rounded to fp8 e4m3, saturating (VEC bytes in one store).
template <class T, int VEC>
__device__ __forceinline__ void store_merged(const MergeArgs& a, int64_t offset, float scale, const float (&acc)[VEC]) {
  if (!a.out_scale) {
    store_f32<T, VEC>(static_cast<T*>(a.dst) + offset, acc);
    return;
  }
  uint32_t bytes[(VEC + 3) / 4] = {};
#pragma unroll
  for (int i = 0; i < VEC; ++i)
    bytes[i / 4] |= static_cast<uint32_t>(__nv_cvt_float_to_fp8(acc[i] / scale, __NV_SATFINITE, __NV_E4M3)) << (8 * (i % 4));
  uint8_t* p = static_cast<uint8_t*>(a.dst) + offset;
  if constexpr (VEC == 8) *reinterpret_cast<uint2*>(p) = make_uint2(bytes[0], bytes[1]);
  else if constexpr (VEC == 4) *reinterpret_cast<uint32_t*>(p) = bytes[0];
  else *p = static_cast<uint8_t>(bytes[0]);
}

__device__ __forceinline__ float group_max(float v, int g) {
  for (int o = g >> 1; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// xor butterflies: every lane ends with bitwise the same sum (a + b == b + a exactly)
__device__ __forceinline__ float group_sum(float v, int g) {
  for (int o = g >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// merge_groups_kernel: merge_attn_states / correct_attn_out for any layout.
//   src: outs [N, B, H, D] (partial r at src + r * src_sn; merge) or this rank's out
//   [B, H, D] (correct); lses [N, B, H] f32/f16/bf16; kv_lens [N, B] int32/int64 (optional);
//   dst [B, H, D] (T, or fp8 e4m3 with a.out_scale); dst_lse [B, H] (optional, heads
//   [lse_h_begin, lse_h_end) only); rows (b, h) of src, dst and dst_lse where their RowMaps put
//   them (any strides); lses in base e or 2 (a.lse_base). Varlen merges (a.offsets): src
//   outs [P, H, D] and lses [P, H], row b's partials offsets[b] .. offsets[b + 1] - 1
//   (merge_recompute only). T: the data type, VEC elements per vector (16 bytes of src, or 1
//   on the scalar path); DEPENDENT: launched as a programmatic dependent (launch.cuh).
// Grid: ceil(B * H * 2^shift / blockDim.x) blocks of 256 threads (128 for small grids, fewer,
// in warps, where a block's staged weights would pass kMaxWeightBytes; launch_merge_groups);
// row (b, h) belongs to a group of G = 2^shift lanes of one warp.
// Each group: lane i reads the lses of partials i, i + G, ...; max and sum are reduced with
// shuffles; lane 0 stores the merged lse. Then lane i takes vectors i, i + G, ... of the row
// (`vectors_per_row` in all): correct scales the rank's row by its weight (the first
// kCorrectVectorsPerLane loaded before the lse math); merge sums the N weighted partials in f32, with the
// weights staged in shared memory (merge_staged, merge_pairs: two vectors per pass) or
// recomputed per vector (merge_recompute, N too large to stage).
template <class T, int VEC, Mode M, bool DEPENDENT>
__global__ void __launch_bounds__(kBlockThreads)
    merge_groups_kernel(const MergeArgs a, const Divisors div, int shift, int vectors_per_row) {
  extern __shared__ float staged_weights[];  // merge_staged: [blockDim.x >> shift][N]
  const int g = 1 << shift;
  const int lane = threadIdx.x & (g - 1);
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const bool active = row < a.B * a.H;  // inactive lanes still take part in the shuffles
  const uint32_t row32 = active ? static_cast<uint32_t>(row) : 0;
  const uint32_t b = div.heads.div(row32), h = row32 - b * div.heads.divisor;
  const T* src = static_cast<const T*>(a.src) + row_at(a.src_rows, div.src_inner, b, h);
  const int64_t dst_row = row_at(a.dst_rows, div.dst_inner, b, h);  // in elements: dst may be fp8
  T* dst = static_cast<T*>(a.dst) + dst_row;
  const int64_t src_step = static_cast<int64_t>(VEC) * a.src_sd, dst_step = static_cast<int64_t>(VEC) * a.dst_sd;
  if constexpr (DEPENDENT) wait_for_previous_kernel();
  Partials partials{0, a.N};
  if (M == Mode::merge_recompute && a.offsets && active) partials = row_partials(a, b);
  src += partials.first * a.src_sn;
  const int64_t count = partials.count;  // this row's partials
  const float scale = a.out_scale ? *a.out_scale : 1.0f;
  const PartialLses lses{a.lses,
                         static_cast<int>(a.lse_dtype),
                         static_cast<int64_t>(b) * a.lse_sb + static_cast<int64_t>(h) * a.lse_sh + partials.first * a.lse_sn,
                         a.lse_sn,
                         a.kv_lens,
                         static_cast<int>(a.kv_dtype),
                         static_cast<int64_t>(b) * a.kv_sb,
                         a.kv_sn};

  using P = Pack<T, VEC>;
  P raw[kCorrectVectorsPerLane] = {};
  float l_rank = -INFINITY;
  if constexpr (M == Mode::correct) {
#pragma unroll
    for (int i = 0; i < kCorrectVectorsPerLane; ++i) {
      const int v = lane + i * g;
      if (active && v < vectors_per_row) raw[i] = load_pack<T, VEC>(src + v * src_step);
    }
    if (active) l_rank = lses(a.rank);
  }
  const float l_own = active && lane < count ? lses(lane) : -INFINITY;
  float m = l_own;
  for (int64_t r = lane + g; active && r < count; r += g) m = fmaxf(m, lses(r));
  m = group_max(m, g);
  const bool empty = m == -INFINITY;  // every partial of the row is empty
  const float e_own = empty ? 0.0f : lse_exp(l_own - m, a.lse_base);
  float s = e_own;
  for (int64_t r = lane + g; active && !empty && r < count; r += g) s += lse_exp(lses(r) - m, a.lse_base);
  s = group_sum(s, g);
  const float lse = empty ? -INFINITY : m + lse_log(s, a.lse_base);
  const unsigned live = __ballot_sync(0xffffffffu, active);  // lanes that stay for __syncwarp
  if (!active) return;  // no shuffles past this point
  if (lane == 0 && a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
    store_float(a.dst_lse, a.dst_lse_dtype,
                row_at(a.dst_lse_rows, div.lse_inner, b, h - static_cast<uint32_t>(a.lse_h_begin)), lse);

  if constexpr (M == Mode::correct) {
    const float w = empty ? 0.0f : lse_exp(l_rank - lse, a.lse_base);
#pragma unroll
    for (int i = 0; i < kCorrectVectorsPerLane; ++i) {
      const int v = lane + i * g;
      if (v < vectors_per_row) scale_store<T, VEC>(dst + v * dst_step, w, raw[i]);
    }
    for (int v = lane + kCorrectVectorsPerLane * g; v < vectors_per_row; v += g)  // rows wider than one pass
      scale_store<T, VEC>(dst + v * dst_step, w, load_pack<T, VEC>(src + v * src_step));
  } else {
    // w_r = exp(l_r - m) / s = exp(l_r - lse)
    const float inv_s = empty ? 0.0f : 1.0f / s;
    float* w = staged_weights + static_cast<int64_t>(threadIdx.x >> shift) * a.N;
    if constexpr (M != Mode::merge_recompute) {
      if (lane < a.N) w[lane] = e_own * inv_s;
      for (int64_t r = lane + g; r < a.N; r += g) w[r] = empty ? 0.0f : lse_exp(lses(r) - m, a.lse_base) * inv_s;
      __syncwarp(live);  // a mask naming an exited lane is undefined
    }
    // merge_pairs (two vectors per lane per pass) doubles the loads in flight, which large
    // calls with few partials need, but slows N = 8 and decode calls: launch_merge_groups() picks it
    // only for large calls with N <= 4.
    const auto weight = [&](int64_t r) {
      if constexpr (M == Mode::merge_recompute) return empty ? 0.0f : lse_exp(lses(r) - m, a.lse_base) * inv_s;
      else return w[r];
    };
    if constexpr (M != Mode::merge_pairs) {
      for (int v = lane; v < vectors_per_row; v += g) {
        float acc[VEC], x[VEC];
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
#pragma unroll 4
        for (int64_t r = 0; r < count; ++r) {
          load_f32<T, VEC>(src + r * a.src_sn + v * src_step, x);  // unconditional: loads stay in flight together
          const float wr = weight(r);
#pragma unroll
          for (int i = 0; i < VEC; ++i) acc[i] += wr == 0.0f ? 0.0f : wr * x[i];
        }
        store_merged<T, VEC>(a, dst_row + v * dst_step, scale, acc);
      }
    } else {
      // two vectors per lane per pass: 2N loads in flight
      for (int v0 = lane; v0 < vectors_per_row; v0 += 2 * g) {
        const bool second = v0 + g < vectors_per_row;
        float acc[2][VEC] = {};
#pragma unroll 4
        for (int64_t r = 0; r < a.N; ++r) {
          const T* p = src + r * a.src_sn + v0 * src_step;
          const Pack<T, VEC> x0 = load_pack<T, VEC>(p);
          const Pack<T, VEC> x1 = second ? load_pack<T, VEC>(p + g * src_step) : Pack<T, VEC>{};
          const float wr = weight(r);
#pragma unroll
          for (int i = 0; i < VEC; ++i) {
            acc[0][i] += wr == 0.0f ? 0.0f : wr * x0.get(i);
            acc[1][i] += wr == 0.0f ? 0.0f : wr * x1.get(i);
          }
        }
        store_merged<T, VEC>(a, dst_row + v0 * dst_step, scale, acc[0]);
        if (second) store_merged<T, VEC>(a, dst_row + (v0 + g) * dst_step, scale, acc[1]);
      }
    }
  }
  if constexpr (DEPENDENT) allow_next_kernel_launch();  // after the stores: see merge_rows.cu on when to signal
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// 16-byte vectors of src (VEC = 16 / esize elements) and VEC-element vectors of dst: T, or
// VEC bytes for an fp8 dst.
bool vector_path_ok(const MergeArgs& a, size_t esize) {
  const int64_t vec = 16 / static_cast<int64_t>(esize);
  const auto whole = [&](int64_t elems) { return elems % vec == 0; };
  const auto rows_ok = [&](const RowMap& m) { return whole(m.batch_stride) && whole(m.head_stride) && whole(m.outer_stride); };
  const auto dst_alignment = static_cast<uintptr_t>(a.out_scale ? vec : 16);
  return a.D > 0 && whole(a.D) && a.src_sd == 1 && a.dst_sd == 1 && aligned16(a.src) &&
         reinterpret_cast<uintptr_t>(a.dst) % dst_alignment == 0 && rows_ok(a.src_rows) && rows_ok(a.dst_rows) &&
         (a.rank >= 0 || whole(a.src_sn));
}

template <class T, int VEC>
void launch_mode(Mode mode, unsigned blocks, int threads, size_t smem, cudaStream_t stream, bool pdl,
                 const MergeArgs& a, const Divisors& div, int shift, int vectors_per_row) {
  const auto go = [&]<Mode M>() {
    launch(merge_groups_kernel<T, VEC, M, false>, merge_groups_kernel<T, VEC, M, true>, blocks, threads, smem, stream, pdl, a, div,
           shift, vectors_per_row);
  };
  switch (mode) {
    case Mode::correct: go.template operator()<Mode::correct>(); break;
    case Mode::merge_staged: go.template operator()<Mode::merge_staged>(); break;
    case Mode::merge_pairs:  // vector path only (launch_merge_groups() never picks it for the scalar path)
      if constexpr (VEC > 1) go.template operator()<Mode::merge_pairs>();
      break;
    case Mode::merge_recompute: go.template operator()<Mode::merge_recompute>(); break;
  }
}

template <class T>
void launch_merge_groups(const MergeArgs& a, cudaStream_t stream, bool pdl) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = vector_path_ok(a, sizeof(T));
  const bool correct = a.rank >= 0;
  const int64_t vectors_per_row = (a.D + (vec ? kVec : 1) - 1) / (vec ? kVec : 1);
  if (vectors_per_row > INT32_MAX / 64) throw Error("D", "at most 2^25 elements per row on CUDA", std::to_string(a.D));
  // lanes per row: enough for the row in one pass (of per_lane vectors each)
  const int64_t rows = a.B * a.H;
  const int64_t sms = sm_count();
  const bool varlen = a.offsets != nullptr;
  const bool pairs = vec && !correct && !varlen && a.N <= 4 && rows * vectors_per_row >= 4 * sms * kBlockThreads;
  const int per_lane = correct ? kCorrectVectorsPerLane : pairs ? 2 : 1;
  const int64_t want = (vectors_per_row + per_lane - 1) / per_lane;
  int shift = 0;
  while (shift < 5 && (int64_t{1} << shift) < want) ++shift;
  const int64_t total_threads = rows << shift;
  // small grids: smaller blocks spread the rows over more SMs
  int threads = total_threads >= 2 * sms * kBlockThreads ? kBlockThreads : 128;
  Mode mode = Mode::correct;
  size_t smem = 0;
  if (!correct) {
    const int64_t row_bytes = a.N * static_cast<int64_t>(sizeof(float));
    const int64_t max_threads = ((kMaxWeightBytes / row_bytes) << shift) / 32 * 32;
    if (max_threads >= 32 && !varlen) {
      mode = pairs ? Mode::merge_pairs : Mode::merge_staged;
      threads = static_cast<int>(std::min<int64_t>(threads, max_threads));
      smem = static_cast<size_t>((threads >> shift) * row_bytes);
    } else {
      mode = Mode::merge_recompute;
    }
  }
  const int64_t block_count = (total_threads + threads - 1) / threads;
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  Divisors div{FastDiv(u32(a.H)), FastDiv(u32(a.src_rows.heads_inner)), FastDiv(u32(a.dst_rows.heads_inner)),
               FastDiv(u32(a.dst_lse ? a.dst_lse_rows.heads_inner : 1))};
  const auto blocks = static_cast<unsigned>(block_count);
  const int row_vectors = static_cast<int>(vectors_per_row);
  if (vec) launch_mode<T, kVec>(mode, blocks, threads, smem, stream, pdl, a, div, shift, row_vectors);
  else launch_mode<T, 1>(mode, blocks, threads, smem, stream, pdl, a, div, shift, row_vectors);
}

std::atomic<bool> groups_only{false};  // force_merge_groups(): the tests' switch

}  // namespace

void force_merge_groups(bool on) { groups_only.store(on); }

void merge(const MergeArgs& a, Stream stream, bool pdl) {
  if (a.B == 0 || a.H == 0) return;
  // rows and heads index through 32-bit FastDiv: both < 2^31
  if (a.B * a.H > INT32_MAX)
    throw Error("B * H", "at most 2^31 - 1 rows (b, h) per call on CUDA", std::to_string(a.B * a.H));
  detail::check_element_dtypes(a);
  if (!groups_only.load(std::memory_order_relaxed) && launch_merge_rows(a, stream, pdl)) return;
  CPATTN_DISPATCH_CUDA_FLOAT(a.dtype, "dtype", T, [&] { launch_merge_groups<T>(a, stream, pdl); });
}

}  // namespace cpattn::cuda
