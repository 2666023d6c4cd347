// merge_rows_kernel: merge_attn_states / correct_attn_out for the common layout, with the
// fewest instructions between launch and store.
//
// Taken when every row (b, h) of src, dst and the lses sits at one stride (row = b * H + h),
// the data moves in 16-byte vectors, the lses are f32 and N <= 16. A row is owned by L lanes
// (L need not be a power of two nor stay inside one warp): lane i handles vectors i, i + L,
// ... (VECTORS_PER_LANE of them). Every lane reads the row's N lses itself (the same L1 line
// for the row's lanes) and reduces them in registers, so there are no shuffles, no shared
// memory and no barrier, and the index math is 32-bit. Decode calls are latency bound, and
// the kernel of merge.cu spends many more instructions per warp on general strides and
// run-time dtypes.
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
  bool kv_lens_i64, lse_base_two;
  bool early_trigger;     // DEPENDENT: let the next kernel be scheduled at the start (else at the end)
  int32_t N, rank;        // rank < 0: merge
  uint32_t rows, vectors_per_row;
  // element strides: between rows, and between partials
  uint32_t src_sr, src_sn, dst_sr, lse_sr, lse_sn, dst_lse_sr, kv_sn, kv_sb;
  FastDiv lanes;  // thread -> (row, lane); divisor = L
  FastDiv heads;  // row -> b (for kv_lens)
};

// The row's lses in registers, sanitised: NaN, +inf and kv_lens == 0 become -inf (empty),
// and so are the entries past N; then e[i] = exp(l[i] - max), 0 for those. MAXN (>= N, picked
// by the launch among 2, 4, 8, 16) makes the code straight-line: the loads all go out before
// any is used, and the N exps overlap instead of waiting on each other behind per-partial
// branches (exp(-inf) adds exact zeros).
template <int MAXN>
struct RowLses {
  float e[MAXN];  // exp(l_i - m): the partials' weights times s
  float m, s;     // max and sum of e; m == -inf: every partial is empty
};

template <int MAXN>
__device__ __forceinline__ RowLses<MAXN> row_lses(const RowsArgs& a, uint32_t row) {
  RowLses<MAXN> r;
  float l[MAXN];
  const float* lp = a.lses + static_cast<uint64_t>(row) * a.lse_sr;
#pragma unroll
  for (int i = 0; i < MAXN; ++i) l[i] = i < a.N ? lp[i * a.lse_sn] : -INFINITY;
  if (a.kv_lens) {
    const uint32_t kv_off = a.heads.div(row) * a.kv_sb;
    int64_t len[MAXN];
#pragma unroll
    for (int i = 0; i < MAXN; ++i) {
      const uint32_t k = kv_off + i * a.kv_sn;
      len[i] = i >= a.N ? 1 : a.kv_lens_i64 ? static_cast<const int64_t*>(a.kv_lens)[k] : static_cast<const int32_t*>(a.kv_lens)[k];
    }
#pragma unroll
    for (int i = 0; i < MAXN; ++i)
      if (len[i] == 0) l[i] = -INFINITY;
  }
  r.m = -INFINITY;
#pragma unroll
  for (int i = 0; i < MAXN; ++i) {
    l[i] = l[i] != l[i] || l[i] == INFINITY ? -INFINITY : l[i];
    r.m = fmaxf(r.m, l[i]);
  }
  r.s = 0.0f;
#pragma unroll
  for (int i = 0; i < MAXN; ++i) {
    r.e[i] = r.m == -INFINITY ? 0.0f : lse_exp(l[i] - r.m, a.lse_base_two);
    r.s += r.e[i];
  }
  return r;
}

// merge_rows_kernel: merge_attn_states (MERGE) / correct_attn_out when every row sits at one
// stride.
//   src: outs [N, B, H, D] (row r of partial n at src + r * src_sr + n * src_sn) or this
//   rank's out [B, H, D] (correct: src_sn = 0); lses f32 [N, B, H] (row r of partial n at
//   r * lse_sr + n * lse_sn); kv_lens [N, B] int32/int64 (optional); dst [B, H, D] (row
//   stride dst_sr); dst_lse f32 [B, H] (optional, row stride dst_lse_sr); lses in base e or 2.
//   T: the data type, moved in 16-byte vectors; MAXN >= N: fewer registers where the launch
//   knows N is small; DEPENDENT: launched as a programmatic dependent (launch.cuh).
// Grid: ceil(B * H * L / blockDim.x) blocks of 128 or 256 threads, L lanes per row (any
// count: a row may straddle warps); thread t serves row t / L as lane t % L.
// Each thread: its row's N lses into registers (sanitised, masked by kv_lens), their max
// and sum; then VECTORS_PER_LANE vectors (lane, lane + L, ...): correct scales the rank's
// row by its weight, merge sums the N weighted partials in f32 (kChunk partials' loads in
// flight at once); lane 0 stores the merged lse last.
template <class T, int VECTORS_PER_LANE, bool MERGE, int MAXN, bool DEPENDENT>
__global__ void __launch_bounds__(kThreads) merge_rows_kernel(const RowsArgs a) {
  constexpr int VEC = 16 / static_cast<int>(sizeof(T));
  constexpr int kChunk = MERGE ? (8 / VECTORS_PER_LANE < MAXN ? 8 / VECTORS_PER_LANE : MAXN) : 1;  // merge: partials loaded together
  using P = Pack<T, VEC>;
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  const uint32_t row = a.lanes.div(t);
  if (row >= a.rows) return;
  const uint32_t L = a.lanes.divisor, lane = t - row * L;
  const T* src = static_cast<const T*>(a.src) + static_cast<uint64_t>(row) * a.src_sr;
  T* dst = static_cast<T*>(a.dst) + static_cast<uint64_t>(row) * a.dst_sr;
  if constexpr (DEPENDENT) {
    wait_for_previous_kernel();
    if (a.early_trigger) allow_next_kernel_launch();
  }

  // the first data loads go out before the lse math
  P x[VECTORS_PER_LANE][kChunk] = {};
  const auto load_chunk = [&](int c) {
#pragma unroll
    for (int j = 0; j < kChunk; ++j)
#pragma unroll
      for (int i = 0; i < VECTORS_PER_LANE; ++i) {
        const uint32_t v = lane + i * L;
        if ((!MERGE || c + j < a.N) && v < a.vectors_per_row) x[i][j] = load_pack<T, VEC>(src + (c + j) * a.src_sn + v * VEC);
      }
  };
  load_chunk(0);  // correct: src_sn is 0 (src is the rank's out)
  const RowLses<MAXN> r = row_lses<MAXN>(a, row);
  const bool empty = r.m == -INFINITY;
  const float inv_s = empty ? 0.0f : 1.0f / r.s;

  if constexpr (!MERGE) {
    float e_rank = 0.0f;
#pragma unroll
    for (int i = 0; i < MAXN; ++i) e_rank = i == a.rank ? r.e[i] : e_rank;
    const float w = e_rank * inv_s;
#pragma unroll
    for (int i = 0; i < VECTORS_PER_LANE; ++i) {
      const uint32_t v = lane + i * L;
      if (v < a.vectors_per_row) scale_store<T, VEC>(dst + v * VEC, w, x[i][0]);
    }
  } else {
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
  }
  // last: its log is off the path to the data stores
  if (a.dst_lse && lane == 0) a.dst_lse[static_cast<uint64_t>(row) * a.dst_lse_sr] = empty ? -INFINITY : r.m + lse_log(r.s, a.lse_base_two);
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
  // 32-bit offsets inside a row's partials and strides; rows themselves are 64-bit apart
  const auto fits = [](int64_t v) { return v >= 0 && v <= INT32_MAX; };
  const int64_t last_n = a.N - 1;
  if (!fits(src_sr) || !fits(dst_sr) || !fits(lse_sr) || !fits(dst_lse_sr) || !fits(last_n * src_sn + a.D) ||
      !fits(last_n * a.lse_sn))
    return false;
  if (a.kv_lens && (a.kv_sn < 0 || a.kv_sb < 0 || !fits(last_n * a.kv_sn + (a.B - 1) * a.kv_sb))) return false;

  const int64_t sms = sm_count();
  // Large calls (several waves) keep more vectors per lane in flight: correct 4, or 2 for
  // rows under 16 vectors with N <= 4 (more lanes per row, which short rows need; with many
  // partials 2 was slower); merge has N loads in flight already and takes one vector per lane,
  // except two for N = 3 and 4 (on H200, two were 7-17% slower for N <= 2 and one 5-12% slower
  // for N = 3, 4: docs/performance.md).
  // Correct with more than 8 partials on rows of >= 32 vectors takes 8 per lane: every lane
  // reads its row's N lses, and fewer lanes per row read them fewer times (8-10% faster at
  // N = 16, D >= 256; slower for N = 8 or shorter rows).
  const bool large = rows * vectors_per_row >= 4 * sms * kThreads;
  const int correct_vectors = a.N > 8 && vectors_per_row >= 32 ? 8 : a.N <= 4 && vectors_per_row < 16 ? 2 : 4;
  const int vectors_per_lane = !large ? 1 : correct ? correct_vectors : a.N == 3 || a.N == 4 ? 2 : 1;
  const int64_t L = (vectors_per_row + vectors_per_lane - 1) / vectors_per_lane;
  const int64_t threads_total = rows * L;
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
             a.lse_base == LseBase::two,
             threads_total <= 512 * sms,
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
  const auto go = [&]<class T, int VECTORS_PER_LANE, bool MERGE, int MAXN>() {
    launch(merge_rows_kernel<T, VECTORS_PER_LANE, MERGE, MAXN, false>, merge_rows_kernel<T, VECTORS_PER_LANE, MERGE, MAXN, true>,
           blocks, threads, 0, stream, pdl, r);
  };
  // code for the smallest of 2, 4, 8, 16 partials >= N
  const auto by_n = [&]<class T, int VECTORS_PER_LANE, bool MERGE>() {
    if (a.N <= 2) go.template operator()<T, VECTORS_PER_LANE, MERGE, 2>();
    else if (a.N <= 4) go.template operator()<T, VECTORS_PER_LANE, MERGE, 4>();
    else if (a.N <= 8) go.template operator()<T, VECTORS_PER_LANE, MERGE, 8>();
    else go.template operator()<T, VECTORS_PER_LANE, MERGE, kMaxN>();
  };
  const auto by_type = [&]<class T>() {
    if (correct) {
      if (vectors_per_lane == 8) go.template operator()<T, 8, false, kMaxN>();  // 8 < N <= 16
      else if (vectors_per_lane == 4) by_n.template operator()<T, 4, false>();
      else if (vectors_per_lane == 2) a.N <= 2 ? go.template operator()<T, 2, false, 2>() : go.template operator()<T, 2, false, 4>();  // N <= 4
      else by_n.template operator()<T, 1, false>();
    } else {
      if (vectors_per_lane == 2) go.template operator()<T, 2, true, 4>();  // N = 3, 4
      else by_n.template operator()<T, 1, true>();
    }
  };
  CPATTN_DISPATCH_CUDA_FLOAT(a.dtype, "dtype", T, [&] { by_type.template operator()<T>(); });
  return true;
}

}  // namespace cpattn::cuda
