// Programmatic dependent launch (Context::set_pdl): a chain of ops where each kernel reads
// what the one before wrote gives, bit for bit, what it gives launched the ordinary way,
// eagerly and replayed from a CUDA graph. A kernel that read before griddepcontrol.wait
// would see the NaN the buffers hold before the chain runs.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/backend.hpp"
#include "test_data.hpp"

namespace cpattn::testing {
namespace {

constexpr int64_t N = 8, H = 32, D = 128;

// outs -merge-> stage[0] (with its lse); stage -merge-> result (with its lse); result is then
// corrected in place for partial 0 of stage. Three kernels, each reading the previous one's
// output.
class Chain {
 public:
  explicit Chain(int64_t B) : B(B) {
    std::mt19937 rng(7);
    outs_.fill_normal(rng), lses_.fill_normal(rng, 3), stage_.fill_normal(rng), stage_lses_.fill_normal(rng, 3);
    outs_.upload(), lses_.upload(), stage_.upload(), stage_lses_.upload();
  }

  // NaN (all bits set) in everything the chain writes, so a read that comes too early shows.
  void poison_outputs() {
    for (const Region& r : written_regions()) ASSERT_EQ(cudaMemset(r.data, 0xff, r.bytes), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the memsets run on the legacy stream
  }

  void run(Context& ctx) {
    const TensorView stage = stage_.view(), stage_lses = stage_lses_.view();
    const int64_t out_shape[] = {B, H, D}, out_strides[] = {H * D, D, 1}, lse_shape[] = {B, H}, lse_strides[] = {H, 1};
    const TensorView stage0(stage.data, DType::bf16, out_shape, out_strides, stage.device);
    const TensorView stage0_lse(stage_lses.data, DType::f32, lse_shape, lse_strides, stage.device);
    const TensorView result = result_.view(), result_lse = result_lse_.view();
    merge_attn_states(outs_.view(), lses_.view(), stage0, &stage0_lse, {}, &ctx);
    merge_attn_states(stage, stage_lses, result, &result_lse, {}, &ctx);
    correct_attn_out(result, stage_lses, 0, result, nullptr, {}, &ctx);
  }

  const int64_t B;

  // The bytes of everything the chain wrote: stage[0], its lse, result, its lse.
  std::vector<unsigned char> written() {
    std::vector<unsigned char> bytes;
    for (const Region& r : written_regions()) {
      const size_t at = bytes.size();
      bytes.resize(at + r.bytes);
      EXPECT_EQ(cudaMemcpy(bytes.data() + at, r.data, r.bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return bytes;
  }

 private:
  struct Region {
    void* data;
    size_t bytes;
  };
  std::vector<Region> written_regions() const {
    const auto rows = static_cast<size_t>(B * H);
    return {{stage_.view().data, rows * D * 2}, {stage_lses_.view().data, rows * 4},
            {result_.view().data, rows * D * 2}, {result_lse_.view().data, rows * 4}};
  }

  const Device dev_ = Device::cuda();
  // (B is declared before these: they are built from it)
  TestTensor outs_{DType::bf16, {N, B, H, D}, dev_}, lses_{DType::f32, {N, B, H}, dev_};
  TestTensor stage_{DType::bf16, {2, B, H, D}, dev_}, stage_lses_{DType::f32, {2, B, H}, dev_};
  TestTensor result_{DType::bf16, {B, H, D}, dev_}, result_lse_{DType::f32, {B, H}, dev_};
};

bool all_finite_bf16(const std::vector<unsigned char>& bytes, size_t begin, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    uint16_t v;
    std::memcpy(&v, bytes.data() + begin + 2 * i, 2);
    if ((v & 0x7f80u) == 0x7f80u) return false;
  }
  return true;
}

TEST(CudaPdlContext, OffByDefault) { EXPECT_FALSE(Context().pdl()); }

// B = 4: small grids, which let the next kernel be scheduled as they start; B = 1024 (64 MiB
// read by the first kernel, several waves): larger ones, which signal after their stores.
class CudaPdl : public ::testing::TestWithParam<int64_t> {};
TEST_P(CudaPdl, ChainGivesTheSameBitsAsOrdinaryLaunches) {
  CPATTN_REQUIRE_GPU();
  const int64_t B = GetParam();
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  EXPECT_EQ(cuda::pdl_supported(), major >= 9);  // on sm_90+ the launches below really are dependent
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  Context plain(Device::cuda(), stream), pdl(Device::cuda(), stream);
  pdl.set_pdl(true);
  Chain chain(B);

  chain.poison_outputs();
  chain.run(plain);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  const std::vector<unsigned char> expected = chain.written();
  ASSERT_TRUE(all_finite_bf16(expected, 0, B * H * D));  // stage[0]
  ASSERT_TRUE(all_finite_bf16(expected, B * H * (2 * D + 4), B * H * D));  // result

  for (int round = 0; round < 5; ++round) {
    chain.poison_outputs();
    chain.run(pdl);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_TRUE(chain.written() == expected) << "eager round " << round;
  }

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  chain.run(pdl);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int round = 0; round < 3; ++round) {
    chain.poison_outputs();
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_TRUE(chain.written() == expected) << "graph replay " << round;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}
INSTANTIATE_TEST_SUITE_P(Batch, CudaPdl, ::testing::Values(4, 1024));

}  // namespace
}  // namespace cpattn::testing
