// merge_attn_states / correct_attn_out on CUDA (also every data step of the cp_* functions).
//
// One row (b, h) per group of `threads_per_row` threads; each thread owns VEC consecutive
// elements of D per step (VEC * sizeof(T) == 16 on the vector path, 1 on the scalar path
// taken when D, a stride or a pointer is not 16-byte aligned). N is a runtime loop: no
// recompilation per N. Weights are recomputed from the (L1-resident) lses instead of being
// kept in a runtime-indexed array, which would spill to local memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "../core/args.hpp"
#include "backend.hpp"
#include "check.cuh"
#include "elements.cuh"

namespace cpattn::cuda {
namespace {

using detail::MergeArgs;
using detail::RowMap;
constexpr int kBlockThreads = 256;

// Heads and rows are < 2^31 (checked at launch): 32-bit divisions, which cost a few
// instructions where a 64-bit one is a long subroutine on every thread's critical path.
__device__ __forceinline__ int64_t row_at(const RowMap& m, int64_t b, int64_t h) {
  const int64_t outer = static_cast<uint32_t>(h) / static_cast<uint32_t>(m.h_inner);
  return b * m.sb + outer * m.s_outer + (h - outer * m.h_inner) * m.sh;
}
__device__ __forceinline__ int64_t row_batch(int64_t row, int64_t H) {
  return static_cast<uint32_t>(row) / static_cast<uint32_t>(H);
}

// sanitize(lse_r) with the kv_lens mask: NaN, +inf and empty partials become -inf.
__device__ __forceinline__ float partial_lse(const MergeArgs& a, int64_t r, int64_t b, int64_t h) {
  float l = load_float(a.lses, a.lse_dtype, r * a.lse_sn + b * a.lse_sb + h * a.lse_sh);
  if (l != l || l == INFINITY) l = -INFINITY;
  if (a.kv_lens && load_index(a.kv_lens, a.kv_dtype, r * a.kv_sn + b * a.kv_sb) == 0) l = -INFINITY;
  return l;
}

__device__ __forceinline__ float ex(float x, bool base2) { return base2 ? exp2f(x) : expf(x); }
__device__ __forceinline__ float lg(float x, bool base2) { return base2 ? log2f(x) : logf(x); }

// Weight of a partial with sanitised lse `l` in a row with merged lse `lse`.
__device__ __forceinline__ float weight(float l, float lse, bool base2) {
  return lse == -INFINITY ? 0.0f : ex(l - lse, base2);
}

template <class T, int VEC, bool CORRECT>
__global__ void __launch_bounds__(kBlockThreads) merge_rows(const MergeArgs a, int threads_per_row, int rows_per_block) {
  const int group = threadIdx.x / threads_per_row;
  const int lane = threadIdx.x - group * threads_per_row;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + group;
  if (group >= rows_per_block || row >= a.B * a.H) return;
  const int64_t b = row_batch(row, a.H), h = row - b * a.H;
  const T* src = static_cast<const T*>(a.src) + row_at(a.src_rows, b, h);
  T* dst = static_cast<T*>(a.dst) + row_at(a.dst_rows, b, h);
  const int64_t step = static_cast<int64_t>(threads_per_row) * VEC;
  int64_t d = static_cast<int64_t>(lane) * VEC;

  // correct: start the (usually only) data load before the lse arithmetic it does not need
  float x[VEC];
  if (CORRECT && d < a.D) load_f32<T, VEC>(src + d * a.src_sd, x);

  float m = -INFINITY;
  for (int64_t r = 0; r < a.N; ++r) m = fmaxf(m, partial_lse(a, r, b, h));
  float lse = -INFINITY;
  if (m != -INFINITY) {
    float s = 0.0f;
    for (int64_t r = 0; r < a.N; ++r) s += ex(partial_lse(a, r, b, h) - m, a.base2);
    lse = m + lg(s, a.base2);
  }
  if (lane == 0 && a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
    store_float(a.dst_lse, a.dst_lse_dtype, row_at(a.dst_lse_rows, b, h - a.lse_h_begin), lse);

  if constexpr (CORRECT) {
    const float w = weight(partial_lse(a, a.rank, b, h), lse, a.base2);
    for (; d < a.D; d += step) {
      float y[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) y[i] = w == 0.0f ? 0.0f : w * x[i];  // exact zeros for empty shards
      store_f32<T, VEC>(dst + d * a.dst_sd, y);
      if (d + step < a.D) load_f32<T, VEC>(src + (d + step) * a.src_sd, x);
    }
  } else {
    for (; d < a.D; d += step) {
      float acc[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
#pragma unroll 4
      for (int64_t r = 0; r < a.N; ++r) {
        // loads are unconditional (kept in flight together); the select drops empty partials
        load_f32<T, VEC>(src + r * a.src_sn + d * a.src_sd, x);
        const float w = weight(partial_lse(a, r, b, h), lse, a.base2);
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] += w == 0.0f ? 0.0f : w * x[i];
      }
      store_f32<T, VEC>(dst + d * a.dst_sd, acc);
    }
  }
}

// The fast path. The threads of a row first stage the N sanitised lses in shared memory
// (each lse loaded once per row, each exp computed once per row, by the lane that owns it);
// the data loop then only reads weights: N smem loads and N 16-byte global loads per step.
// w_r = exp(l_r - m) / sum_j exp(l_j - m) = exp(l_r - lse).
template <class T, int VEC, bool CORRECT>
__global__ void __launch_bounds__(kBlockThreads)
    merge_rows_staged(const MergeArgs a, int threads_per_row, int rows_per_block) {
  extern __shared__ float staged[];  // [rows_per_block][N]: lse, then exp(lse - m)
  const int group = threadIdx.x / threads_per_row;
  const int lane = threadIdx.x - group * threads_per_row;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + group;
  const bool active = group < rows_per_block && row < a.B * a.H;  // every thread reaches the barriers
  const int64_t b = active ? row_batch(row, a.H) : 0, h = active ? row - b * a.H : 0;
  float* e = staged + static_cast<int64_t>(min(group, rows_per_block - 1)) * a.N;
  const T* src = static_cast<const T*>(a.src) + (active ? row_at(a.src_rows, b, h) : 0);
  T* dst = static_cast<T*>(a.dst) + (active ? row_at(a.dst_rows, b, h) : 0);
  const int64_t step = static_cast<int64_t>(threads_per_row) * VEC;
  int64_t d = static_cast<int64_t>(lane) * VEC;

  float x[VEC];
  if (CORRECT && active && d < a.D) load_f32<T, VEC>(src + d * a.src_sd, x);  // in flight across the barriers

  if (active && group < rows_per_block)
    for (int64_t r = lane; r < a.N; r += threads_per_row) e[r] = partial_lse(a, r, b, h);
  __syncthreads();
  float m = -INFINITY;
  if (active)
    for (int64_t r = 0; r < a.N; ++r) m = fmaxf(m, e[r]);
  __syncthreads();  // all reads of the raw lses are done before they become exps
  if (active)
    for (int64_t r = lane; r < a.N; r += threads_per_row)
      e[r] = m == -INFINITY ? 0.0f : ex(e[r] - m, a.base2);
  __syncthreads();
  if (!active) return;
  float s = 0.0f;
  for (int64_t r = 0; r < a.N; ++r) s += e[r];  // same order in every thread: identical s
  const float lse = m == -INFINITY ? -INFINITY : m + lg(s, a.base2);
  const float inv_s = m == -INFINITY ? 0.0f : 1.0f / s;
  if (lane == 0 && a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
    store_float(a.dst_lse, a.dst_lse_dtype, row_at(a.dst_lse_rows, b, h - a.lse_h_begin), lse);

  if constexpr (CORRECT) {
    const float w = e[a.rank] * inv_s;
    for (; d < a.D; d += step) {
      float y[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) y[i] = w == 0.0f ? 0.0f : w * x[i];  // exact zeros for empty shards
      store_f32<T, VEC>(dst + d * a.dst_sd, y);
      if (d + step < a.D) load_f32<T, VEC>(src + (d + step) * a.src_sd, x);
    }
  } else {
    for (; d < a.D; d += step) {
      float acc[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
#pragma unroll 4
      for (int64_t r = 0; r < a.N; ++r) {
        load_f32<T, VEC>(src + r * a.src_sn + d * a.src_sd, x);  // unconditional: loads stay in flight together
        const float w = e[r] * inv_s;
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] += w == 0.0f ? 0.0f : w * x[i];
      }
      store_f32<T, VEC>(dst + d * a.dst_sd, acc);
    }
  }
}

// correct_attn_out at copy bandwidth. correct moves one vector in and one out per 16 bytes,
// so per-row groups leave too few bytes in flight while the lse arithmetic runs. Here a
// block owns a tile of whole rows: every thread first issues its kVecsPerThread loads
// (compile-time count, registers only), one thread per row computes that row's weight into
// shared memory meanwhile, then every thread scales and stores.
constexpr int kVecsPerThread = 4;

template <class T, int VEC>
__global__ void __launch_bounds__(kBlockThreads)
    correct_tiles(const MergeArgs a, int vecs_per_row, int rows_per_block) {
  __shared__ float weight[kBlockThreads * kVecsPerThread];
  const int64_t rows = a.B * a.H;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * rows_per_block;
  const int tile_vecs = rows_per_block * vecs_per_row;
  float x[kVecsPerThread][VEC];
  int64_t src_off[kVecsPerThread], dst_off[kVecsPerThread];
  int local_row[kVecsPerThread];
#pragma unroll
  for (int i = 0; i < kVecsPerThread; ++i) {
    const int v = threadIdx.x + i * static_cast<int>(blockDim.x);
    local_row[i] = v / vecs_per_row;
    const int64_t row = row0 + local_row[i];
    if (v < tile_vecs && row < rows) {
      const int64_t b = row_batch(row, a.H), h = row - b * a.H;
      const int64_t d = static_cast<int64_t>(v - local_row[i] * vecs_per_row) * VEC;
      src_off[i] = row_at(a.src_rows, b, h) + d * a.src_sd;
      dst_off[i] = row_at(a.dst_rows, b, h) + d * a.dst_sd;
      load_f32<T, VEC>(static_cast<const T*>(a.src) + src_off[i], x[i]);
    } else {
      local_row[i] = -1;
    }
  }
  // the block's [rows, N] lse tile in one parallel round trip, while the data loads fly
  extern __shared__ float lse_tile[];
  const int rows_here = static_cast<int>(min(static_cast<int64_t>(rows_per_block), rows - row0));
  const int tile_lses = rows_here * static_cast<int>(a.N);
  for (int i = threadIdx.x; i < tile_lses; i += blockDim.x) {
    const int lr = i / static_cast<int>(a.N);
    const int64_t row = row0 + lr, b = row_batch(row, a.H), h = row - b * a.H;
    lse_tile[i] = partial_lse(a, i - lr * a.N, b, h);
  }
  __syncthreads();
  if (threadIdx.x < rows_here) {
    const int64_t row = row0 + threadIdx.x, b = row_batch(row, a.H), h = row - b * a.H;
    const float* l = lse_tile + static_cast<int64_t>(threadIdx.x) * a.N;
    float m = -INFINITY;
    for (int64_t r = 0; r < a.N; ++r) m = fmaxf(m, l[r]);
    float w = 0.0f, lse = -INFINITY;
    if (m != -INFINITY) {
      float s = 0.0f;
      for (int64_t r = 0; r < a.N; ++r) s += ex(l[r] - m, a.base2);
      lse = m + lg(s, a.base2);
      w = ex(l[a.rank] - lse, a.base2);
    }
    weight[threadIdx.x] = w;
    if (a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
      store_float(a.dst_lse, a.dst_lse_dtype, row_at(a.dst_lse_rows, b, h - a.lse_h_begin), lse);
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kVecsPerThread; ++i) {
    if (local_row[i] < 0) continue;
    const float w = weight[local_row[i]];
    float y[VEC];
#pragma unroll
    for (int j = 0; j < VEC; ++j) y[j] = w == 0.0f ? 0.0f : w * x[i][j];  // exact zeros for empty shards
    store_f32<T, VEC>(static_cast<T*>(a.dst) + dst_off[i], y);
  }
}

// The main path: one row per group of G = 2^shift lanes of a warp (G <= 32), so the row's
// reductions are warp shuffles and there is no block barrier. Lane i owns partials i, i+G, ...
// (max, then sum of exps, both by xor butterflies: every lane ends with bitwise the same
// value). correct issues its first V data loads before any lse arithmetic; merge stages the
// row's N weights in this warp's shared memory (synchronised by __syncwarp only).
constexpr int kGroupVecs = 2;  // vectors per lane per pass for correct

__device__ __forceinline__ float group_max(float v, int g) {
  for (int o = g >> 1; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float group_sum(float v, int g) {
  for (int o = g >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class T, int VEC, bool CORRECT>
__global__ void __launch_bounds__(kBlockThreads) merge_groups(const MergeArgs a, int shift, int vecs_per_row) {
  extern __shared__ float group_weights[];  // merge: [blockDim.x >> shift][N]
  const int g = 1 << shift;
  const int lane = threadIdx.x & (g - 1);
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const bool active = row < a.B * a.H;  // inactive lanes still take part in the shuffles
  const int64_t b = active ? row_batch(row, a.H) : 0, h = active ? row - b * a.H : 0;
  const T* src = static_cast<const T*>(a.src) + (active ? row_at(a.src_rows, b, h) : 0);
  T* dst = static_cast<T*>(a.dst) + (active ? row_at(a.dst_rows, b, h) : 0);
  const int64_t vec_sd = static_cast<int64_t>(VEC) * a.src_sd, vec_dd = static_cast<int64_t>(VEC) * a.dst_sd;

  float x[kGroupVecs][VEC];
  float l_rank = -INFINITY;
  if constexpr (CORRECT) {
#pragma unroll
    for (int i = 0; i < kGroupVecs; ++i) {
      const int v = lane + i * g;
      if (active && v < vecs_per_row) load_f32<T, VEC>(src + v * vec_sd, x[i]);
    }
    if (active) l_rank = partial_lse(a, a.rank, b, h);
  }
  const float l_own = active && lane < a.N ? partial_lse(a, lane, b, h) : -INFINITY;
  float m = l_own;
  for (int64_t r = lane + g; active && r < a.N; r += g) m = fmaxf(m, partial_lse(a, r, b, h));
  m = group_max(m, g);
  const bool empty = m == -INFINITY;  // every partial of the row is empty
  float s = empty ? 0.0f : ex(l_own - m, a.base2);
  for (int64_t r = lane + g; active && !empty && r < a.N; r += g) s += ex(partial_lse(a, r, b, h) - m, a.base2);
  s = group_sum(s, g);
  const float lse = empty ? -INFINITY : m + lg(s, a.base2);
  if (active && lane == 0 && a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
    store_float(a.dst_lse, a.dst_lse_dtype, row_at(a.dst_lse_rows, b, h - a.lse_h_begin), lse);
  if (!active) return;  // no shuffles past this point

  if constexpr (CORRECT) {
    const float w = empty ? 0.0f : ex(l_rank - lse, a.base2);
    const auto scale_store = [&](int64_t v, const float (&in)[VEC]) {
      float y[VEC];
#pragma unroll
      for (int j = 0; j < VEC; ++j) y[j] = w == 0.0f ? 0.0f : w * in[j];  // exact zeros for empty shards
      store_f32<T, VEC>(dst + v * vec_dd, y);
    };
#pragma unroll
    for (int i = 0; i < kGroupVecs; ++i) {
      const int v = lane + i * g;
      if (v < vecs_per_row) scale_store(v, x[i]);
    }
    for (int64_t v = lane + kGroupVecs * g; v < vecs_per_row; v += g) {  // rows wider than one pass
      load_f32<T, VEC>(src + v * vec_sd, x[0]);
      scale_store(v, x[0]);
    }
  } else {
    float* w = group_weights + static_cast<int64_t>(threadIdx.x >> shift) * a.N;
    const float inv_s = empty ? 0.0f : 1.0f / s;
    if (lane < a.N) w[lane] = empty ? 0.0f : ex(l_own - m, a.base2) * inv_s;
    for (int64_t r = lane + g; r < a.N; r += g) w[r] = empty ? 0.0f : ex(partial_lse(a, r, b, h) - m, a.base2) * inv_s;
    __syncwarp();
    for (int64_t v = lane; v < vecs_per_row; v += g) {
      float acc[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
#pragma unroll 4
      for (int64_t r = 0; r < a.N; ++r) {
        load_f32<T, VEC>(src + r * a.src_sn + v * vec_sd, x[0]);  // unconditional: loads stay in flight together
        const float wr = w[r];
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] += wr == 0.0f ? 0.0f : wr * x[0][i];
      }
      store_f32<T, VEC>(dst + v * vec_dd, acc);
    }
  }
}

constexpr int kMaxStagedBytes = 16 * 1024;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

bool vector_path_ok(const MergeArgs& a, size_t esize) {
  const auto bytes_ok = [&](int64_t elems) { return (elems * static_cast<int64_t>(esize)) % 16 == 0; };
  const auto rows_ok = [&](const RowMap& m) { return bytes_ok(m.sb) && bytes_ok(m.sh) && bytes_ok(m.s_outer); };
  return a.D > 0 && bytes_ok(a.D) && a.src_sd == 1 && a.dst_sd == 1 && aligned16(a.src) && aligned16(a.dst) &&
         rows_ok(a.src_rows) && rows_ok(a.dst_rows) && (a.rank >= 0 || bytes_ok(a.src_sn));
}

// Launches merge_groups; false where it does not apply (merge with N too large for the
// shared-memory weights of even one warp).
template <class T>
bool launch_groups(const MergeArgs& a, bool vec, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool correct = a.rank >= 0;
  const int per_thread = vec ? kVec : 1;
  const int64_t vecs_per_row = (a.D + per_thread - 1) / per_thread;
  if (vecs_per_row > INT32_MAX / 64) return false;
  // lanes per row: enough for the row in one pass (kGroupVecs vectors per lane for correct)
  const int64_t want = correct ? (vecs_per_row + kGroupVecs - 1) / kGroupVecs : vecs_per_row;
  int shift = 0;
  while (shift < 5 && (int64_t{1} << shift) < want) ++shift;
  const int64_t rows = a.B * a.H;
  const int64_t total_threads = rows << shift;
  // small grids: smaller blocks spread the rows over more SMs
  int threads = total_threads >= int64_t{2} * 132 * kBlockThreads ? kBlockThreads : 128;
  size_t smem = 0;
  if (!correct) {
    const int64_t row_bytes = a.N * static_cast<int64_t>(sizeof(float));
    const int64_t rows_fit = kMaxStagedBytes / row_bytes;  // rows of weights per block
    const int64_t max_threads = (rows_fit << shift) / 32 * 32;
    if (max_threads < 32) return false;
    threads = static_cast<int>(std::min<int64_t>(threads, max_threads));
    smem = static_cast<size_t>((threads >> shift) * row_bytes);
  }
  const int64_t block_count = (total_threads + threads - 1) / threads;
  if (block_count > INT32_MAX) throw Error("B * H", "fewer rows per call", std::to_string(rows));
  const auto blocks = static_cast<unsigned>(block_count);
  const int vpr = static_cast<int>(vecs_per_row);
  if (vec && correct) merge_groups<T, kVec, true><<<blocks, threads, smem, stream>>>(a, shift, vpr);
  else if (vec) merge_groups<T, kVec, false><<<blocks, threads, smem, stream>>>(a, shift, vpr);
  else if (correct) merge_groups<T, 1, true><<<blocks, threads, smem, stream>>>(a, shift, vpr);
  else merge_groups<T, 1, false><<<blocks, threads, smem, stream>>>(a, shift, vpr);
  CPATTN_CHECK_LAUNCH();
  return true;
}

template <class T>
void launch(const MergeArgs& a, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vec = vector_path_ok(a, sizeof(T));
  static const bool legacy = std::getenv("CPATTN_CUDA_LEGACY") != nullptr;  // TEMPORARY: A/B on the device
  if (!legacy && launch_groups<T>(a, vec, stream)) return;
  const int per_thread = vec ? kVec : 1;
  const int64_t chunks = std::max<int64_t>((a.D + per_thread - 1) / per_thread, 1);
  const int threads_per_row = static_cast<int>(std::min<int64_t>(chunks, vec ? 128 : kBlockThreads));
  const int64_t rows = a.B * a.H;
  const bool correct = a.rank >= 0;
  // correct, rows of at most one tile: the streaming tile kernel
  const int64_t vecs_per_row = (a.D + per_thread - 1) / per_thread;
  const int tile_rows = static_cast<int>(
      std::min<int64_t>(std::max<int64_t>(kBlockThreads * kVecsPerThread / std::max<int64_t>(vecs_per_row, 1), 1), kBlockThreads));
  if (correct && a.D > 0 && vecs_per_row <= kBlockThreads * kVecsPerThread &&
      tile_rows * a.N * static_cast<int64_t>(sizeof(float)) <= kMaxStagedBytes * 2) {
    const int rows_per_block = tile_rows;
    const size_t smem = static_cast<size_t>(rows_per_block) * static_cast<size_t>(a.N) * sizeof(float);
    const int64_t block_count = (rows + rows_per_block - 1) / rows_per_block;
    if (block_count > INT32_MAX) throw Error("B * H", "fewer rows per call", std::to_string(rows));
    const int used = static_cast<int>(std::min<int64_t>(rows_per_block * vecs_per_row, kBlockThreads * kVecsPerThread));
    const int threads = std::max(std::min(kBlockThreads, (used + kVecsPerThread - 1) / kVecsPerThread), rows_per_block);
    if (vec) correct_tiles<T, kVec><<<static_cast<unsigned>(block_count), threads, smem, stream>>>(a, static_cast<int>(vecs_per_row), rows_per_block);
    else correct_tiles<T, 1><<<static_cast<unsigned>(block_count), threads, smem, stream>>>(a, static_cast<int>(vecs_per_row), rows_per_block);
    CPATTN_CHECK_LAUNCH();
    return;
  }
  int rows_per_block = std::max(1, kBlockThreads / threads_per_row);
  // staged weights need rows_per_block * N floats of shared memory; huge N falls back to
  // recomputing the weights in every thread
  const bool staged = a.N * static_cast<int64_t>(sizeof(float)) <= kMaxStagedBytes;
  if (staged)
    rows_per_block = static_cast<int>(std::min<int64_t>(rows_per_block, kMaxStagedBytes / (a.N * sizeof(float)) ));
  rows_per_block = static_cast<int>(std::max<int64_t>(std::min<int64_t>(rows_per_block, rows), 1));
  const int64_t block_count = (rows + rows_per_block - 1) / rows_per_block;
  if (block_count > INT32_MAX)
    throw Error("B * H", "at most " + std::to_string(int64_t{INT32_MAX} * rows_per_block) + " rows per call",
                std::to_string(rows));
  const auto blocks = static_cast<unsigned>(block_count);
  const auto threads = static_cast<unsigned>(rows_per_block * threads_per_row);
  if (staged && a.N > 0) {
    const size_t smem = static_cast<size_t>(rows_per_block) * static_cast<size_t>(a.N) * sizeof(float);
    if (vec && correct) merge_rows_staged<T, kVec, true><<<blocks, threads, smem, stream>>>(a, threads_per_row, rows_per_block);
    else if (vec) merge_rows_staged<T, kVec, false><<<blocks, threads, smem, stream>>>(a, threads_per_row, rows_per_block);
    else if (correct) merge_rows_staged<T, 1, true><<<blocks, threads, smem, stream>>>(a, threads_per_row, rows_per_block);
    else merge_rows_staged<T, 1, false><<<blocks, threads, smem, stream>>>(a, threads_per_row, rows_per_block);
    CPATTN_CHECK_LAUNCH();
    return;
  }
  if (vec && correct) merge_rows<T, kVec, true><<<blocks, threads, 0, stream>>>(a, threads_per_row, rows_per_block);
  else if (vec) merge_rows<T, kVec, false><<<blocks, threads, 0, stream>>>(a, threads_per_row, rows_per_block);
  else if (correct) merge_rows<T, 1, true><<<blocks, threads, 0, stream>>>(a, threads_per_row, rows_per_block);
  else merge_rows<T, 1, false><<<blocks, threads, 0, stream>>>(a, threads_per_row, rows_per_block);
  CPATTN_CHECK_LAUNCH();
}

}  // namespace

void merge(const MergeArgs& a, Stream stream) {
  if (a.B == 0 || a.H == 0) return;
  if (a.B * a.H > INT32_MAX)
    throw Error("B * H", "at most 2^31 - 1 rows (b, h) per call on CUDA", std::to_string(a.B * a.H));
  switch (a.dtype) {
    case DType::f16: launch<__half>(a, stream); break;
    case DType::bf16: launch<__nv_bfloat16>(a, stream); break;
    default: launch<float>(a, stream);
  }
}

}  // namespace cpattn::cuda
