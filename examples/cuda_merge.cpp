// cuda_merge.cpp: merge and correct bf16 partials on a GPU, on the caller's stream, eagerly
// and from a CUDA graph, checked against a float64 computation on the host. Exits 1 on a
// mismatch.
//
// Build and run (examples/CMakeLists.txt builds it when the installed cpattn has CUDA):
//   cmake --install build --prefix /tmp/cpattn
//   cmake -S examples -B build-app -DCMAKE_PREFIX_PATH=/tmp/cpattn && cmake --build build-app
//   build-app/cuda_merge
#include <cpattn/cpattn.hpp>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call)                                                              \
  do {                                                                           \
    cudaError_t e_ = (call);                                                     \
    if (e_ != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));           \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

static float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

static uint16_t float_to_bf16(float f) {  // round to nearest even (finite values)
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

int main() {
  using namespace cpattn;
  const int64_t N = 4, B = 16, H = 32, D = 128;
  const Device gpu = Device::cuda(0);  // the GPU that holds the tensors
  CHECK(cudaSetDevice(gpu.index));

  // partial outputs [N, B, H, D] bf16 and LSEs [N, B, H] f32
  std::vector<uint16_t> h_outs(N * B * H * D);
  std::vector<float> h_lses(N * B * H);
  for (size_t i = 0; i < h_outs.size(); ++i) h_outs[i] = float_to_bf16(std::sin(0.01f * static_cast<float>(i)));
  for (size_t i = 0; i < h_lses.size(); ++i) h_lses[i] = static_cast<float>(i % 9) * 0.5f;
  void *d_outs, *d_lses, *d_out, *d_lse;
  CHECK(cudaMalloc(&d_outs, h_outs.size() * 2));
  CHECK(cudaMalloc(&d_lses, h_lses.size() * 4));
  CHECK(cudaMalloc(&d_out, B * H * D * 2));
  CHECK(cudaMalloc(&d_lse, B * H * 4));
  CHECK(cudaMemcpy(d_outs, h_outs.data(), h_outs.size() * 2, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_lses, h_lses.data(), h_lses.size() * 4, cudaMemcpyHostToDevice));

  const TensorView outs(d_outs, DType::bf16, {N, B, H, D}, gpu);
  const TensorView lses(d_lses, DType::f32, {N, B, H}, gpu);
  const TensorView out(d_out, DType::bf16, {B, H, D}, gpu);
  const TensorView lse(d_lse, DType::f32, {B, H}, gpu);

  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));
  Context ctx(gpu, stream);  // optional; without it, the legacy default stream
  ctx.set_pdl(true);         // optional, sm_90+: programmatic dependent launch

  // eager: N partials -> one result [B, H, D] and its lse [B, H]
  merge_attn_states(outs, lses, out, &lse, {}, &ctx);

  // the same merge captured into a CUDA graph: no host sync, no allocation inside
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaMemsetAsync(d_out, 0, B * H * D * 2, stream));  // the replay writes it again
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  merge_attn_states(outs, lses, out, &lse, {}, &ctx);
  CHECK(cudaStreamEndCapture(stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphLaunch(exec, stream));

  // correct_attn_out, in place: scale rank 2's partial (outs[2]) by its weight
  const TensorView part(static_cast<uint16_t*>(d_outs) + 2 * B * H * D, DType::bf16, {B, H, D}, gpu);
  correct_attn_out(part, lses, /*rank=*/2, part, nullptr, {}, &ctx);
  CHECK(cudaStreamSynchronize(stream));

  std::vector<uint16_t> h_out(B * H * D), h_part(B * H * D);
  std::vector<float> h_lse(B * H);
  CHECK(cudaMemcpy(h_out.data(), d_out, h_out.size() * 2, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(h_lse.data(), d_lse, h_lse.size() * 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(h_part.data(), part.data, h_part.size() * 2, cudaMemcpyDeviceToHost));

  // float64 reference; each output is rounded once to bf16 (relative error <= 2^-9)
  double merge_err = 0, correct_err = 0, lse_err = 0;
  for (int64_t bh = 0; bh < B * H; ++bh) {
    double m = -INFINITY, s = 0;
    for (int64_t r = 0; r < N; ++r) m = std::fmax(m, h_lses[r * B * H + bh]);
    for (int64_t r = 0; r < N; ++r) s += std::exp(h_lses[r * B * H + bh] - m);
    const double ref_lse = m + std::log(s);
    lse_err = std::fmax(lse_err, std::fabs(h_lse[bh] - ref_lse) / std::fmax(1.0, std::fabs(ref_lse)));
    for (int64_t d = 0; d < D; ++d) {
      double ref = 0;
      for (int64_t r = 0; r < N; ++r)
        ref += std::exp(h_lses[r * B * H + bh] - ref_lse) * bf16_to_float(h_outs[(r * B * H + bh) * D + d]);
      merge_err = std::fmax(merge_err, std::fabs(bf16_to_float(h_out[bh * D + d]) - ref));
      const double ref_part = std::exp(h_lses[2 * B * H + bh] - ref_lse) * bf16_to_float(h_outs[(2 * B * H + bh) * D + d]);
      correct_err = std::fmax(correct_err, std::fabs(bf16_to_float(h_part[bh * D + d]) - ref_part));
    }
  }
  const bool ok = merge_err <= 1.0 / 256 && correct_err <= 1.0 / 256 && lse_err <= 1e-5;
  std::printf("merge (graph replay): max |out - f64| = %.2e, max |lse - f64| / max(1, |lse|) = %.2e\n", merge_err, lse_err);
  std::printf("correct rank 2, in place: max |out - f64| = %.2e\n", correct_err);
  std::printf("cuda_merge: %s\n", ok ? "every result matches the float64 reference" : "FAILED");

  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  CHECK(cudaStreamDestroy(stream));
  for (void* p : {d_outs, d_lses, d_out, d_lse}) CHECK(cudaFree(p));
  return ok ? 0 : 1;
}
