// Probe: kernel variants for the single-GPU rows where cpattn still trails its target on H200,
// each next to cpattn's own kernel (linked from libcpattn.a) in the same run.
//
//   A. merge of two partials at B2048 H16 D128 (25.6 MB, L2-resident): FlashInfer's MergeStates
//      4.77 us, vLLM's CUDA merge 5.36, cpattn 5.72. Block shapes and FlashInfer's layout
//      ([B, N, H, D], partials of a token side by side).
//   B. correct_attn_out at decode size (B1 H32 D128 N2): vLLM's Triton kernel 1.30 us, cpattn
//      1.32, a minimal kernel 1.17. cpattn's features added to the minimal kernel one at a time.
//   C. correct_attn_out with 16 partials on short rows (D = 64, 96): 72% of copy. Every lane
//      of a row reads the row's N lses; here the L lanes of a row share them (N / L each,
//      reduced by shuffles).
//   D. the lengths scan in front of pack/unpack (B4096 Lmax2 F2048: 62% of copy): one tile
//      of the block per pass (cpattn) against all of B in one pass, and pack with
//      cu_seqlens (no scan) to bound what the scan costs.
//
//   cmake --build build --target cpattn
//   nvcc -O3 -std=c++20 -arch=sm_90 --expt-relaxed-constexpr -Iinclude -Ibuild/include \
//     bench/probes/merge_variants.cu build/libcpattn.a -lnccl -o merge_variants && ./merge_variants [A B C D]
#include <cub/block/block_scan.cuh>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../../src/backend/fast_div.hpp"
#include "../../src/cuda/backend.hpp"
#include "probe_support.cuh"

using bf16 = __nv_bfloat16;
using cpattn::detail::FastDiv;

namespace {

__device__ __forceinline__ float clean(float l) { return l != l || l == INFINITY ? -INFINITY : l; }
__device__ __forceinline__ float lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ uint32_t pack2(float a, float b) {
  const __nv_bfloat162 r = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&r);
}
__device__ __forceinline__ void store16(bf16* p, uint4 v) { __stwb(reinterpret_cast<uint4*>(p), v); }

// ---------------------------------------------------------------- A. merge of two partials

struct Merge2 {
  const bf16* src;     // partial n of row (b, h) at src + n * src_sn + b * src_sb + h * D
  uint64_t src_sn, src_sb;
  const float* lses;   // partial n of row (b, h) at lses + n * lse_sn + b * lse_sb + h
  uint32_t lse_sn, lse_sb;
  bf16* dst;           // [B, H, D]
  float* dst_lse;      // [B, H]
  uint32_t B, H;
};

// Thread (b, h, vector lane) of rows of VPR 16-byte vectors: the weights, one vector out.
template <int VPR>
__device__ __forceinline__ void merge2_vector(const Merge2& m, uint32_t b, uint32_t h, uint32_t lane) {
  const bf16* a = m.src + b * m.src_sb + h * VPR * 8 + lane * 8;
  const uint4 x = *reinterpret_cast<const uint4*>(a), y = *reinterpret_cast<const uint4*>(a + m.src_sn);
  const float* lp = m.lses + b * m.lse_sb + h;
  const float l0 = clean(lp[0]), l1 = clean(lp[m.lse_sn]);
  const float mx = fmaxf(l0, l1);
  const bool empty = mx == -INFINITY;
  const float e0 = empty ? 0.f : __expf(l0 - mx), e1 = empty ? 0.f : __expf(l1 - mx), s = e0 + e1;
  const float inv = empty ? 0.f : 1.f / s, w0 = e0 * inv, w1 = e1 * inv;
  const uint4 xs = w0 == 0.f ? make_uint4(0, 0, 0, 0) : x, ys = w1 == 0.f ? make_uint4(0, 0, 0, 0) : y;
  const auto mix = [&](uint32_t p, uint32_t q) { return pack2(w0 * lo(p) + w1 * lo(q), w0 * hi(p) + w1 * hi(q)); };
  const uint64_t row = static_cast<uint64_t>(b) * m.H + h;
  store16(m.dst + row * VPR * 8 + lane * 8, make_uint4(mix(xs.x, ys.x), mix(xs.y, ys.y), mix(xs.z, ys.z), mix(xs.w, ys.w)));
  if (lane == 0) m.dst_lse[row] = empty ? -INFINITY : mx + __logf(s);
}

// Flat grid, one thread per 16 bytes of output: thread t serves row t / VPR (rows b * H + h
// with H = 1 here: the cpattn layout seen as [B * H] rows).
template <int VPR>
__global__ void merge2_flat(const Merge2 m) {
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x, row = t / VPR;
  if (row < m.B * m.H) merge2_vector<VPR>(m, row, 0, t % VPR);
}
// A block per token b (FlashInfer's shape): threadIdx.y = head, threadIdx.x = vector.
template <int VPR>
__global__ void merge2_token(const Merge2 m) {
  merge2_vector<VPR>(m, blockIdx.x, threadIdx.y, threadIdx.x);
}
// Persistent flat grid: each thread loops over t, t + grid size, ...
template <int VPR>
__global__ void merge2_loop(const Merge2 m) {
  const uint32_t total = m.B * m.H * VPR;
  for (uint32_t t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x) merge2_vector<VPR>(m, t / VPR, 0, t % VPR);
}

// ------------------------------------------------- B. correct at decode size, feature ablation

struct RowsLike {  // the fields of cpattn's RowsArgs (120 bytes)
  const void* src;
  void* dst;
  const float* lses;
  float* dst_lse;
  const void* kv_lens;
  bool kv_lens_i64, lse_base_two, early_trigger;
  int32_t N, rank;
  uint32_t rows, vectors_per_row;
  uint32_t src_sr, src_sn, dst_sr, lse_sr, lse_sn, dst_lse_sr, kv_sn, kv_sb;
  FastDiv lanes, heads;
};

// F bit 0: thread -> (row, lane) by FastDiv (else t / 16); bit 1: run-time N, kv_lens and lse
// base (else N = 2, base e); bit 2: lse stored after the data (else before); bit 3: run-time
// row strides (else contiguous constants); bit 4: the rank's weight picked by a loop over N.
template <int F>
__global__ void __launch_bounds__(128) correct_ablate(const RowsLike a) {
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  uint32_t row, lane;
  if constexpr (F & 1) {
    row = a.lanes.div(t);
    lane = t - row * a.lanes.divisor;
  } else {
    row = t / 16;
    lane = t % 16;
  }
  if (row >= a.rows) return;
  const uint32_t sr = F & 8 ? a.src_sr : 128, dr = F & 8 ? a.dst_sr : 128, lsr = F & 8 ? a.lse_sr : 1;
  const uint32_t lsn = F & 8 ? a.lse_sn : 32, olsr = F & 8 ? a.dst_lse_sr : 1;
  const bf16* src = static_cast<const bf16*>(a.src) + static_cast<uint64_t>(row) * sr;
  bf16* dst = static_cast<bf16*>(a.dst) + static_cast<uint64_t>(row) * dr;
  const uint4 x = *reinterpret_cast<const uint4*>(src + lane * 8);
  const float* lp = a.lses + static_cast<uint64_t>(row) * lsr;
  float l0, l1;
  if constexpr (F & 2) {
    l0 = 0 < a.N ? lp[0] : -INFINITY;
    l1 = 1 < a.N ? lp[lsn] : -INFINITY;
    if (a.kv_lens) {
      const uint32_t k = a.heads.div(row) * a.kv_sb;
      const int64_t n0 = a.kv_lens_i64 ? static_cast<const int64_t*>(a.kv_lens)[k] : static_cast<const int32_t*>(a.kv_lens)[k];
      const int64_t n1 = a.kv_lens_i64 ? static_cast<const int64_t*>(a.kv_lens)[k + a.kv_sn]
                                       : static_cast<const int32_t*>(a.kv_lens)[k + a.kv_sn];
      if (n0 == 0) l0 = -INFINITY;
      if (n1 == 0) l1 = -INFINITY;
    }
  } else {
    l0 = lp[0];
    l1 = lp[lsn];
  }
  l0 = clean(l0);
  l1 = clean(l1);
  const float m = fmaxf(l0, l1);
  const bool empty = m == -INFINITY;
  const auto ex = [&](float v) { return F & 2 ? (a.lse_base_two ? exp2f(v) : __expf(v)) : __expf(v); };
  const float e0 = empty ? 0.f : ex(l0 - m), e1 = empty ? 0.f : ex(l1 - m), s = e0 + e1;
  const float lse = empty ? -INFINITY : m + (F & 2 ? (a.lse_base_two ? log2f(s) : logf(s)) : logf(s));
  if (!(F & 4) && lane == 0) a.dst_lse[static_cast<uint64_t>(row) * olsr] = lse;
  float er;
  if constexpr (F & 16) {
    const float e[2] = {e0, e1};
    er = 0.f;
#pragma unroll
    for (int i = 0; i < 2; ++i) er = i == a.rank ? e[i] : er;
  } else {
    er = a.rank == 0 ? e0 : e1;
  }
  const float w = empty ? 0.f : er / s;
  const uint4 xs = w == 0.f ? make_uint4(0, 0, 0, 0) : x;
  const auto sc = [&](uint32_t p) { return pack2(w * lo(p), w * hi(p)); };
  store16(dst + lane * 8, make_uint4(sc(xs.x), sc(xs.y), sc(xs.z), sc(xs.w)));
  if ((F & 4) && lane == 0) a.dst_lse[static_cast<uint64_t>(row) * olsr] = lse;
}

// ------------------------------------------ C. correct with many partials: lses shared by lanes

// Rows of `vpr` 16-byte vectors in place, lses [N, rows]. L lanes per row (a power of two
// <= 32, so a row's lanes sit in one warp), lane i takes vectors i, i + L, ... (VPL of them).
// SHARE: lane i reads lses i, i + L, ... and max and sum are reduced over the row's lanes by
// shuffles; else every lane reads all N. LSE: 0 reads no lses at all (weight 1: the floor).
template <int L, int VPL, int N, bool SHARE, bool LSE = true>
__global__ void __launch_bounds__(256) correct_many(bf16* out, const float* lses, float* out_lse, uint32_t rows, uint32_t vpr, int rank) {
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  const uint32_t row = t / L, lane = t % L;
  const bool active = row < rows;
  const uint32_t r = active ? row : rows - 1;  // inactive lanes still shuffle
  bf16* p = out + static_cast<uint64_t>(r) * vpr * 8;
  uint4 x[VPL];
#pragma unroll
  for (int i = 0; i < VPL; ++i) {
    const uint32_t v = lane + i * L;
    x[i] = active && v < vpr ? *reinterpret_cast<const uint4*>(p + v * 8) : make_uint4(0, 0, 0, 0);
  }
  float w = 1.f, lse = 0.f;
  if constexpr (LSE) {
    constexpr int K = SHARE ? (N + L - 1) / L : N;
    float l[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = SHARE ? static_cast<int>(lane) + k * L : k;
      l[k] = i < N ? clean(lses[static_cast<uint64_t>(i) * rows + r]) : -INFINITY;
    }
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < K; ++k) m = fmaxf(m, l[k]);
    if constexpr (SHARE)
#pragma unroll
      for (int o = L / 2; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    const bool empty = m == -INFINITY;
    float s = 0.f, er = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const float e = empty ? 0.f : __expf(l[k] - m);
      s += e;
      if (SHARE ? k == rank / L : k == rank) er = e;
    }
    if constexpr (SHARE) {
#pragma unroll
      for (int o = L / 2; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
      er = __shfl_sync(0xffffffffu, er, rank % L, L);
    }
    w = empty ? 0.f : er / s;
    lse = empty ? -INFINITY : m + __logf(s);
  }
  if (!active) return;
  const auto sc = [&](uint32_t q) { return pack2(w * lo(q), w * hi(q)); };
#pragma unroll
  for (int i = 0; i < VPL; ++i) {
    const uint32_t v = lane + i * L;
    const uint4 xs = w == 0.f ? make_uint4(0, 0, 0, 0) : x[i];
    if (v < vpr) store16(p + v * 8, make_uint4(sc(xs.x), sc(xs.y), sc(xs.z), sc(xs.w)));
  }
  if (LSE && lane == 0) out_lse[r] = lse;
}

// ------------------------------------------------------------------ D. the lengths scan

constexpr int kScanThreads = 1024;
// cpattn's scan: tiles of 1024 lengths, one after another (a load, a block scan, a barrier).
__global__ void __launch_bounds__(kScanThreads) scan_tiles(const int32_t* lengths, int64_t B, int64_t* offsets) {
  using Scan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  __shared__ int64_t carry;
  if (threadIdx.x == 0) {
    carry = 0;
    offsets[0] = 0;
  }
  __syncthreads();
  for (int64_t base = 0; base < B; base += kScanThreads) {
    const int64_t i = base + threadIdx.x;
    const int64_t len = i < B ? max(static_cast<int64_t>(lengths[i]), int64_t{0}) : 0;
    int64_t inclusive, total;
    Scan(temp).InclusiveSum(len, inclusive, total);
    const int64_t c = carry;
    if (i < B) offsets[i + 1] = c + inclusive;
    __syncthreads();
    if (threadIdx.x == 0) carry = c + total;
    __syncthreads();
  }
}
// All of B (<= ITEMS * 1024) in one pass: every load goes out at once, one block scan.
template <int ITEMS>
__global__ void __launch_bounds__(kScanThreads) scan_once(const int32_t* lengths, int64_t B, int64_t* offsets) {
  using Scan = cub::BlockScan<int64_t, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  int64_t len[ITEMS];
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t i = threadIdx.x * ITEMS + k;  // blocked: thread j holds j * ITEMS ...
    len[k] = i < B ? max(static_cast<int64_t>(lengths[i]), int64_t{0}) : 0;
  }
  Scan(temp).InclusiveSum(len, len);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int64_t i = threadIdx.x * ITEMS + k;
    if (i < B) offsets[i + 1] = len[k];
  }
  if (threadIdx.x == 0) offsets[0] = 0;
}

template <class T>
T* device_copy(const std::vector<T>& h) {
  T* d;
  CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
  CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
std::vector<float> random_lses(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-3.f, 3.f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}
bf16* random_bf16(size_t elems) {
  bf16* d;
  CHECK(cudaMalloc(&d, elems * 2));
  fill_random<<<1024, 256>>>(d, elems, 7);
  CHECK(cudaDeviceSynchronize());
  return d;
}

// cpattn's merge/correct through the CUDA backend (what cpattn bench times), contiguous
// tensors: outs [N, R, D] (or the rank's out [R, D]), lses [N, R], dst [R, D], dst_lse [R].
cpattn::detail::MergeArgs cpattn_args(int64_t N, int64_t B, int64_t H, int64_t D, int64_t rank, const void* src, const float* lses,
                                      void* dst, float* dst_lse) {
  cpattn::detail::MergeArgs a;
  a.N = N, a.B = B, a.H = H, a.D = D, a.rank = rank;
  a.dtype = cpattn::DType::bf16;
  a.device = cpattn::Device::cuda(0);
  a.src = src;
  a.src_sn = B * H * D;
  a.src_rows = {H * D, D, 0, H};
  a.lses = lses;
  a.lse_sn = B * H, a.lse_sb = H, a.lse_sh = 1;
  a.dst = dst;
  a.dst_rows = {H * D, D, 0, H};
  a.dst_lse = dst_lse;
  a.dst_lse_rows = {H, 1, 0, H};
  a.lse_h_end = H;
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  // optional arguments: the parts to run (A B C D), default all
  const auto part_on = [&](char part) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i)
      if (argv[i][0] == part) return true;
    return false;
  };
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("# %s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);
  std::mt19937 rng(1);
  const auto line = [](const char* part, const char* shape, const char* name, double us, double mb) {
    std::printf("%s %-26s %-40s %8.2f us %6.0f GB/s\n", part, shape, name, us, mb * 1e3 / us);
  };

  // A. merge of two partials, D = 128
  for (int B : {1024, 2048, 4096, 32768}) {
    if (!part_on('A')) break;
    const int H = 16, D = 128;
    const uint32_t R = static_cast<uint32_t>(B) * H;
    const size_t part = static_cast<size_t>(R) * D;
    bf16* src = random_bf16(2 * part);
    bf16 *dst;
    float *dst_lse;
    CHECK(cudaMalloc(&dst, part * 2));
    CHECK(cudaMalloc(&dst_lse, R * 4));
    float* lses = device_copy(random_lses(2 * R, rng));
    const double mb = (3.0 * part * 2 + 3.0 * R * 4) / 1e6;
    char shape[64];
    std::snprintf(shape, sizeof shape, "B%d H%d D%d N2", B, H, D);
    // cpattn's layout [2, B, H, D], as rows [B * H] (flat kernels) or [B, H] (token blocks)
    const Merge2 flat{src, part, D, lses, R, 1, dst, dst_lse, R, 1};
    const Merge2 token{src, part, static_cast<uint64_t>(H) * D, lses, R, static_cast<uint32_t>(H), dst, dst_lse, static_cast<uint32_t>(B),
                       static_cast<uint32_t>(H)};
    // FlashInfer's layout [B, 2, H, D] and lses [B, 2, H]: the two partials of a token side by side
    const Merge2 fi{src, static_cast<uint64_t>(H) * D, 2ull * H * D, lses, static_cast<uint32_t>(H), 2u * H, dst, dst_lse,
                    static_cast<uint32_t>(B), static_cast<uint32_t>(H)};
    const auto cp_args = cpattn_args(2, B, H, D, -1, src, lses, dst, dst_lse);
    for (int rep = 0; rep < 2; ++rep) {
      line("A", shape, "cpattn", time_us(s, [&] { cpattn::cuda::merge(cp_args, s); }), mb);
      line("A", shape, "flat 128", time_us(s, [&] { merge2_flat<16><<<R * 16 / 128, 128, 0, s>>>(flat); }), mb);
      line("A", shape, "flat 256", time_us(s, [&] { merge2_flat<16><<<R * 16 / 256, 256, 0, s>>>(flat); }), mb);
      line("A", shape, "flat 512", time_us(s, [&] { merge2_flat<16><<<R * 16 / 512, 512, 0, s>>>(flat); }), mb);
      line("A", shape, "token block (16, H)", time_us(s, [&] { merge2_token<16><<<B, dim3(16, H), 0, s>>>(token); }), mb);
      line("A", shape, "token block, FlashInfer layout", time_us(s, [&] { merge2_token<16><<<B, dim3(16, H), 0, s>>>(fi); }), mb);
      line("A", shape, "loop 256 x 8 per SM", time_us(s, [&] { merge2_loop<16><<<8 * sms, 256, 0, s>>>(flat); }), mb);
      line("A", shape, "loop 256 x 4 per SM", time_us(s, [&] { merge2_loop<16><<<4 * sms, 256, 0, s>>>(flat); }), mb);
    }
    CHECK(cudaFree(src));
    CHECK(cudaFree(dst));
    CHECK(cudaFree(dst_lse));
    CHECK(cudaFree(lses));
  }

  // B. correct at decode size: B1 H32 D128 N2, in place
  if (part_on('B')) {
    const int R = 32, D = 128;
    bf16* out = random_bf16(R * D);
    float* lses = device_copy(random_lses(2 * R, rng));
    float* olse;
    CHECK(cudaMalloc(&olse, R * 4));
    RowsLike a{out, out, lses, olse, nullptr, false, false, false, 2, 1, R, 16, D, 0, D, 1, R, 1, 0, 0, FastDiv(16), FastDiv(32)};
    const auto cp_args = cpattn_args(2, 1, R, D, 1, out, lses, out, olse);
    const double mb = (2.0 * R * D * 2 + 3.0 * R * 4) / 1e6;
    for (int rep = 0; rep < 3; ++rep) {
      line("B", "correct B1 H32 D128 N2", "cpattn", time_us(s, [&] { cpattn::cuda::merge(cp_args, s); }), mb);
      line("B", "correct B1 H32 D128 N2", "minimal", time_us(s, [&] { correct_ablate<0><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "+fastdiv", time_us(s, [&] { correct_ablate<1><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "+runtime N/kv/base", time_us(s, [&] { correct_ablate<2><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "+lse last", time_us(s, [&] { correct_ablate<4><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "+runtime strides", time_us(s, [&] { correct_ablate<8><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "+rank loop", time_us(s, [&] { correct_ablate<16><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "all (cpattn's features)", time_us(s, [&] { correct_ablate<31><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "all but lse last", time_us(s, [&] { correct_ablate<27><<<4, 128, 0, s>>>(a); }), mb);
      line("B", "correct B1 H32 D128 N2", "all, 64-thread blocks", time_us(s, [&] { correct_ablate<31><<<8, 64, 0, s>>>(a); }), mb);
    }
    CHECK(cudaFree(out));
    CHECK(cudaFree(lses));
    CHECK(cudaFree(olse));
  }

  // C. correct with many partials on short rows, in place
  if (part_on('C')) {
    struct Shape {
      int B, H, D, N;
    };
    for (const Shape sh : {Shape{8192, 32, 64, 16}, Shape{8192, 32, 96, 16}, Shape{8192, 32, 64, 8}, Shape{8192, 32, 128, 16}}) {
      const uint32_t R = static_cast<uint32_t>(sh.B) * sh.H, vpr = sh.D / 8;
      bf16* out = random_bf16(static_cast<size_t>(R) * sh.D);
      float* lses = device_copy(random_lses(static_cast<size_t>(sh.N) * R, rng));
      float* olse;
      CHECK(cudaMalloc(&olse, R * 4));
      bf16* copy;
      CHECK(cudaMalloc(&copy, static_cast<size_t>(R) * sh.D * 2));
      char shape[64];
      std::snprintf(shape, sizeof shape, "B%d H%d D%d N%d", sh.B, sh.H, sh.D, sh.N);
      const double mb = (2.0 * R * sh.D * 2 + (sh.N + 1.0) * R * 4) / 1e6;
      const auto cp_args = cpattn_args(sh.N, sh.B, sh.H, sh.D, 1, out, lses, out, olse);
      const auto grid = [&](int L) { return (R * L + 255) / 256; };
      const int rank = 1;
      for (int rep = 0; rep < 2; ++rep) {
        line("C", shape, "cpattn", time_us(s, [&] { cpattn::cuda::merge(cp_args, s); }), mb);
        line("C", shape, "cudaMemcpyAsync of the rows", time_us(s, [&] { CHECK(cudaMemcpyAsync(copy, out, R * sh.D * 2ull, cudaMemcpyDeviceToDevice, s)); }), 2.0 * R * sh.D * 2 / 1e6);
        if (sh.N == 16) {
          line("C", shape, "L2 VPL4 all lses per lane", time_us(s, [&] { correct_many<2, 4, 16, false><<<grid(2), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L2 VPL4 shared", time_us(s, [&] { correct_many<2, 4, 16, true><<<grid(2), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L4 VPL2 shared", time_us(s, [&] { correct_many<4, 2, 16, true><<<grid(4), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L4 VPL4 shared", time_us(s, [&] { correct_many<4, 4, 16, true><<<grid(4), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          if (sh.D == 96) line("C", shape, "L4 VPL3 shared", time_us(s, [&] { correct_many<4, 3, 16, true><<<grid(4), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L8 VPL2 shared", time_us(s, [&] { correct_many<8, 2, 16, true><<<grid(8), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L16 VPL1 shared", time_us(s, [&] { correct_many<16, 1, 16, true><<<grid(16), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L4 VPL4 no lses (floor)", time_us(s, [&] { correct_many<4, 4, 16, true, false><<<grid(4), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
        } else {
          line("C", shape, "L2 VPL4 all lses per lane", time_us(s, [&] { correct_many<2, 4, 8, false><<<grid(2), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L2 VPL4 shared", time_us(s, [&] { correct_many<2, 4, 8, true><<<grid(2), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L4 VPL2 shared", time_us(s, [&] { correct_many<4, 2, 8, true><<<grid(4), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
          line("C", shape, "L8 VPL1 shared", time_us(s, [&] { correct_many<8, 1, 8, true><<<grid(8), 256, 0, s>>>(out, lses, olse, R, vpr, rank); }), mb);
        }
      }
      CHECK(cudaFree(out));
      CHECK(cudaFree(copy));
      CHECK(cudaFree(lses));
      CHECK(cudaFree(olse));
    }
  }

  // D. the lengths scan, and pack B4096 Lmax2 F2048 with and without it
  if (part_on('D')) {
    for (int B : {1024, 4096, 8192}) {
      std::vector<int32_t> len(B);
      std::uniform_int_distribution<int> u(1, 2);
      for (auto& l : len) l = u(rng);
      int32_t* d_len = device_copy(len);
      int64_t* offsets;
      CHECK(cudaMalloc(&offsets, (B + 1) * 8));
      char shape[64];
      std::snprintf(shape, sizeof shape, "scan B%d", B);
      line("D", shape, "tiles (cpattn)", time_us(s, [&] { scan_tiles<<<1, kScanThreads, 0, s>>>(d_len, B, offsets); }), 0);
      if (B <= 4096) line("D", shape, "one pass, 4 per thread", time_us(s, [&] { scan_once<4><<<1, kScanThreads, 0, s>>>(d_len, B, offsets); }), 0);
      line("D", shape, "one pass, 8 per thread", time_us(s, [&] { scan_once<8><<<1, kScanThreads, 0, s>>>(d_len, B, offsets); }), 0);
      std::vector<int64_t> got(B + 1);
      CHECK(cudaMemcpy(got.data(), offsets, got.size() * 8, cudaMemcpyDeviceToHost));
      int64_t acc = 0;
      bool ok = got[0] == 0;
      for (int i = 0; i < B; ++i) ok = ok && got[i + 1] == (acc += len[i]);
      std::printf("D %-26s one pass offsets %s\n", shape, ok ? "right" : "WRONG");
      if (B == 4096) {
        const int64_t L = 2, F = 2048, row = F * 2, T = acc;
        std::vector<int32_t> cu(B + 1, 0);
        for (int i = 0; i < B; ++i) cu[i + 1] = cu[i] + len[i];
        int32_t* d_cu = device_copy(cu);
        char *tokens, *padded;
        CHECK(cudaMalloc(&tokens, T * row));
        CHECK(cudaMalloc(&padded, B * L * row));
        CHECK(cudaMemset(tokens, 1, T * row));
        cpattn::detail::PackArgs p;
        p.B = B, p.L = L, p.T = T, p.row_bytes = row, p.elem_bytes = 2;
        p.device = cpattn::Device::cuda(0);
        p.tokens = tokens, p.token_stride = row, p.padded = padded, p.padded_sb = L * row, p.padded_sl = row;
        p.lengths = d_len;
        const double mb_pack = (2.0 * T * row + (B * L - T) * row) / 1e6, mb_unpack = 2.0 * T * row / 1e6;
        for (bool to_padded : {true, false}) {
          p.to_padded = to_padded;
          const double mb = to_padded ? mb_pack : mb_unpack;
          const char* op = to_padded ? "pack B4096 Lmax2 F2048" : "unpack B4096 Lmax2 F2048";
          p.lengths = d_len, p.cu_seqlens = false;
          line("D", op, "lengths (scan + copy)", time_us(s, [&] { cpattn::cuda::pack(p, offsets, s); }), mb);
          p.lengths = d_cu, p.cu_seqlens = true;
          line("D", op, "cu_seqlens (copy only)", time_us(s, [&] { cpattn::cuda::pack(p, offsets, s); }), mb);
        }
        line("D", "copy 59 MB", "cudaMemcpyAsync", time_us(s, [&] { CHECK(cudaMemcpyAsync(padded, tokens, T * row, cudaMemcpyDeviceToDevice, s)); }), 2.0 * T * row / 1e6);
        CHECK(cudaFree(d_cu));
        CHECK(cudaFree(tokens));
        CHECK(cudaFree(padded));
      }
      CHECK(cudaFree(d_len));
      CHECK(cudaFree(offsets));
    }
  }
  CHECK(cudaGetLastError());
  return 0;
}
