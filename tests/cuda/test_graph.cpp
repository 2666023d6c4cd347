// CUDA-graph capture: correct, merge, pack (L known) and unpack (T known) are captured once,
// the inputs change, the graph is replayed, and the new results are checked.
#include <cuda_runtime.h>

#include "cpattn/cpattn.hpp"
#include "cpattn/reference.hpp"
#include "test_data.hpp"

#include <cmath>
#include <random>

namespace cpattn::testing {
namespace {

TEST(CudaGraph, CaptureChangeInputsReplay) {
  CPATTN_REQUIRE_GPU();
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  Context ctx(Device::cuda(0), stream);
  ctx.reserve(1 << 20);  // pack's workspace must exist before capture
  const Device dev = Device::cuda();
  const int64_t N = 3, B = 4, H = 6, D = 96;
  TestTensor outs(DType::bf16, {N, B, H, D}, dev), lses(DType::f32, {N, B, H}, dev), merged(DType::bf16, {B, H, D}, dev);
  TestTensor part(DType::bf16, {B, H, D}, dev), corrected(DType::bf16, {B, H, D}, dev);
  TestTensor x(DType::f32, {7, 5}, dev), lengths(DType::i32, {3}, dev), packed(DType::f32, {3, 4, 5}, dev),
      unpacked(DType::f32, {7, 5}, dev);
  lengths.set({0}, 3), lengths.set({1}, 0), lengths.set({2}, 4);
  lengths.upload();

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  merge_attn_states(outs.view(), lses.view(), merged.view(), nullptr, {}, &ctx);
  correct_attn_out(part.view(), lses.view(), 1, corrected.view(), nullptr, {}, &ctx);
  pack_seq(x.view(), lengths.view(), packed.view(), {}, &ctx);
  unpack_seq(packed.view(), lengths.view(), unpacked.view(), {}, &ctx);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);

  for (uint32_t round = 0; round < 2; ++round) {  // new inputs each time, same graph
    std::mt19937 rng(100 + round);
    outs.fill_normal(rng), lses.fill_normal(rng, 3), part.fill_normal(rng), x.fill_normal(rng);
    outs.upload(), lses.upload(), part.upload(), x.upload();
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    merged.download(), corrected.download(), packed.download(), unpacked.download();
    const auto m = reference::merge_attn_states(outs.host_view(), lses.host_view());
    const auto c = reference::correct_attn_out(part.host_view(), lses.host_view(), 1);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) {
          const double rm = m.out[(b * H + h) * D + d], rc = c.out[(b * H + h) * D + d];
          ASSERT_NEAR(merged.get({b, h, d}), rm, 1e-5 + tolerance(DType::bf16) * std::fabs(rm));
          ASSERT_NEAR(corrected.get({b, h, d}), rc, 1e-5 + tolerance(DType::bf16) * std::fabs(rc));
        }
    for (int64_t t = 0; t < 7; ++t)
      for (int64_t f = 0; f < 5; ++f) ASSERT_EQ(unpacked.get({t, f}), x.get({t, f}));
    ASSERT_EQ(packed.get({0, 3, 0}), -INFINITY);
    ASSERT_EQ(packed.get({2, 3, 4}), x.get({6, 4}));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(CudaGraph, GrowingTheWorkspaceWhileCapturingIsAClearError) {
  CPATTN_REQUIRE_GPU();
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  Context ctx(Device::cuda(0), stream);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_THROW(ctx.workspace(1 << 20), Error);
  cudaGraph_t graph;
  cudaStreamEndCapture(stream, &graph);
  if (graph) cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace cpattn::testing
