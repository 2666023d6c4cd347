// Probe: kernel shapes for the two single-GPU rows where cpattn trailed a peer on H200.
//
//   1. correct_attn_out at decode size (B1 H32 D128 N2, in place): vLLM's Triton kernel takes
//      1.30 us with ordinary launches (one program per (b, h), 32 programs).
//   2. merge of two partials at B2048 H16 D128 (25 MB, inside the 60 MB L2): FlashInfer's
//      MergeStates takes 4.77 us; cpattn's one-vector-per-lane merge ran at HBM speed.
//
// Standalone (no cpattn code): each variant is a small kernel of its own, timed as `cpattn
// bench` times (median of 9 replays of a CUDA graph of 50 back-to-back calls).
//   nvcc -O3 -std=c++20 -arch=sm_90 bench/probes/small_shapes.cu -o small_shapes && ./small_shapes
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "probe_support.cuh"

using bf16 = __nv_bfloat16;

__global__ void empty_kernel() {}

// Feature toggles, one at a time, of cpattn's merge_rows_kernel against a minimal kernel:
// GRIDDEP: griddepcontrol.wait before the loads and launch_dependents after the stores (PDL
// hooks, launched without PDL): 0 none, 1 executed, 2 present but behind a branch on a
// kernel argument that is never taken; WB: stores through __stwb (st.global.wb) instead of a
// plain store.
template <int GRIDDEP>
__device__ __forceinline__ void pdl_wait(bool flag = true) {
  if constexpr (GRIDDEP == 1) asm volatile("griddepcontrol.wait;" ::: "memory");
  if constexpr (GRIDDEP == 2)
    if (flag) asm volatile("griddepcontrol.wait;" ::: "memory");
}
template <int GRIDDEP>
__device__ __forceinline__ void pdl_signal(bool flag = true) {
  if constexpr (GRIDDEP == 1) asm volatile("griddepcontrol.launch_dependents;");
  if constexpr (GRIDDEP == 2)
    if (flag) asm volatile("griddepcontrol.launch_dependents;");
}
template <bool WB>
__device__ __forceinline__ void store16(void* p, uint4 v) {
  if constexpr (WB) __stwb(reinterpret_cast<uint4*>(p), v);
  else *reinterpret_cast<uint4*>(p) = v;
}

// ---- 1. correct at decode size: out [R, D] bf16 in place, lses [N, R] f32, rank's weight ----

// One thread per 16 bytes of a row; R * D / 8 threads in blocks of blockDim.x.
template <int GRIDDEP, bool WB>
__global__ void correct_flat(bf16* out, const float* lses, float* out_lse, int R, int D, int N, int rank) {
  const int per_row = D / 8;
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int row = t / per_row, lane = t - row * per_row;
  if (row >= R) return;
  bf16* p = out + static_cast<size_t>(row) * D + lane * 8;
  pdl_wait<GRIDDEP>();
  const uint4 v4 = *reinterpret_cast<const uint4*>(p);
  float l0 = lses[row], l1 = N > 1 ? lses[R + row] : -INFINITY;
  l0 = l0 != l0 || l0 == INFINITY ? -INFINITY : l0;
  l1 = l1 != l1 || l1 == INFINITY ? -INFINITY : l1;
  const float m = fmaxf(l0, l1);
  float w = 0.0f, lse = -INFINITY;
  if (m != -INFINITY) {
    const float s = __expf(l0 - m) + __expf(l1 - m);
    const float lr = rank == 0 ? l0 : l1;
    lse = m + logf(s);
    w = __expf(lr - m) / s;
  }
  const auto scale = [&](uint32_t word) {
    const float a = __uint_as_float(word << 16) * w, b = __uint_as_float(word & 0xffff0000u) * w;
    const __nv_bfloat162 r = __floats2bfloat162_rn(w == 0.0f ? 0.0f : a, w == 0.0f ? 0.0f : b);
    return *reinterpret_cast<const uint32_t*>(&r);
  };
  store16<WB>(p, make_uint4(scale(v4.x), scale(v4.y), scale(v4.z), scale(v4.w)));
  if (lane == 0) out_lse[row] = lse;
  pdl_signal<GRIDDEP>();
}

// ---- 2. merge of two partials ----

struct Merge2Args {
  const bf16 *a, *b;
  size_t row_stride;  // elements between rows of a partial
  const float *la, *lb;
  int lse_stride;
  bf16* out;
  float* out_lse;
  int R, D;
};
struct Merge2ArgsPadded {  // as large as cpattn's RowsArgs (120 bytes)
  Merge2Args m;
  char pad[120 - sizeof(Merge2Args)];
};

// One thread per 16 bytes of output.
template <int GRIDDEP, bool WB>
__device__ __forceinline__ void merge2_body(const Merge2Args& m) {
  const int per_row = m.D / 8;
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int row = t / per_row, lane = t - row * per_row;
  if (row >= m.R) return;
  const size_t ra = static_cast<size_t>(row) * m.row_stride + lane * 8;
  pdl_wait<GRIDDEP>(m.R < 0);
  const uint4 x = *reinterpret_cast<const uint4*>(m.a + ra), y = *reinterpret_cast<const uint4*>(m.b + ra);
  float l0 = m.la[static_cast<size_t>(row) * m.lse_stride], l1 = m.lb[static_cast<size_t>(row) * m.lse_stride];
  l0 = l0 != l0 || l0 == INFINITY ? -INFINITY : l0;
  l1 = l1 != l1 || l1 == INFINITY ? -INFINITY : l1;
  const float mx = fmaxf(l0, l1);
  float w0 = 0, w1 = 0;
  if (mx != -INFINITY) {
    const float e0 = __expf(l0 - mx), e1 = __expf(l1 - mx), inv = 1.0f / (e0 + e1);
    w0 = e0 * inv;
    w1 = e1 * inv;
    if (lane == 0) m.out_lse[row] = mx + logf(e0 + e1);
  } else if (lane == 0) {
    m.out_lse[row] = -INFINITY;
  }
  const auto mix = [&](uint32_t p, uint32_t q) {
    const float a0 = __uint_as_float(p << 16), a1 = __uint_as_float(p & 0xffff0000u);
    const float b0 = __uint_as_float(q << 16), b1 = __uint_as_float(q & 0xffff0000u);
    const float r0 = (w0 == 0 ? 0 : w0 * a0) + (w1 == 0 ? 0 : w1 * b0), r1 = (w0 == 0 ? 0 : w0 * a1) + (w1 == 0 ? 0 : w1 * b1);
    const __nv_bfloat162 r = __floats2bfloat162_rn(r0, r1);
    return *reinterpret_cast<const uint32_t*>(&r);
  };
  store16<WB>(m.out + static_cast<size_t>(row) * m.D + lane * 8, make_uint4(mix(x.x, y.x), mix(x.y, y.y), mix(x.z, y.z), mix(x.w, y.w)));
  pdl_signal<GRIDDEP>(m.R < 0);
}
template <int GRIDDEP, bool WB>
__global__ void merge2_flat(const Merge2Args m) {
  merge2_body<GRIDDEP, WB>(m);
}
template <int GRIDDEP, bool WB>
__global__ void merge2_flat_padded(const Merge2ArgsPadded m) {
  merge2_body<GRIDDEP, WB>(m.m);
}

int main(int argc, char** argv) {
  const bool random_data = argc > 1;
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("# %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  std::printf("empty kernel (1 block of 32)                 %7.2f us\n", time_us(s, [&] { empty_kernel<<<1, 32, 0, s>>>(); }));
  std::printf("empty kernel (32 blocks of 128)              %7.2f us\n", time_us(s, [&] { empty_kernel<<<32, 128, 0, s>>>(); }));

  {  // 1. correct B1 H32 D128 N2
    const int R = 32, D = 128, N = 2;
    bf16* out;
    float *lses, *olse;
    CHECK(cudaMalloc(&out, R * D * 2));
    CHECK(cudaMalloc(&lses, N * R * 4));
    CHECK(cudaMalloc(&olse, R * 4));
    std::vector<float> lh(N * R);
    for (int i = 0; i < N * R; ++i) lh[i] = static_cast<float>((i * 37) % 11) * 0.3f;
    CHECK(cudaMemcpy(lses, lh.data(), lh.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemset(out, 0x3c, R * D * 2));
    const auto run = [&](const char* name, auto kernel) {
      const int threads = 128, blocks = R * D / 8 / threads;
      const double us = time_us(s, [&] { kernel<<<blocks, threads, 0, s>>>(out, lses, olse, R, D, N, 1); });
      std::printf("correct B1 H32 D128 N2 %-28s %7.2f us\n", name, us);
    };
    for (int rep = 0; rep < 2; ++rep) {
      run("minimal", correct_flat<0, false>);
      run("+griddepcontrol", correct_flat<1, false>);
      run("+st.wb", correct_flat<0, true>);
      run("+griddepcontrol +st.wb", correct_flat<1, true>);
    }
  }
  {  // 2. merge of two at H16 D128
    for (int B : {1024, 2048, 4096}) {
      const int H = 16, D = 128, R = B * H;
      const size_t part = static_cast<size_t>(R) * D;
      bf16 *one, *out;
      float *lse, *olse;
      CHECK(cudaMalloc(&one, 2 * part * 2));
      CHECK(cudaMalloc(&out, part * 2));
      CHECK(cudaMalloc(&lse, 2 * R * 4));
      CHECK(cudaMalloc(&olse, R * 4));
      CHECK(cudaMemset(one, 0x3c, 2 * part * 2));
      CHECK(cudaMemset(lse, 0, 2 * R * 4));
      if (random_data) {
        fill_random<<<1024, 256>>>(one, 2 * part, 1);
        CHECK(cudaDeviceSynchronize());
      }
      const double mb = (3.0 * part * 2 + 3.0 * R * 4) / 1e6;
      const Merge2Args m{one, one + part, static_cast<size_t>(D), lse, lse + R, 1, out, olse, R, D};
      const Merge2ArgsPadded mp{m, {}};
      const int threads = 128, blocks = R * (D / 8) / threads;
      const auto report = [&](const char* name, double us) {
        std::printf("merge B%d H16 D128 N2 %s %-32s %7.2f us %6.0f GB/s\n", B, random_data ? "random" : "memset", name, us, mb * 1e3 / us);
      };
      for (int rep = 0; rep < 2; ++rep) {
        report("minimal", time_us(s, [&] { merge2_flat<0, false><<<blocks, threads, 0, s>>>(m); }));
        report("+griddepcontrol", time_us(s, [&] { merge2_flat<1, false><<<blocks, threads, 0, s>>>(m); }));
        report("+griddepcontrol, never taken", time_us(s, [&] { merge2_flat<2, false><<<blocks, threads, 0, s>>>(m); }));
        report("+st.wb", time_us(s, [&] { merge2_flat<0, true><<<blocks, threads, 0, s>>>(m); }));
        report("+120-byte params", time_us(s, [&] { merge2_flat_padded<0, false><<<blocks, threads, 0, s>>>(mp); }));
        report("+all three", time_us(s, [&] { merge2_flat_padded<1, true><<<blocks, threads, 0, s>>>(mp); }));
      }
      cudaFree(one);
      cudaFree(out);
      cudaFree(lse);
      cudaFree(olse);
    }
  }
  CHECK(cudaGetLastError());
  return 0;
}
