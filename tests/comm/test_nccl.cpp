// Run under mpirun, one process per GPU (skips itself, saying why, with fewer GPUs than
// ranks): the three cp_* functions over NcclComm, by both transports, against unsplit f64
// attention; the direct transport captured in a CUDA graph and replayed with new inputs,
// 1000 back-to-back calls mixed with collective ones, and a rank that never arrives.
#include <cuda_runtime.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <random>

#include "cp_check.hpp"
#include "cpattn/nccl_comm.hpp"

namespace cpattn::testing {
namespace {

int ranks_in_world() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// CPATTN_REQUIRE_GPUS for every rank at once: skips on every rank alike unless each sees a
// GPU per rank (test_data.hpp's gpus_missing says why).
#define CPATTN_REQUIRE_GPU_PER_RANK()                                                             \
  do {                                                                                            \
    const std::string missing = ::cpattn::testing::gpus_missing(ranks_in_world());                \
    int here = missing.empty() ? 1 : 0, everywhere = 0;                                           \
    MPI_Allreduce(&here, &everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);                       \
    if (!everywhere)                                                                              \
      GTEST_SKIP() << "needs a GPU per rank (" << ranks_in_world() << " ranks): "                 \
                   << (missing.empty() ? "another rank has fewer" : missing);                     \
  } while (0)

NcclComm& world() {
  static std::unique_ptr<NcclComm> comm = NcclComm::create_with_mpi(-1, std::chrono::seconds(60));
  return *comm;
}

TEST(Nccl, CpFunctionsMatchUnsplitAttentionOnBothPaths) {
  CPATTN_REQUIRE_GPU_PER_RANK();
  NcclComm& comm = world();
  const Device device = Device::cuda(comm.device());
  const int ranks = comm.size();
  struct Shape {
    int64_t B, H, D;
  };
  // GQA and MLA decode shapes; H of the a2a/rs shapes is a multiple of any rank count <= 16
  for (const Shape s : {Shape{1, 16, 128}, Shape{64, 16, 128}, Shape{256, 16, 128}, Shape{1, 128, 512},
                        Shape{64, 128, 512}, Shape{256, 128, 512}, Shape{5, 16 * 3, 72}}) {
    const auto problem = reference::make_cp_attention(s.B, 29, s.H, s.D, ranks, static_cast<uint32_t>(s.B + s.D));
    for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a})
      for (CpPath path : {CpPath::collectives, CpPath::direct})
        for (int variant = 0; variant < 2; ++variant) {
          CpCase c;
          c.op = op, c.path = path, c.B = s.B, c.H = s.H, c.D = s.D, c.S = 29;
          c.dtype = s.D == 72 ? (variant ? DType::f16 : DType::f32) : DType::bf16;
          c.use_kv_lens = variant == 1;  // else empty shards hold -inf lse and NaN data
          c.base = variant == 1 ? LseBase::two : LseBase::e;
          if (s.H % ranks != 0) continue;
          EXPECT_EQ(run_cp_case(c, comm, device, problem), "");
        }
  }
}

TEST(Nccl, AutoTakesDirectUpToTheCrossover) {
  CPATTN_REQUIRE_GPU_PER_RANK();
  NcclComm& comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "one rank: nothing to exchange";
  const Device device = Device::cuda(comm.device());
  const TensorView small(reinterpret_cast<void*>(256), DType::bf16, {1, 128, 512}, device);
  const TensorView large(reinterpret_cast<void*>(256), DType::bf16, {4096, 128, 512}, device);  // 512 MiB
  const CpPlan s = cp_plan(CpOp::rs, small, comm), l = cp_plan(CpOp::rs, large, comm);
  EXPECT_EQ(s.path, CpPath::direct) << s.reason;
  EXPECT_EQ(l.path, CpPath::collectives);
  EXPECT_NE(l.reason.find("MiB"), std::string::npos) << l.reason;
}

// Every rank's partial for (b, h) is a constant row `value` with lse `score`, drawn from a
// seed both ranks know, so each rank computes the expected merge on the host.
struct Partials {
  int64_t B, H, D;
  std::vector<std::vector<double>> value, score;  // [rank][b * H + h]
  Partials(int ranks, int64_t B_, int64_t H_, int64_t D_, uint32_t seed) : B(B_), H(H_), D(D_) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    value.assign(static_cast<size_t>(ranks), std::vector<double>(static_cast<size_t>(B * H)));
    score = value;
    for (int r = 0; r < ranks; ++r)
      for (int64_t i = 0; i < B * H; ++i) {
        value[r][i] = normal(rng);
        score[r][i] = 2.0 * normal(rng);
      }
    score[1 % ranks][0] = -INFINITY;  // an empty shard
  }
  double merged(int64_t b, int64_t h) const {
    double top = -INFINITY, sum = 0, acc = 0;
    for (const auto& s : score) top = std::max(top, s[b * H + h]);
    for (size_t r = 0; r < score.size(); ++r) {
      const double w = std::exp(score[r][b * H + h] - top);
      sum += w;
      acc += w * value[r][b * H + h];
    }
    return acc / sum;
  }
  void upload(int rank, TestTensor& out, TestTensor& lse) const {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        lse.set({b, h}, score[rank][b * H + h]);
        for (int64_t d = 0; d < D; ++d) out.set({b, h, d}, value[rank][b * H + h]);
      }
    out.upload();
    lse.upload();
  }
};

// rs result rows on this rank against the host merge; "" when all match.
std::string check_rs(const Partials& p, int rank, int ranks, TestTensor& result) {
  result.download();
  const int64_t kept = p.H / ranks;
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t j = 0; j < kept; ++j)
      for (int64_t d = 0; d < p.D; d += 7) {
        const double want = p.merged(b, rank * kept + j), got = result.get({b, j, d});
        if (!(std::fabs(got - want) <= 1e-5 * (1 + std::fabs(want))))
          return "result[" + std::to_string(b) + "," + std::to_string(j) + "," + std::to_string(d) + "] = " +
                 std::to_string(got) + ", want " + std::to_string(want);
      }
  return "";
}

TEST(Nccl, DirectCallsCaptureInAGraphAndReplayWithNewInputs) {
  CPATTN_REQUIRE_GPU_PER_RANK();
  NcclComm& comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "one rank: nothing to exchange";
  const Device device = Device::cuda(comm.device());
  const int64_t B = 4, H = 8 * comm.size(), D = 64;
  TestTensor out(DType::f32, {B, H, D}, device), lse(DType::f32, {B, H}, device);
  TestTensor result(DType::f32, {B, H / comm.size(), D}, device);
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  Context ctx(device, stream);
  CpOptions o;
  o.path = CpPath::direct;
  Partials(comm.size(), B, H, D, 1).upload(comm.rank(), out, lse);
  cp_lse_ag_out_rs(out.view(), lse.view(), comm, result.view(), o, &ctx);  // eager: registers and agrees
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  for (int step = 0; step < 3; ++step)  // a decode loop: one call per layer
    cp_lse_ag_out_rs(out.view(), lse.view(), comm, result.view(), o, &ctx);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (uint32_t round = 2; round < 6; ++round) {
    const Partials p(comm.size(), B, H, D, round);
    p.upload(comm.rank(), out, lse);
    for (int replay = 0; replay < 5; ++replay) ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(check_rs(p, comm.rank(), comm.size(), result), "") << "round " << round;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(Nccl, ThousandBackToBackCallsMixedWithCollectives) {
  CPATTN_REQUIRE_GPU_PER_RANK();
  NcclComm& comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "one rank: nothing to exchange";
  const Device device = Device::cuda(comm.device());
  Context ctx(device);
  const int64_t H = 4 * comm.size(), D = 32;
  for (int64_t B : {3, 40}) {  // two sizes: the grids differ, the call counter is shared
    TestTensor out(DType::f32, {B, H, D}, device), lse(DType::f32, {B, H}, device);
    TestTensor result(DType::f32, {B, H / comm.size(), D}, device);
    const Partials p(comm.size(), B, H, D, static_cast<uint32_t>(B));
    p.upload(comm.rank(), out, lse);
    CpOptions direct, collectives;
    direct.path = CpPath::direct;
    collectives.path = CpPath::collectives;
    for (int call = 0; call < 500; ++call)
      cp_lse_ag_out_rs(out.view(), lse.view(), comm, result.view(), call % 50 == 49 ? collectives : direct, &ctx);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(check_rs(p, comm.rank(), comm.size(), result), "") << "B " << B;
  }
}

// Rank 1 skips a call: rank 0's barrier gives up after the communicator's timeout, and its
// next call raises naming rank 1, within a bounded time and with no dead GPU context.
TEST(Nccl, ARankThatNeverArrivesRaisesNamingIt) {
  CPATTN_REQUIRE_GPU_PER_RANK();
  if (ranks_in_world() != 2) GTEST_SKIP() << "written for 2 ranks";
  auto comm = NcclComm::create_with_mpi(-1, std::chrono::milliseconds(300));
  const Device device = Device::cuda(comm->device());
  const int64_t B = 2, H = 4, D = 16;
  TestTensor out(DType::f32, {B, H, D}, device), lse(DType::f32, {B, H}, device), result(DType::f32, {B, H / 2, D}, device);
  Partials(2, B, H, D, 9).upload(comm->rank(), out, lse);
  CpOptions o;
  o.path = CpPath::direct;
  Context ctx(device);
  cp_lse_a2a_merge(out.view(), lse.view(), *comm, result.view(), o, &ctx);  // both ranks: registers the window
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  MPI_Barrier(MPI_COMM_WORLD);
  if (comm->rank() == 0) {
    const auto start = std::chrono::steady_clock::now();
    cp_lse_a2a_merge(out.view(), lse.view(), *comm, result.view(), o, &ctx);  // rank 1 never comes
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the kernel ended: no hang, no fault
    try {
      cp_lse_a2a_merge(out.view(), lse.view(), *comm, result.view(), o, &ctx);
      ADD_FAILURE() << "no error after a missing rank";
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), "comm");
      EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    // the GPU context is alive: an ordinary op still runs
    TestTensor lses(DType::f32, {1, B, H}, device), corrected(DType::f32, {B, H, D}, device);
    correct_attn_out(out.view(), lses.view(), 0, corrected.view(), nullptr, {}, &ctx);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  } else {
    comm->abort();
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace cpattn::testing
