// The cp functions over the direct transport: one kernel per call, no collective on the
// data path. Every rank stores, for each owner, the rows of the heads that owner keeps
// (its output rows and f32 LSEs) straight into the owner's symmetric buffer over NVLink;
// a flag per (source rank, block) in the owner's buffer says they have landed; then each
// rank merges the N partials of its own rows in f32 and rounds once.
//
// Why the barrier is per block and needs no grid-wide step: block j of every rank handles
// the same row indices (same shapes, same grid), so the rows block j of the owner merges
// are exactly the rows block j of each peer sent. Why two halves: a peer may start call
// k+1 (and write) while this rank still merges call k; call k+2 reuses call k's half only
// after every rank's kernel k+1 has run, which needs this rank's kernel k to have
// finished (stream order). The call counter lives on the device (state[0]), bumped by
// the last block of each call, so CUDA-graph replays count too.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "../backend/args.hpp"
#include "../backend/check_cuda.hpp"
#include "backend.hpp"
#include "elements.cuh"
#include "launch.cuh"

namespace cpattn::cuda {
namespace {

using detail::DirectArgs;
constexpr int kThreads = 256;
constexpr int kMaxRanks = SymmetricBuffers::kMaxRanks;
// Blocks per SM the grid may use, all resident at once (__launch_bounds__ holds the
// registers to it; each block waits only on the same block index of its peers, resident
// too), with enough stores in flight for NVLink bandwidth at large sizes.
constexpr int kBlocksPerSm = 4;

__device__ __forceinline__ unsigned load_acquire_system(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void store_release_system(unsigned* p, unsigned v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned long long global_time_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Flag that source rank `source` sets in a buffer when its block `block` has stored there.
__device__ __forceinline__ unsigned* flag_at(char* buffer, int source, int block) {
  return reinterpret_cast<unsigned*>(buffer) + source * DirectArgs::kMaxBlocks + block;
}

__device__ __forceinline__ size_t lse_offset_in_slot(const DirectArgs& a, size_t element_bytes) {
  return (static_cast<size_t>(a.B * a.kept) * static_cast<size_t>(a.D) * element_bytes + 255) / 256 * 256;
}

// Copies row [D] of this rank's out to a contiguous row of a slot: VEC elements per lane
// and step, LANES lanes per row (VEC > 1: 16-byte vectors; the launcher checked alignment
// and unit stride).
template <class T, int VEC, int LANES>
__device__ __forceinline__ void copy_row(const T* source, int64_t source_stride, T* target, int64_t D, int lane) {
  for (int64_t d = static_cast<int64_t>(lane) * VEC; d < D; d += LANES * VEC) {
    if constexpr (VEC == 1) {
      target[d] = source[d * source_stride];
    } else {
      *reinterpret_cast<uint4*>(target + d) = *reinterpret_cast<const uint4*>(source + d);
    }
  }
}

// cp_direct_kernel: one call of cp_lse_ag_out_rs / _ar / cp_lse_a2a_merge.
//   out [B, H, D] (any strides), lse [B, H], kv_lens [B] (optional) on this rank;
//   result [B, kept, D] contiguous, out_lse [B, kept] (optional);
//   rows of a slice: B * kept, row r = (b, j) with b = r / kept, j = r % kept. DEPENDENT:
//   launched as a programmatic dependent (launch.cuh).
// Grid: min(ceil(rows / rows per block), 4 per SM, 1024) blocks of 256 threads; a row is
// handled by a group of LANES lanes (32, or 16 / 8 for short rows, never fewer than N), so
// a warp holds 32 / LANES rows at a time; group g of the grid takes rows g, then every
// (number of groups)th.
// Each group: (1) for every owner o, copies its rows (owner's heads: o * kept + j for
// rs/a2a, j for ar) and the lse (-inf where kv_lens is 0) into slot `rank` of o's buffer;
// (2) after the block's stores, threads 0..N-1 each flag one peer and wait (bounded by
// timeout_ns on the global timer) for that peer's flag for this block; (3) merges the
// N slots of its rows: lanes 0..N-1 of the group hold the N lses, the group reduces max
// and sum with shuffles, every lane weights and sums VEC-element vectors of the N rows in
// f32.
template <class T, int VEC, int LANES, bool DEPENDENT>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm) cp_direct_kernel(const DirectArgs a) {
  if constexpr (DEPENDENT) wait_for_previous_kernel();
  __shared__ unsigned call_shared;
  __shared__ int failed;
  if (threadIdx.x == 0) {
    call_shared = a.buffers.state[0] + 1;
    failed = 0;
  }
  __syncthreads();
  const unsigned call = call_shared;
  constexpr int kGroups = kThreads / LANES;  // rows a block holds at a time
  const int lane = threadIdx.x % LANES;
  const int64_t rows = a.B * a.kept;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kGroups + threadIdx.x / LANES;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kGroups;
  // every lane of a warp runs the same number of merge iterations (the shuffles need the
  // whole warp): the loop bound is that of the warp's first group
  const int64_t warp_first = first - (threadIdx.x % 32) / LANES;
  const size_t half = DirectArgs::kFlagsBytes + (call & 1u) * static_cast<size_t>(a.N) * a.slot_bytes;
  const size_t lse_offset = lse_offset_in_slot(a, sizeof(T));

  // (1) send
  for (int owner = 0; owner < a.N; ++owner) {
    char* slot = a.buffers.peers[owner] + half + static_cast<size_t>(a.rank) * a.slot_bytes;
    for (int64_t row = first; row < rows; row += step) {
      const int64_t b = row / a.kept, j = row % a.kept;
      const int64_t h = a.op == CpOp::ar ? j : owner * a.kept + j;
      copy_row<T, VEC, LANES>(static_cast<const T*>(a.out) + b * a.out_sb + h * a.out_sh, a.out_sd,
                       reinterpret_cast<T*>(slot) + row * a.D, a.D, lane);
      if (lane == 0) {
        float l = load_float(a.lse, a.lse_dtype, b * a.lse_sb + h * a.lse_sh);
        if (a.kv_lens && load_index(a.kv_lens, a.kv_dtype, b * a.kv_sb) == 0) l = -INFINITY;
        reinterpret_cast<float*>(slot + lse_offset)[row] = l;
      }
    }
  }

  // (2) barrier: this block's rows have landed in every owner's buffer, and theirs in ours
  __syncthreads();
  const int peer = threadIdx.x;
  if (peer < a.N && peer != a.rank) {
    // the release store orders the block's stores before the flag (they happen-before it
    // through the barrier above), as NCCL's own LSA barrier does
    store_release_system(flag_at(a.buffers.peers[peer], a.rank, blockIdx.x), call);
    const unsigned* flag = flag_at(a.buffers.peers[a.rank], peer, blockIdx.x);
    const unsigned long long start = global_time_ns();
    while (static_cast<int>(load_acquire_system(flag) - call) < 0) {
      if (global_time_ns() - start > a.buffers.timeout_ns) {
        *reinterpret_cast<volatile int*>(a.buffers.error) = peer + 1;
        failed = 1;
        break;
      }
    }
  }
  __syncthreads();

  // (3) merge this rank's rows
  if (!failed) {
    const char* mine = a.buffers.peers[a.rank] + half;
    for (int64_t base = warp_first; base < rows; base += step) {
      const int64_t row = base + (first - warp_first);
      const bool active = row < rows;
      float l = -INFINITY;
      if (active && lane < a.N) {
        l = reinterpret_cast<const float*>(mine + static_cast<size_t>(lane) * a.slot_bytes + lse_offset)[row];
        l = sanitized_lse(l);
      }
      float top = l;
#pragma unroll
      for (int offset = LANES / 2; offset > 0; offset /= 2)
        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, offset, LANES));
      float share = top == -INFINITY || l == -INFINITY ? 0.0f : lse_exp(l - top, a.lse_base);
      float sum = share;
#pragma unroll
      for (int offset = LANES / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset, LANES);
      const float merged = top == -INFINITY ? -INFINITY : top + lse_log(sum, a.lse_base);
      const float own_weight = share == 0.0f ? 0.0f : lse_exp(l - merged, a.lse_base);
      float weight[kMaxRanks];
#pragma unroll
      for (int r = 0; r < kMaxRanks; ++r) weight[r] = __shfl_sync(0xffffffffu, own_weight, r % LANES, LANES);
      if (!active) continue;
      T* target = static_cast<T*>(a.result) + row * a.D;
      for (int64_t d = static_cast<int64_t>(lane) * VEC; d < a.D; d += LANES * VEC) {
        float acc[VEC] = {};
#pragma unroll
        for (int r = 0; r < kMaxRanks; ++r) {
          if (r >= a.N) break;
          if (weight[r] == 0.0f) continue;  // an empty partial adds exact zeros, NaN data or not
          float x[VEC];
          load_f32<T, VEC>(reinterpret_cast<const T*>(mine + static_cast<size_t>(r) * a.slot_bytes) + row * a.D + d, x);
#pragma unroll
          for (int i = 0; i < VEC; ++i) acc[i] += weight[r] * x[i];
        }
        store_f32<T, VEC>(target + d, acc);
      }
      if (lane == 0 && a.out_lse) {
        const int64_t b = row / a.kept, j = row % a.kept;
        store_float(a.out_lse, a.out_lse_dtype, b * a.out_lse_sb + j * a.out_lse_sh, merged);
      }
    }
  }

  // the last block to finish counts the call
  __syncthreads();
  if (threadIdx.x == 0) {
    if constexpr (DEPENDENT) allow_next_kernel_launch();
    if (atomicAdd(&a.buffers.state[1], 1u) == gridDim.x - 1) {
      a.buffers.state[1] = 0;
      a.buffers.state[0] = call;
    }
  }
}

template <class T, int VEC, int LANES>
void launch_with(const DirectArgs& a, Stream stream, bool pdl) {
  constexpr int kGroups = kThreads / LANES;
  const int64_t rows = a.B * a.kept;
  const int blocks = static_cast<int>(std::clamp<int64_t>((rows + kGroups - 1) / kGroups, 1,
                                                          std::min(kBlocksPerSm * sm_count(), DirectArgs::kMaxBlocks)));
  launch(cp_direct_kernel<T, VEC, LANES, false>, cp_direct_kernel<T, VEC, LANES, true>, dim3(blocks), dim3(kThreads), 0, stream,
         pdl, a);
}

// Lanes per row: as many as the row has vectors, between 8 and 32, and at least N (the
// lanes of a group hold the N lses).
template <class T, int VEC>
void launch_for_lanes(const DirectArgs& a, Stream stream, bool pdl) {
  const int64_t vectors = (a.D + VEC - 1) / VEC;
  if (vectors <= 8 && a.N <= 8) return launch_with<T, VEC, 8>(a, stream, pdl);
  if (vectors <= 16) return launch_with<T, VEC, 16>(a, stream, pdl);
  return launch_with<T, VEC, 32>(a, stream, pdl);
}

template <class T>
void launch_for(const DirectArgs& a, Stream stream, bool pdl) {
  constexpr int kVec = 16 / sizeof(T);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vector = a.out_sd == 1 && a.D % kVec == 0 && a.out_sb % kVec == 0 && a.out_sh % kVec == 0 &&
                      aligned(a.out) && aligned(a.result);
  if (vector) return launch_for_lanes<T, kVec>(a, stream, pdl);
  launch_with<T, 1, 32>(a, stream, pdl);
}

}  // namespace

void cp_direct(const DirectArgs& a, Stream stream, bool pdl) {
  detail::check_element_dtypes(a);
  CPATTN_DISPATCH_CUDA_FLOAT(a.dtype, "dtype", T, [&] { launch_for<T>(a, stream, pdl); });
}

}  // namespace cpattn::cuda
