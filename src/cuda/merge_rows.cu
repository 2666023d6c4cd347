// merge_rows_kernel: merge_attn_states / correct_attn_out for the common layout, with the
// fewest instructions between launch and store.
//
// Taken when every row (b, h) of src, dst and the lses sits at one stride (row = b * H + h),
// the data moves in 16-byte vectors, the lses are f32 and N <= 16. A row is owned by L lanes
// (L need not be a power of two nor stay inside one warp): lane i handles vectors i, i + L,
// ... (VECTORS_PER_LANE of them). In merges and small calls every lane reads the row's N lses
// itself (the same L1 line for the row's lanes) and reduces them in registers: no shuffles, no
// shared memory, no barrier. Large correct calls with N > 8 (or 5-8 on rows of up to 8
// vectors) share the lses instead: the lanes of a row, in groups of a power of two inside one
// warp, read N / G each and reduce by shuffles (with every lane reading all N, the lse loads
// and exps were the bound: correct N = 16 at D = 64 ran at 72% of copy). Merges of exactly
// two partials run merge_pair_kernel, the N = 2 code without the general parts. Thread
// indices and strides are 32-bit (rows and partials are 64-bit apart) and the lse base comes
// as two factors (no branch on it): decode calls are latency bound, and the kernel of
// merge.cu spends many more instructions per warp on general strides and run-time dtypes.
#include <cuda_runtime.h>

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

constexpr int kMaxN = 16;  // the most partials merge_rows_kernel takes (their lses live in registers)
constexpr int kThreads = 256;

struct RowsArgs {
  const void* src;
  void* dst;
  const float* lses;
  float* dst_lse;         // optional
  const void* kv_lens;    // optional, [N, B] int32 or int64
  bool kv_lens_i64;
  bool early_trigger;     // DEPENDENT: let the next kernel be scheduled at the start (else at the end)
  LseScales scales;       // the lses' base
  int32_t N, rank;        // rank < 0: merge
  uint32_t rows, vectors_per_row;
  // element strides: between rows, and between partials
  uint32_t src_sr, src_sn, dst_sr, lse_sr, lse_sn, dst_lse_sr, kv_sn, kv_sb;
  FastDiv lanes;  // thread -> (row, lane); divisor = L
  FastDiv heads;  // row -> b (for kv_lens)
};

// Partials first + k * step (k < K) of a row's lses into l, sanitised: NaN, +inf and
// kv_lens == 0 become -inf (empty), and so do the entries past N. K is a compile-time count
// (picked by the launch among 1, 2, 4, 8, 16), so the code is straight-line: the loads all go
// out before any is used, and the exps overlap instead of waiting on each other behind
// per-partial branches (exp(-inf) adds exact zeros). Returns their max.
template <int K>
__device__ __forceinline__ float load_lses(const RowsArgs& a, uint32_t row, uint32_t first, uint32_t step, float (&l)[K]) {
  const float* lp = a.lses + static_cast<uint64_t>(row) * a.lse_sr;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const uint32_t i = first + k * step;
    l[k] = i < static_cast<uint32_t>(a.N) ? lp[i * a.lse_sn] : -INFINITY;
  }
  if (a.kv_lens) {
    const uint32_t kv_off = a.heads.div(row) * a.kv_sb;
    int64_t len[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const uint32_t i = first + k * step, at = kv_off + i * a.kv_sn;
      len[k] = i >= static_cast<uint32_t>(a.N) ? 1
               : a.kv_lens_i64                 ? static_cast<const int64_t*>(a.kv_lens)[at]
                                               : static_cast<const int32_t*>(a.kv_lens)[at];
    }
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (len[k] == 0) l[k] = -INFINITY;
  }
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    l[k] = sanitized_lse(l[k]);
    m = fmaxf(m, l[k]);
  }
  return m;
}

// exp(l - m) in the lses' base, 0 for l = -inf; m_sub is the max, or 0 when every partial is
// empty (so that -inf - m_sub stays -inf).
__device__ __forceinline__ float weight_exp(const RowsArgs& a, float l, float m_sub) {
  return exp2_ftz((l - m_sub) * a.scales.to_log2);
}
__device__ __forceinline__ float reciprocal(float s) {  // s in [1, N]: the approximation is within 1 ulp
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(s));
  return r;
}
__device__ __forceinline__ float merged_lse(const RowsArgs& a, float m, float s) {
  return m == -INFINITY ? -INFINITY : m + log2f(s) * a.scales.from_log2;
}

// A row's N lses, each lane reading all of them: e[i] = exp(l_i - m) (the partials' weights
// times s), their max m (-inf: every partial is empty) and sum s.
template <int MAXN>
struct RowLses {
  float e[MAXN];
  float m, s;
};
template <int MAXN>
__device__ __forceinline__ RowLses<MAXN> row_lses(const RowsArgs& a, uint32_t row) {
  RowLses<MAXN> r;
  float l[MAXN];
  r.m = load_lses<MAXN>(a, row, 0, 1, l);
  const float m_sub = r.m == -INFINITY ? 0.0f : r.m;
  r.s = 0.0f;
#pragma unroll
  for (int i = 0; i < MAXN; ++i) {
    r.e[i] = weight_exp(a, l[i], m_sub);
    r.s += r.e[i];
  }
  return r;
}

// correct: the rank's weight exp(l_rank - lse) and the merged lse of a row whose lanes form
// groups of GROUP (a power of two <= 32; consecutive lanes of one warp): lane j of a group
// reads partials j, j + GROUP, ... (K of them); max and sum are reduced over the group by xor
// shuffles (every lane ends with bitwise the same values), and the lane that read the rank's
// lse passes its exp on. GROUP = 1: every lane reads all N, no shuffles. GROUP is a template
// parameter: with it a run-time value, the shuffle loops and their masks were 10-12% of the
// time of correct N = 16 at D = 64 and 96, whose issue slots were half busy (H200).
struct RankWeight {
  float w;     // the rank's weight
  float m, s;  // the max and sum of the row's exps, for its lse
};
template <int GROUP, int K>
__device__ __forceinline__ RankWeight rank_weight(const RowsArgs& a, uint32_t row, uint32_t lane) {
  static_assert(GROUP >= 1 && GROUP <= 32 && (GROUP & (GROUP - 1)) == 0, "a group is a power of two of one warp's lanes");
  constexpr uint32_t g = GROUP;
  const uint32_t j = lane & (g - 1);
  const unsigned mask = g == 32 ? 0xffffffffu : ((1u << g) - 1u) << ((threadIdx.x & 31u) & ~(g - 1));
  float l[K];
  float m = load_lses<K>(a, row, j, g, l);
#pragma unroll
  for (uint32_t o = g >> 1; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(mask, m, o));
  const float m_sub = m == -INFINITY ? 0.0f : m;
  const uint32_t rank = static_cast<uint32_t>(a.rank), rank_slot = rank / g;
  float s = 0.0f, e_rank = 0.0f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const float e = weight_exp(a, l[k], m_sub);
    s += e;
    e_rank = k == static_cast<int>(rank_slot) ? e : e_rank;
  }
  if constexpr (GROUP > 1) {
#pragma unroll
    for (uint32_t o = g >> 1; o > 0; o >>= 1) s += __shfl_xor_sync(mask, s, o);
    e_rank = __shfl_sync(mask, e_rank, static_cast<int>(rank & (g - 1)), static_cast<int>(g));
  }
  return {m == -INFINITY ? 0.0f : e_rank * reciprocal(s), m, s};
}

// merge_rows_kernel: merge_attn_states (MERGE) / correct_attn_out when every row sits at one
// stride.
//   src: outs [N, B, H, D] (row r of partial n at src + r * src_sr + n * src_sn) or this
//   rank's out [B, H, D] (correct: src_sn = 0); lses f32 [N, B, H] (row r of partial n at
//   r * lse_sr + n * lse_sn); kv_lens [N, B] int32/int64 (optional); dst [B, H, D] (row
//   stride dst_sr); dst_lse f32 [B, H] (optional, row stride dst_lse_sr); lses in base e or 2.
//   T: the data type, moved in 16-byte vectors; MAXN: lses per lane, >= N (or >= N / GROUP):
//   fewer registers where the launch knows N is small; GROUP (correct only): the lanes of a
//   row share its lses in groups of GROUP (1: every lane reads all); WIDE_PARTIALS (merge
//   only): partial offsets n * src_sn in 64 bits, for partials past 2^31 elements (32-bit
//   products are 2-6% faster on merges of up to 30 MB, H200); DEPENDENT: launched as a
//   programmatic dependent (launch.cuh).
// Grid: ceil(B * H * L / blockDim.x) blocks of 128 or 256 threads, L lanes per row (any
// count: a row may straddle warps; a multiple of GROUP); thread t serves row t / L as lane
// t % L.
// Each thread: its first VECTORS_PER_LANE vectors' loads (lane, lane + L, ...), then its
// row's lses (all N, or its group's share and shuffles), their max and sum; correct scales
// the rank's row by its weight, merge sums the N weighted partials in f32 (kChunk partials'
// loads in flight at once); lane 0 stores the merged lse last.
template <class T, int VECTORS_PER_LANE, bool MERGE, int MAXN, int GROUP, bool WIDE_PARTIALS, bool DEPENDENT>
__global__ void __launch_bounds__(kThreads) merge_rows_kernel(const RowsArgs a) {
  static_assert(!MERGE || GROUP == 1, "merges read every lse in every lane");
  constexpr int VEC = 16 / static_cast<int>(sizeof(T));
  constexpr int kChunk = MERGE ? (8 / VECTORS_PER_LANE < MAXN ? 8 / VECTORS_PER_LANE : MAXN) : 1;  // merge: partials loaded together
  using P = Pack<T, VEC>;
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  const uint32_t row = a.lanes.div(t);
  if (row >= a.rows) return;  // whole groups (a group never spans two rows)
  const uint32_t L = a.lanes.divisor, lane = t - row * L;
  const T* src = static_cast<const T*>(a.src) + static_cast<uint64_t>(row) * a.src_sr;
  T* dst = static_cast<T*>(a.dst) + static_cast<uint64_t>(row) * a.dst_sr;
  if constexpr (DEPENDENT) {
    wait_for_previous_kernel();
    if (a.early_trigger) allow_next_kernel_launch();
  }

  // the first data loads go out before the lse math
  const auto partial = [&](int n) {  // this row of partial n
    return WIDE_PARTIALS ? src + static_cast<uint64_t>(n) * a.src_sn : src + n * a.src_sn;
  };
  P x[VECTORS_PER_LANE][kChunk] = {};
  const auto load_chunk = [&](int c) {
#pragma unroll
    for (int j = 0; j < kChunk; ++j)
#pragma unroll
      for (int i = 0; i < VECTORS_PER_LANE; ++i) {
        const uint32_t v = lane + i * L;
        if ((!MERGE || c + j < a.N) && v < a.vectors_per_row)
          x[i][j] = load_pack<T, VEC>(partial(c + j) + v * VEC);
      }
  };
  load_chunk(0);  // correct: src_sn is 0 (src is the rank's out)
  float m, s;  // the max and sum of the row's exps
  if constexpr (!MERGE) {
    const RankWeight rw = rank_weight<GROUP, MAXN>(a, row, lane);
#pragma unroll
    for (int i = 0; i < VECTORS_PER_LANE; ++i) {
      const uint32_t v = lane + i * L;
      if (v < a.vectors_per_row) scale_store<T, VEC>(dst + v * VEC, rw.w, x[i][0]);
    }
    m = rw.m;
    s = rw.s;
  } else {
    const RowLses<MAXN> r = row_lses<MAXN>(a, row);
    const float inv_s = r.m == -INFINITY ? 0.0f : reciprocal(r.s);
    float acc[VECTORS_PER_LANE][VEC] = {};
#pragma unroll
    for (int c = 0; c < MAXN; c += kChunk) {
      if (c >= a.N) break;
      if (c > 0) load_chunk(c);
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {  // partials past N: weight exp(-inf) = 0, no load
        const float w = r.e[c + j] * inv_s;  // exp(l_r - lse)
#pragma unroll
        for (int i = 0; i < VECTORS_PER_LANE; ++i) {
          const P xs = zeroed_if<T, VEC>(w == 0.0f, x[i][j]);
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[i][e] += w * xs.get(e);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < VECTORS_PER_LANE; ++i) {
      const uint32_t v = lane + i * L;
      if (v < a.vectors_per_row) store_f32<T, VEC>(dst + v * VEC, acc[i]);
    }
    m = r.m;
    s = r.s;
  }
  // last: its log is off the path to the data stores
  if (a.dst_lse && lane == 0) a.dst_lse[static_cast<uint64_t>(row) * a.dst_lse_sr] = merged_lse(a, m, s);
  if constexpr (DEPENDENT)
    if (!a.early_trigger) allow_next_kernel_launch();
}

// merge_pair_kernel: merge_attn_states of exactly two partials without kv_lens (a prefix and
// a suffix: the merge engines call most), for the layouts merge_rows_kernel takes, with the
// arithmetic of its N = 2 code (bitwise the same results) and none of its general parts: no
// loop over partials, no per-partial bounds, no kv_lens. In L2-resident merges (B2048 H16
// D128: 26 MB) the time follows the instructions issued per vector.
//   src: outs [2, B, H, D] (row r of partial n at src + r * src_sr + n * src_sn); lses f32
//   [2, B, H] (r * lse_sr + n * lse_sn); dst [B, H, D] (row stride dst_sr); dst_lse f32
//   [B, H] (optional, row stride dst_lse_sr). T: the data type, in 16-byte vectors;
//   DEPENDENT: launched as a programmatic dependent (launch.cuh).
// Grid: ceil(B * H * V / blockDim.x) blocks (V = vectors_per_row = a.lanes.divisor); thread t
// serves row t / V, vector t % V.
// Each thread: its vector of both partials, the row's two lses, their weights; one vector
// out, and the merged lse from the row's first thread.
template <class T, bool DEPENDENT>
__global__ void __launch_bounds__(kThreads) merge_pair_kernel(const RowsArgs a) {
  constexpr int VEC = 16 / static_cast<int>(sizeof(T));
  using P = Pack<T, VEC>;
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  const uint32_t row = a.lanes.div(t);
  if (row >= a.rows) return;
  const uint32_t lane = t - row * a.lanes.divisor;
  const T* src = static_cast<const T*>(a.src) + static_cast<uint64_t>(row) * a.src_sr + lane * VEC;
  const float* lp = a.lses + static_cast<uint64_t>(row) * a.lse_sr;
  if constexpr (DEPENDENT) {
    wait_for_previous_kernel();
    if (a.early_trigger) allow_next_kernel_launch();
  }
  const P x0 = load_pack<T, VEC>(src), x1 = load_pack<T, VEC>(src + a.src_sn);
  const float l0 = sanitized_lse(lp[0]), l1 = sanitized_lse(lp[a.lse_sn]);
  const float m = fmaxf(l0, l1), m_sub = m == -INFINITY ? 0.0f : m;
  const float e0 = weight_exp(a, l0, m_sub), e1 = weight_exp(a, l1, m_sub), s = e0 + e1;
  const float inv_s = m == -INFINITY ? 0.0f : reciprocal(s);
  const float w0 = e0 * inv_s, w1 = e1 * inv_s;
  const P y0 = zeroed_if<T, VEC>(w0 == 0.0f, x0), y1 = zeroed_if<T, VEC>(w1 == 0.0f, x1);
  float acc[VEC];
#pragma unroll
  for (int e = 0; e < VEC; ++e) acc[e] = 0.0f + w0 * y0.get(e);  // merge_rows_kernel's order
#pragma unroll
  for (int e = 0; e < VEC; ++e) acc[e] += w1 * y1.get(e);
  store_f32<T, VEC>(static_cast<T*>(a.dst) + static_cast<uint64_t>(row) * a.dst_sr + lane * VEC, acc);
  if (a.dst_lse && lane == 0) a.dst_lse[static_cast<uint64_t>(row) * a.dst_lse_sr] = merged_lse(a, m, s);
  if constexpr (DEPENDENT)
    if (!a.early_trigger) allow_next_kernel_launch();
}

// Row (b, h) of `m` at element (b * H + h) * stride for every b < B, h < H: the stride, or -1.
int64_t row_stride(const RowMap& m, int64_t B, int64_t H) {
  const int64_t stride = H > 1 ? m.head_stride : m.batch_stride;
  if (H > 1 && m.heads_inner < H && m.outer_stride != m.heads_inner * stride) return -1;
  if (B > 1 && m.batch_stride != H * stride) return -1;
  return stride >= 0 ? stride : -1;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

bool launch_merge_rows(const MergeArgs& a, Stream stream, bool pdl) {
  const int64_t esize = static_cast<int64_t>(dtype_size(a.dtype));
  const int64_t vec = 16 / esize;
  const bool correct = a.rank >= 0;
  if (a.offsets || a.out_scale) return false;  // varlen and fp8 output: merge_groups_kernel
  if (a.N > kMaxN || a.lse_dtype != DType::f32 || a.D <= 0 || a.D % vec != 0 || a.src_sd != 1 || a.dst_sd != 1 ||
      !aligned16(a.src) || !aligned16(a.dst))
    return false;
  if (a.dst_lse && (a.dst_lse_dtype != DType::f32 || a.lse_h_begin != 0 || a.lse_h_end != a.H)) return false;
  const int64_t rows = a.B * a.H, vectors_per_row = a.D / vec;
  const int64_t src_sr = row_stride(a.src_rows, a.B, a.H), dst_sr = row_stride(a.dst_rows, a.B, a.H);
  const int64_t lse_sr = row_stride(RowMap{a.lse_sb, a.lse_sh, 0, a.H}, a.B, a.H);
  const int64_t dst_lse_sr = a.dst_lse ? row_stride(a.dst_lse_rows, a.B, a.H) : 0;
  const int64_t src_sn = correct ? 0 : a.src_sn;
  if (src_sr < 0 || dst_sr < 0 || lse_sr < 0 || dst_lse_sr < 0 || src_sn < 0 || a.lse_sn < 0) return false;
  if (src_sr % vec || dst_sr % vec || src_sn % vec) return false;  // every vector 16-byte aligned
  // 32-bit strides and lse offsets; rows are 64-bit apart, and partials too where the last
  // starts past 2^31 elements (wide: merge B8192 H32 D576 N16, 5.2 GB, took the general
  // kernel at 89% of copy before, 105% with them)
  const auto fits = [](int64_t v) { return v >= 0 && v <= INT32_MAX; };
  const int64_t last_n = a.N - 1;
  if (!fits(src_sr) || !fits(dst_sr) || !fits(lse_sr) || !fits(dst_lse_sr) || !fits(src_sn) || !fits(last_n * a.lse_sn))
    return false;
  if (a.kv_lens && (a.kv_sn < 0 || a.kv_sb < 0 || !fits(last_n * a.kv_sn + (a.B - 1) * a.kv_sb))) return false;

  const int64_t sms = sm_count();
  // Large calls (several waves) keep more vectors per lane in flight. Merge has N loads in
  // flight already and takes one vector per lane, except two for N = 3 and 4 (on H200, two
  // were 7-17% slower for N <= 2 and one 5-12% slower for N = 3, 4: docs/performance.md).
  // Correct with N <= 8 takes 4, or 2 for rows under 16 vectors with N <= 4 (more lanes per
  // row, which short rows need; with more partials 2 was slower). Correct with N > 8 shares
  // the lses among a row's lanes (shared): 2 vectors per lane on rows of up to 16 vectors,
  // else 4, and lanes per row rounded up to a power of two up to 32 so that one group of G = L
  // lanes reads each lse once (longer rows: groups of the largest power of two dividing L).
  // Shared lses made N = 16 5-16% faster; with N = 3-8 they were up to 36% slower on calls
  // of 4-105 MB, where the shuffles' latency counts (docs/performance.md); N = 5-8 shares on
  // rows of up to 8 vectors (D = 64 in 16-bit types), where each lane reading all N lses for
  // two vectors of data bound the kernel (the probe: D64 N8 30% faster shared).
  const bool large = rows * vectors_per_row >= 4 * sms * kThreads;
  const bool shared = large && correct && (a.N > 8 || (a.N > 4 && vectors_per_row <= 8));
  int vectors_per_lane = 1;
  if (shared) vectors_per_lane = vectors_per_row <= 16 ? 2 : 4;
  else if (large && correct) vectors_per_lane = a.N <= 4 && vectors_per_row < 16 ? 2 : 4;
  else if (large) vectors_per_lane = a.N == 3 || a.N == 4 ? 2 : 1;
  int64_t L = (vectors_per_row + vectors_per_lane - 1) / vectors_per_lane;
  int group = 1;  // lanes sharing a row's lses
  if (shared) {
    if (L <= 32) {
      while (group < L) group *= 2;
      L = group;
    } else {
      while (group < 32 && L % (2 * group) == 0) group *= 2;
    }
  }
  const int64_t threads_total = rows * L;
  const bool wide = !fits(last_n * src_sn + a.D);
  if (!fits(threads_total + kThreads)) return false;  // thread and row indices are 32-bit
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  // The next kernel (if launched with PDL) may be scheduled once every block has executed
  // allow_next_kernel_launch(); its blocks then wait on the GPU next to this kernel's. Small
  // grids signal at their start: the waiting blocks fit beside them, and the next kernel's
  // launch latency hides behind this one. Larger ones signal after their last store, or the
  // early blocks take the SMs this kernel's later waves need (slower than no PDL at all).
  RowsArgs r{a.src,
             a.dst,
             static_cast<const float*>(a.lses),
             static_cast<float*>(a.dst_lse),
             a.kv_lens,
             a.kv_dtype == DType::i64,
             threads_total <= 512 * sms,
             lse_scales(a.lse_base == LseBase::two),
             static_cast<int32_t>(a.N),
             static_cast<int32_t>(a.rank),
             u32(rows),
             u32(vectors_per_row),
             u32(src_sr),
             u32(src_sn),
             u32(dst_sr),
             u32(lse_sr),
             u32(a.lse_sn),
             u32(dst_lse_sr),
             u32(a.kv_lens ? a.kv_sn : 0),
             u32(a.kv_lens ? a.kv_sb : 0),
             FastDiv(u32(L)),
             FastDiv(u32(a.H))};
  // small grids: smaller blocks spread the rows over more SMs (64 is no faster than 128); large
  // merges of one vector per lane also run best in 128-thread blocks (up to 4% faster than 256
  // on H200), the rest in 256
  const int threads = threads_total >= 2 * sms * kThreads && (correct || vectors_per_lane > 1) ? kThreads : 128;
  const auto blocks = static_cast<unsigned>((threads_total + threads - 1) / threads);
  const auto go = [&]<class T, int VECTORS_PER_LANE, bool MERGE, int MAXN, int GROUP = 1, bool WIDE = false>() {
    launch(merge_rows_kernel<T, VECTORS_PER_LANE, MERGE, MAXN, GROUP, WIDE, false>,
           merge_rows_kernel<T, VECTORS_PER_LANE, MERGE, MAXN, GROUP, WIDE, true>, blocks, threads, 0, stream, pdl, r);
  };
  // code for the smallest of 2, 4, 8, 16 partials >= N
  const auto by_n = [&]<class T, int VECTORS_PER_LANE, bool MERGE, bool WIDE = false>() {
    if (a.N <= 2) go.template operator()<T, VECTORS_PER_LANE, MERGE, 2, 1, WIDE>();
    else if (a.N <= 4) go.template operator()<T, VECTORS_PER_LANE, MERGE, 4, 1, WIDE>();
    else if (a.N <= 8) go.template operator()<T, VECTORS_PER_LANE, MERGE, 8, 1, WIDE>();
    else go.template operator()<T, VECTORS_PER_LANE, MERGE, kMaxN, 1, WIDE>();
  };
  const auto merge = [&]<class T, bool WIDE>() {
    if (vectors_per_lane == 2) go.template operator()<T, 2, true, 4, 1, WIDE>();  // N = 3, 4
    else by_n.template operator()<T, 1, true, WIDE>();
  };
  // shared lses (N > 8, or 4 < N <= 8 on rows of up to 8 vectors): code per group size, P / group
  // lses per lane for P = 16 or 8 partials. Rows of up to 16 vectors (2 per lane) have at most 8
  // lanes; longer ones (4 per lane, N > 8) have groups of 1 to 32 lanes, 1 where L > 32 is odd.
  const auto by_group = [&]<class T, int VECTORS_PER_LANE>() {
    if (a.N <= 8 && group == 1) go.template operator()<T, VECTORS_PER_LANE, false, 8, 1>();
    else if (a.N <= 8 && group == 2) go.template operator()<T, VECTORS_PER_LANE, false, 4, 2>();
    else if (a.N <= 8 && group == 4) go.template operator()<T, VECTORS_PER_LANE, false, 2, 4>();
    else if (group == 1) go.template operator()<T, VECTORS_PER_LANE, false, kMaxN, 1>();
    else if (group == 2) go.template operator()<T, VECTORS_PER_LANE, false, kMaxN / 2, 2>();
    else if (group == 4) go.template operator()<T, VECTORS_PER_LANE, false, kMaxN / 4, 4>();
    else if (group == 8) go.template operator()<T, VECTORS_PER_LANE, false, kMaxN / 8, 8>();
    else if constexpr (VECTORS_PER_LANE == 4) {
      if (group == 16) go.template operator()<T, VECTORS_PER_LANE, false, 1, 16>();
      else go.template operator()<T, VECTORS_PER_LANE, false, 1, 32>();
    } else {
      throw Error("lanes sharing a row's lses", "at most 8 on rows of up to 16 vectors", std::to_string(group));
    }
  };
  const auto by_type = [&]<class T>() {
    if (shared) {
      if (vectors_per_lane == 2) by_group.template operator()<T, 2>();
      else by_group.template operator()<T, 4>();
    } else if (correct) {
      if (vectors_per_lane == 4) {  // large, N <= 8
        if (a.N <= 2) go.template operator()<T, 4, false, 2>();
        else if (a.N <= 4) go.template operator()<T, 4, false, 4>();
        else go.template operator()<T, 4, false, 8>();
      } else if (vectors_per_lane == 2) a.N <= 2 ? go.template operator()<T, 2, false, 2>() : go.template operator()<T, 2, false, 4>();  // N <= 4
      else by_n.template operator()<T, 1, false>();
    } else if (a.N == 2 && !a.kv_lens) {
      launch(merge_pair_kernel<T, false>, merge_pair_kernel<T, true>, blocks, threads, 0, stream, pdl, r);
    } else if (wide) {
      merge.template operator()<T, true>();
    } else {
      merge.template operator()<T, false>();
    }
  };
  CPATTN_DISPATCH_CUDA_FLOAT(a.dtype, "dtype", T, [&] { by_type.template operator()<T>(); });
  return true;
}

}  // namespace cpattn::cuda
