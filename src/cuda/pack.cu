// pack_seq / unpack_seq on CUDA: one O(B) prefix scan of the lengths (skipped for
// cu_seqlens), then a copy kernel over the padded rows (b, t) whose index work is O(1):
// sequence b's length is lengths[b] and its start one load from the scanned offsets. Rows move
// in the widest chunk (16, 8, 4, 2 or 1 bytes) that every pointer, stride and row size allows,
// kChunksPerThread chunks in flight per thread. The copy kernel is a programmatic dependent
// launch of the scan (sm_90+): its launch, block scheduling, pad rows and unpack's first loads
// overlap the scan; only the reads of the offsets wait for it, on the GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../backend/args.hpp"
#include "../backend/check_cuda.hpp"
#include "../backend/fast_div.hpp"
#include "backend.hpp"
#include "elements.cuh"
#include "launch.cuh"

namespace cpattn::cuda {
namespace {

using detail::FastDiv;
using detail::PackArgs;
constexpr int kScanThreads = 1024;
constexpr int kScanLengths = 4;  // lengths per thread and tile: B <= 4096 in one tile
constexpr int kCopyThreads = 256;
constexpr int kChunksPerThread = 4;  // loads in flight per thread: one per chunk leaves copies at half of bandwidth

// lengths_to_offsets_kernel: offsets[0] = 0, offsets[b + 1] = offsets[b] + max(lengths[b], 0).
//   lengths [B] int32/int64 (element stride `stride`), offsets [B + 1] int64 (workspace).
// Grid: one block of a multiple of 32 threads up to kScanThreads (fewer for small B: its
// barriers and shared memory passes are the latency of a small pack); it walks B in tiles of
// blockDim.x * kScanLengths lengths, every thread carrying the running total.
// Each tile: the block loads it into shared memory in coalesced passes (thread i takes
// lengths i, i + blockDim.x, ...); each thread then scans kScanLengths consecutive ones,
// its sum's prefix within the warp by shuffles, the warps' prefixes by warp 0; the offsets go
// back through shared memory and out in coalesced passes. With each thread loading and
// storing its own kScanLengths consecutive entries instead, a warp's accesses touched 16-32
// sectors each, and B = 4096 took 5.5 us (H200) of a 20 us pack.
__device__ __forceinline__ int tile_slot(int i) { return i + (i >> 2); }  // one pad per kScanLengths: no bank conflicts when thread t reads 4t..4t+3
__global__ void __launch_bounds__(kScanThreads)
    lengths_to_offsets_kernel(const void* lengths, DType dtype, int64_t stride, int64_t B, int64_t* offsets) {
  constexpr int kMaxTile = kScanThreads * kScanLengths;
  static_assert(kScanLengths == 4, "tile_slot pads every 4 entries");
  __shared__ int64_t tile[kMaxTile + kMaxTile / kScanLengths];
  __shared__ int64_t warp_totals[kScanThreads / 32];
  allow_next_kernel_launch();  // the copy kernel's blocks may be scheduled now: only their reads of `offsets` wait for this one
  const int threads = static_cast<int>(blockDim.x), warps = threads / 32, tile_size = threads * kScanLengths;
  const int thread = static_cast<int>(threadIdx.x), lane = thread & 31, warp = thread >> 5;
  if (thread == 0) offsets[0] = 0;
  int64_t carry = 0;  // the lengths of the tiles before
  for (int64_t base = 0; base < B; base += tile_size) {
#pragma unroll
    for (int k = 0; k < kScanLengths; ++k) {
      const int i = thread + k * threads;
      tile[tile_slot(i)] = base + i < B ? max(load_index(lengths, dtype, (base + i) * stride), int64_t{0}) : 0;
    }
    __syncthreads();
    int64_t run[kScanLengths];  // running sums of this thread's lengths
    int64_t sum = 0;
#pragma unroll
    for (int k = 0; k < kScanLengths; ++k) run[k] = sum += tile[tile_slot(thread * kScanLengths + k)];
    int64_t inclusive = sum;  // the sums of this warp's threads up to this one
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int64_t v = __shfl_up_sync(0xffffffffu, inclusive, o);
      if (lane >= o) inclusive += v;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
      int64_t w = lane < warps ? warp_totals[lane] : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int64_t v = __shfl_up_sync(0xffffffffu, w, o);
        if (lane >= o) w += v;
      }
      warp_totals[lane] = w;  // now inclusive over warps
    }
    __syncthreads();
    const int64_t before = carry + (warp > 0 ? warp_totals[warp - 1] : 0) + inclusive - sum;
#pragma unroll
    for (int k = 0; k < kScanLengths; ++k) tile[tile_slot(thread * kScanLengths + k)] = before + run[k];
    carry += warp_totals[warps - 1];
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kScanLengths; ++k) {
      const int i = thread + k * threads;
      if (base + i < B) offsets[base + i + 1] = tile[tile_slot(i)];
    }
    __syncthreads();  // every thread has read tile and warp_totals before the next tile writes them
  }
}

// Length of sequence b, made non-negative: from cu_seqlens, or straight from `lengths` (the
// scan's input, so a dependent copy kernel knows it without waiting for the offsets).
__device__ __forceinline__ int64_t sequence_length(const PackArgs& a, int64_t b) {
  if (a.cu_seqlens) {
    const int64_t s = load_index(a.lengths, a.lengths_dtype, b * a.lengths_stride);
    const int64_t e = load_index(a.lengths, a.lengths_dtype, (b + 1) * a.lengths_stride);
    return max(e - s, int64_t{0});
  }
  return max(load_index(a.lengths, a.lengths_dtype, b * a.lengths_stride), int64_t{0});
}

// First token of sequence b: cu_seqlens[b], or the scanned offsets[b] (a dependent copy kernel
// reads it after wait_for_previous_kernel()).
__device__ __forceinline__ int64_t sequence_start(const PackArgs& a, const int64_t* offsets, int64_t b) {
  return a.cu_seqlens ? load_index(a.lengths, a.lengths_dtype, b * a.lengths_stride) : offsets[b];
}

// Chunks c, c + step, ..., c + (kChunksPerThread - 1) * step of a row (those below `chunks`),
// loaded into registers together, then stored: kChunksPerThread loads in flight.
template <class Chunk>
struct ChunkBatch {
  Chunk v[kChunksPerThread];
  __device__ __forceinline__ void load(const Chunk* src, int64_t c, int64_t step, int64_t chunks) {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i)
      if (c + i * step < chunks) v[i] = src[c + i * step];
  }
  __device__ __forceinline__ void store(Chunk* dst, int64_t c, int64_t step, int64_t chunks) const {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i)
      if (c + i * step < chunks) dst[c + i * step] = v[i];
  }
};

// Moves chunks first, first + step, ... of a row from src to dst, a batch at a time.
template <class Chunk>
__device__ __forceinline__ void copy_row(const Chunk* src, Chunk* dst, int64_t first, int64_t step, int64_t chunks) {
  for (int64_t c = first; c < chunks; c += kChunksPerThread * step) {
    ChunkBatch<Chunk> batch;
    batch.load(src, c, step, chunks);
    batch.store(dst, c, step, chunks);
  }
}

// Writes the pad pattern over chunks lane, lane + step, ... of a padded row.
template <class Chunk>
__device__ __forceinline__ void pad_row(Chunk* dst, uint4 pad16, int64_t lane, int64_t step, int64_t chunks) {
  for (int64_t c = lane; c < chunks; c += step) {
    // the pad pattern repeats every element, and elements divide 16 bytes
    Chunk v;
    memcpy(&v, reinterpret_cast<const char*>(&pad16) + (c * sizeof(Chunk)) % 16, sizeof(Chunk));
    dst[c] = v;
  }
}

// copy_rows_kernel: pack_seq (a.to_padded) or unpack_seq, rows moved in Chunk-sized pieces.
//   tokens [T, row_bytes] (row stride a.token_stride), padded [B, L, row_bytes] (strides
//   a.padded_sb, a.padded_sl); sequence b's length from lengths[b] (or cu_seqlens), its start
//   from offsets [B + 1] (or cu_seqlens); pad16: the pad value repeated over 16 bytes.
//   DEPENDENT: launched as a programmatic dependent of lengths_to_offsets_kernel (launch.cuh);
//   only the start waits for it.
// Grid: ceil(B * L / rows_per_block) blocks of rows_per_block * threads_per_row threads
// (<= kCopyThreads); threads_per_row = ceil(chunks / kChunksPerThread), any count up to
// kCopyThreads (longer rows loop), so a block's threads are nearly all busy. A group of
// threads_per_row threads owns padded row (b, t).
// Each group: pack writes the pad pattern when t >= len_b (without waiting for the scan),
// else copies token start_b + t into the row (the pad when that token is outside [0, T));
// unpack, when t < len_b, loads its first batch of the row before waiting for the scan, then
// stores the row to token start_b + t when that token is in [0, T). Each thread moves pieces
// lane, lane + threads_per_row, ... (kChunksPerThread loads in flight). While the one-block
// scan runs, the resident blocks thus already write pads and hold unpack's loads in flight.
// Under DEPENDENT every thread waits for the scan before it ends, pads written or not: were a
// grid of pad rows alone to finish first, the next work on the stream could start while the
// scan still reads `lengths` and writes the workspace.
template <class Chunk, bool DEPENDENT>
__global__ void __launch_bounds__(kCopyThreads)
    copy_rows_kernel(const PackArgs a, const int64_t* offsets, FastDiv threads_per_row, int rows_per_block, uint4 pad16) {
  const int group = static_cast<int>(threads_per_row.div(threadIdx.x));
  const int lane = threadIdx.x - group * static_cast<int>(threads_per_row.divisor);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + group;
  if (group >= rows_per_block || row >= a.B * a.L) return;
  const int64_t b = static_cast<uint32_t>(row) / static_cast<uint32_t>(a.L), t = row - b * a.L;  // B * L < 2^32
  const bool in_sequence = t < sequence_length(a, b);
  Chunk* padded = reinterpret_cast<Chunk*>(a.padded + b * a.padded_sb + t * a.padded_sl);
  const int64_t chunks = a.row_bytes / static_cast<int64_t>(sizeof(Chunk));
  const int64_t step = threads_per_row.divisor;
  if (a.to_padded) {
    if (in_sequence) {
      if constexpr (DEPENDENT) wait_for_previous_kernel();  // the offsets come from lengths_to_offsets_kernel
      const int64_t token = sequence_start(a, offsets, b) + t;
      if (token >= 0 && token < a.T) {  // never out of bounds
        copy_row(reinterpret_cast<const Chunk*>(a.tokens + token * a.token_stride), padded, lane, step, chunks);
        return;
      }
    }
    pad_row(padded, pad16, lane, step, chunks);
    if constexpr (DEPENDENT) wait_for_previous_kernel();  // no block ends before the scan: see the grid note
  } else if (in_sequence) {
    ChunkBatch<Chunk> first;
    first.load(padded, lane, step, chunks);  // the source row does not depend on the offsets
    if constexpr (DEPENDENT) wait_for_previous_kernel();
    const int64_t token = sequence_start(a, offsets, b) + t;
    if (token < 0 || token >= a.T) return;  // never out of bounds
    Chunk* tokens = reinterpret_cast<Chunk*>(a.tokens + token * a.token_stride);
    first.store(tokens, lane, step, chunks);
    copy_row(padded, tokens, lane + kChunksPerThread * step, step, chunks);
  } else {
    if constexpr (DEPENDENT) wait_for_previous_kernel();  // no block ends before the scan: see the grid note
  }
}

// Largest power of two <= 16 dividing every address, stride and the row size.
int chunk_bytes(const PackArgs& a) {
  uint64_t bits = static_cast<uint64_t>(a.row_bytes) | reinterpret_cast<uintptr_t>(a.tokens) |
                  reinterpret_cast<uintptr_t>(a.padded) | static_cast<uint64_t>(a.token_stride) |
                  static_cast<uint64_t>(a.padded_sb) | static_cast<uint64_t>(a.padded_sl) | 16u;
  return static_cast<int>(bits & (~bits + 1));  // lowest set bit
}

template <class Chunk>
void launch_copy_rows(const PackArgs& a, const int64_t* offsets, uint4 pad, cudaStream_t stream, bool after_scan) {
  const int64_t chunks = a.row_bytes / static_cast<int64_t>(sizeof(Chunk));
  const int threads_per_row = static_cast<int>(std::min<int64_t>((chunks + kChunksPerThread - 1) / kChunksPerThread, kCopyThreads));
  const int rows_per_block = kCopyThreads / threads_per_row;
  const int64_t block_count = (a.B * a.L + rows_per_block - 1) / rows_per_block;
  if (block_count > INT32_MAX)
    throw Error("B * L", "at most " + std::to_string(int64_t{INT32_MAX} * rows_per_block) + " padded rows",
                std::to_string(a.B * a.L));
  launch(copy_rows_kernel<Chunk, false>, copy_rows_kernel<Chunk, true>, static_cast<unsigned>(block_count), rows_per_block * threads_per_row, 0, stream, after_scan, a,
         offsets, FastDiv(static_cast<uint32_t>(threads_per_row)), rows_per_block, pad);
}

}  // namespace

size_t pack_workspace_bytes(const PackArgs& a) {
  return a.cu_seqlens ? 0 : static_cast<size_t>(a.B + 1) * sizeof(int64_t);
}

void pack(const PackArgs& a, void* workspace, Stream stream) {
  if (a.B == 0 || a.L == 0 || a.row_bytes == 0) return;
  if (a.B * a.L > static_cast<int64_t>(UINT32_MAX))
    throw Error("B * L", "at most 2^32 - 1 padded rows per call on CUDA", std::to_string(a.B * a.L));
  detail::check_index_dtype(a.lengths_dtype, a.cu_seqlens ? "cu_seqlens dtype" : "lengths dtype");
  auto* offsets = static_cast<int64_t*>(workspace);
  if (!a.cu_seqlens) {
    int threads = 32;  // enough for B in one tile, up to kScanThreads
    while (threads < kScanThreads && int64_t{threads} * kScanLengths < a.B) threads *= 2;
    lengths_to_offsets_kernel<<<1, threads, 0, stream>>>(a.lengths, a.lengths_dtype, a.lengths_stride, a.B, offsets);
    CPATTN_CHECK_LAUNCH();
  }
  uint4 pad{};
  for (int i = 0; i < 16; i += static_cast<int>(a.elem_bytes))
    std::memcpy(reinterpret_cast<char*>(&pad) + i, &a.pad_bits, static_cast<size_t>(a.elem_bytes));
  const bool after_scan = !a.cu_seqlens;  // a dependent launch of the scan
  switch (chunk_bytes(a)) {
    case 16: launch_copy_rows<uint4>(a, offsets, pad, stream, after_scan); break;
    case 8: launch_copy_rows<uint2>(a, offsets, pad, stream, after_scan); break;
    case 4: launch_copy_rows<uint32_t>(a, offsets, pad, stream, after_scan); break;
    case 2: launch_copy_rows<uint16_t>(a, offsets, pad, stream, after_scan); break;
    default: launch_copy_rows<uint8_t>(a, offsets, pad, stream, after_scan);
  }
}

}  // namespace cpattn::cuda
