// The CPU tests' matrices on the GPU: every kernel against the f64 reference (and so the
// CPU backend). Each test skips itself, saying why, where no GPU is present.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>
#include <vector>

#include "backend/convert.hpp"
#include "cp_check.hpp"
#include "cpu/merge_matrix.hpp"
#include "cpu/pack_matrix.hpp"
#include "core/validate.hpp"
#include "cuda/backend.hpp"
#include "large_and_repeat.hpp"

namespace cpattn::testing {
namespace {

// Runs a test body on merge_groups_kernel alone (by default merge_rows_kernel takes every case
// it can, so merge_groups_kernel would otherwise see only the layouts merge_rows_kernel leaves).
class GroupsKernelOnly {
 public:
  GroupsKernelOnly() { cuda::force_merge_groups(true); }
  ~GroupsKernelOnly() { cuda::force_merge_groups(false); }
  GroupsKernelOnly(const GroupsKernelOnly&) = delete;
  GroupsKernelOnly& operator=(const GroupsKernelOnly&) = delete;
};

class CudaMerge : public ::testing::TestWithParam<MergeCase> {};
TEST_P(CudaMerge, MatchesFloat64Reference) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_merge(GetParam(), Device::cuda()));
}
TEST_P(CudaMerge, GroupsKernelMatchesFloat64Reference) {
  CPATTN_REQUIRE_GPU();
  GroupsKernelOnly groups;
  EXPECT_TRUE(check_merge(GetParam(), Device::cuda()));
}
INSTANTIATE_TEST_SUITE_P(Matrix, CudaMerge, ::testing::ValuesIn(merge_matrix()));

class CudaCorrect : public ::testing::TestWithParam<MergeCase> {};
TEST_P(CudaCorrect, InPlaceMatchesFloat64Reference) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_correct(GetParam(), Device::cuda(), true));
}
TEST_P(CudaCorrect, OutOfPlaceMatchesFloat64Reference) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_correct(GetParam(), Device::cuda(), false));
}
TEST_P(CudaCorrect, GroupsKernelMatchesFloat64Reference) {
  CPATTN_REQUIRE_GPU();
  GroupsKernelOnly groups;
  EXPECT_TRUE(check_correct(GetParam(), Device::cuda(), true));
  EXPECT_TRUE(check_correct(GetParam(), Device::cuda(), false));
}

INSTANTIATE_TEST_SUITE_P(Matrix, CudaCorrect, ::testing::ValuesIn(merge_matrix()));

class CudaMergeVarlen : public ::testing::TestWithParam<VarlenCase> {};
TEST_P(CudaMergeVarlen, MatchesFloat64Reference) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_merge_varlen(GetParam(), Device::cuda()));
}
INSTANTIATE_TEST_SUITE_P(Matrix, CudaMergeVarlen, ::testing::ValuesIn(varlen_matrix()));

class CudaMergeFp8 : public ::testing::TestWithParam<std::pair<MergeCase, double>> {};
TEST_P(CudaMergeFp8, MatchesFloat64ReferenceScaledAndSaturated) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_merge_fp8(GetParam().first, Device::cuda(), GetParam().second));
}
INSTANTIATE_TEST_SUITE_P(Matrix, CudaMergeFp8, ::testing::ValuesIn(fp8_merge_matrix()));

// CUDA never reads offsets on the host: out-of-range and decreasing ones are clamped on the
// device, never read or written out of bounds (compute-sanitizer runs this too).
TEST(CudaMergeVarlenBounds, BadOffsetsAreClampedNotFollowed) {
  CPATTN_REQUIRE_GPU();
  const int64_t P = 4, H = 2, D = 8;
  TestTensor outs(DType::f32, {P, H, D}, Device::cuda()), lses(DType::f32, {P, H}, Device::cuda());
  TestTensor offsets(DType::i64, {5}, Device::cuda());
  TestTensor out(DType::f32, {4, H, D}, Device::cuda());
  outs.fill(1.0);
  lses.fill(0.0);
  const double bad[] = {-5, 2, 1, 100, 3};  // negative, decreasing, past P, back inside
  for (int64_t i = 0; i < 5; ++i) offsets.set({i}, bad[i]);
  outs.upload();
  lses.upload();
  offsets.upload();
  out.poison();
  merge_attn_states_varlen(outs.view(), lses.view(), offsets.view(), out.view());
  out.download();
  // rows: [0, 2) two partials of ones -> 1; [2, 1) decreasing: empty -> 0; [1, 4) -> 1; [4, 3): empty -> 0
  const double want[] = {1, 0, 1, 0};
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) ASSERT_NEAR(out.get({b, h, d}), want[b], 1e-6) << b << " " << h << " " << d;
  EXPECT_TRUE(out.guard_intact());
}

// Which calls merge_rows_kernel takes: the common layout yes, the rest no (so the default tests
// above check merge_rows_kernel on every case it takes, the GroupsKernel ones
// merge_groups_kernel on all).
TEST(CudaMergeRows, TakesTheCommonLayoutOnly) {
  CPATTN_REQUIRE_GPU();
  const auto takes = [](DType dt, int64_t N, int64_t D, DType lse_dt, bool strided) {
    TestTensor outs(dt, {N, 4, 8, strided ? 2 * D : D}, Device::cuda()), lses(lse_dt, {N, 4, 8}, Device::cuda());
    TestTensor out(dt, {4, 8, D}, Device::cuda());
    TensorView o = outs.view();
    if (strided) {  // every row twice as far apart as it is long
      const int64_t shape[] = {N, 4, 8, D}, strides[] = {4 * 8 * 2 * D, 8 * 2 * D, 2 * D, 1};
      o = TensorView(o.data, dt, shape, strides, o.device);
    }
    const auto a = detail::make_merge_args(o, lses.view(), out.view(), nullptr, MergeOptions{});
    return cuda::launch_merge_rows(a, nullptr, false);
  };
  EXPECT_TRUE(takes(DType::bf16, 2, 128, DType::f32, false));
  EXPECT_TRUE(takes(DType::f32, 16, 576, DType::f32, false));
  EXPECT_TRUE(takes(DType::f16, 3, 96, DType::f32, true));  // rows at 2 * D: still one stride
  EXPECT_FALSE(takes(DType::bf16, 17, 128, DType::f32, false));  // N > 16
  EXPECT_FALSE(takes(DType::bf16, 2, 128, DType::bf16, false));  // bf16 lses
  EXPECT_FALSE(takes(DType::bf16, 2, 100, DType::f32, false));  // D not whole 16-byte vectors
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

class CudaPack : public ::testing::TestWithParam<PackCase> {};
TEST_P(CudaPack, MatchesReference) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_pack(GetParam(), Device::cuda()));
}
INSTANTIATE_TEST_SUITE_P(Matrix, CudaPack, ::testing::ValuesIn(pack_matrix(false)));

class CudaUnpack : public ::testing::TestWithParam<PackCase> {};
TEST_P(CudaUnpack, MatchesReference) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(check_unpack(GetParam(), Device::cuda()));
}
INSTANTIATE_TEST_SUITE_P(Matrix, CudaUnpack, ::testing::ValuesIn(pack_matrix(true)));

TEST(CudaPackBounds, BadLengthsNeverWriteOutOfBounds) {
  CPATTN_REQUIRE_GPU();
  // lengths that sum past T and exceed L: no host check on CUDA, but no out-of-bounds
  // access either; valid rows still land where they belong
  TestTensor x(DType::f32, {5, 4}, Device::cuda()), out(DType::f32, {3, 2, 4}, Device::cuda());
  TestTensor lengths(DType::i32, {3}, Device::cuda());
  lengths.set({0}, 2), lengths.set({1}, -3), lengths.set({2}, 9);
  lengths.upload();
  std::mt19937 rng(1);
  x.fill_normal(rng);
  x.upload();
  out.poison();
  pack_seq(x.view(), lengths.view(), out.view());
  out.download();
  EXPECT_EQ(out.get({0, 1, 3}), x.get({1, 3}));
  EXPECT_EQ(out.get({1, 0, 0}), -INFINITY);  // negative length: all pad
  EXPECT_EQ(out.get({2, 1, 2}), x.get({3, 2}));
  EXPECT_TRUE(out.guard_intact());
  TestTensor back(DType::f32, {5, 4}, Device::cuda());
  back.poison();
  unpack_seq(out.view(), lengths.view(), back.view());
  EXPECT_TRUE(back.guard_intact());
}

class CudaCp : public ::testing::TestWithParam<int> {};
TEST_P(CudaCp, LocalRanksOnOneGpuMatchUnsplitAttention) {
  CPATTN_REQUIRE_GPU();
  const int ranks = GetParam();
  for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a})
    for (DType dt : {DType::bf16, DType::f32})
      for (bool kv : {false, true}) {
        CpCase c;
        c.op = op, c.dtype = dt, c.use_kv_lens = kv, c.H = op == CpOp::ar ? 3 : 2 * ranks, c.D = 128;
        const auto p = reference::make_cp_attention(c.B, c.S, c.H, c.D, ranks, 7 + ranks);
        std::mutex mu;
        std::vector<std::string> failures;
        run_local_ranks(ranks, [&](Communicator& comm) {
          const std::string f = run_cp_case(c, comm, Device::cuda(), p);
          std::lock_guard<std::mutex> lock(mu);
          if (!f.empty()) failures.push_back(f);
        });
        for (const auto& f : failures) ADD_FAILURE() << f;
      }
}
INSTANTIATE_TEST_SUITE_P(Ranks, CudaCp, ::testing::Values(1, 2, 3, 4));

// Every op runs on its tensors' GPU whatever device the caller has current, and leaves the
// caller's current device as it was.
int current_device() {  // -1 where the query fails
  int device = -1;
  return cudaGetDevice(&device) == cudaSuccess ? device : -1;
}

TEST(CudaDevices, OpsLeaveTheCallersCurrentDevice) {
  CPATTN_REQUIRE_GPU();
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  MergeCase c;
  c.N = 3, c.D = 128, c.dtype = DType::bf16;
  EXPECT_TRUE(check_merge(c, Device::cuda(0)));
  EXPECT_TRUE(check_correct(c, Device::cuda(0), true));
  EXPECT_EQ(current_device(), 0);
}
TEST(CudaDevices, OpsRunOnTheTensorsGpu) {
  CPATTN_REQUIRE_GPUS(2);
  const int last = cuda::device_count() - 1;
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  MergeCase c;
  c.N = 3, c.D = 128, c.dtype = DType::bf16, c.adv = Adversarial::all();
  EXPECT_TRUE(check_merge(c, Device::cuda(last)));
  EXPECT_TRUE(check_correct(c, Device::cuda(last), false));
  EXPECT_TRUE(check_pack(pack_matrix(false).at(1), Device::cuda(last)));
  EXPECT_TRUE(check_unpack(pack_matrix(true).at(1), Device::cuda(last)));
  EXPECT_EQ(current_device(), 0);
}

TEST(CudaDevices, MislabelledTensorsAreAnErrorNotAFault) {
  CPATTN_REQUIRE_GPUS(2);
  // memory on the last GPU, current, but the views say cuda:0 (Device::cuda()'s default)
  const int last = cuda::device_count() - 1;
  void* p = cuda::device_malloc(4096, last);
  ASSERT_EQ(cudaSetDevice(last), cudaSuccess);
  TensorView out(p, DType::f32, {1, 2, 8}, Device::cuda()), lses(static_cast<char*>(p) + 1024, DType::f32, {2, 1, 2}, Device::cuda());
  try {
    correct_attn_out(out, lses, 0, out);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory of cuda:" + std::to_string(last)), std::string::npos) << e.what();
  }
  EXPECT_EQ(current_device(), last);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // nothing launched, nothing sticky
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cuda::device_free(p, last);
}

TEST(CudaDeterminism, EveryOpBitwiseRepeatable) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(ops_bitwise_repeatable(Device::cuda()));
}

TEST(CudaLargeSizes, CorrectPast2To31Elements) {  // merge_rows: 64-bit row offsets
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(correct_past_int32(Device::cuda()));
}
TEST(CudaLargeSizes, CorrectPast2To31ElementsGroupsKernel) {
  CPATTN_REQUIRE_GPU();
  GroupsKernelOnly groups;
  EXPECT_TRUE(correct_past_int32(Device::cuda()));
}
// merge_rows_kernel: partials 2^30 + 4096 elements apart, so the last starts past 2^31 (64-bit
// partial offsets; 6.4 GB allocated, only each partial's first rows written). One NaN lse,
// one -inf lse and one all-empty row among them.
TEST(CudaLargeSizes, MergePartialsPast2To31Elements) {
  CPATTN_REQUIRE_GPU();
  constexpr int64_t N = 3, B = 64, H = 8, D = 128, S = (int64_t{1} << 30) + 4096, rows = B * H;
  static_assert((N - 1) * S > INT32_MAX);
  std::vector<uint16_t> x(static_cast<size_t>(N * rows * D));
  TestTensor lses(DType::f32, {N, B, H}, Device::cuda()), out(DType::bf16, {B, H, D}, Device::cuda()),
      out_lse(DType::f32, {B, H}, Device::cuda());
  auto* l = static_cast<float*>(lses.host_view().data);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t r = 0; r < rows; ++r) {
      l[n * rows + r] = static_cast<float>((r * 13 + n * 5) % 17) / 4.0f - 2.0f;
      for (int64_t d = 0; d < D; ++d)
        x[static_cast<size_t>((n * rows + r) * D + d)] = detail::f32_to_bf16(static_cast<float>((r * 7 + d * 3 + n) % 16 - 8));
    }
  l[1 * rows + 5] = NAN;        // empty partial
  l[2 * rows + 9] = -INFINITY;  // empty partial
  for (int64_t n = 0; n < N; ++n) l[n * rows + 11] = -INFINITY;  // every partial empty
  lses.upload();
  void* base = cuda::device_malloc(static_cast<size_t>(N * S) * 2, 0);
  for (int64_t n = 0; n < N; ++n)
    ASSERT_EQ(cudaMemcpy(static_cast<uint16_t*>(base) + n * S, x.data() + n * rows * D, static_cast<size_t>(rows * D) * 2,
                         cudaMemcpyHostToDevice),
              cudaSuccess);
  const int64_t shape[] = {N, B, H, D}, strides[] = {S, H * D, D, 1};
  const TensorView outs(base, DType::bf16, shape, strides, Device::cuda());
  const TensorView lse_view = out_lse.view();
  merge_attn_states(outs, lses.view(), out.view(), &lse_view);
  cuda::device_free(base, 0);
  out.download();
  out_lse.download();
  const auto ref = reference::merge_attn_states(TensorView(x.data(), DType::bf16, {N, B, H, D}), lses.host_view());
  int64_t wrong = 0;
  std::ostringstream first;
  for (int64_t r = 0; r < rows; ++r) {
    const double want_lse = ref.lse[r], got_lse = static_cast<const float*>(out_lse.host_view().data)[r];
    if (!(got_lse == want_lse || std::fabs(got_lse - want_lse) <= 1e-5 * std::max(1.0, std::fabs(want_lse))) && wrong++ == 0)
      first << "lse of row " << r << ": got " << got_lse << ", want " << want_lse;
    for (int64_t d = 0; d < D; ++d) {
      const double want = ref.out[r * D + d], got = out.get({r / H, r % H, d});
      if (!(std::fabs(got - want) <= std::fabs(want) * 0x1p-8 + 1e-5) && wrong++ == 0)
        first << "out row " << r << " element " << d << ": got " << got << ", want " << want;
    }
  }
  EXPECT_EQ(wrong, 0) << "first: " << first.str();
}
TEST(CudaLargeSizes, PackUnpackPast2To31Bytes) {
  CPATTN_REQUIRE_GPU();
  EXPECT_TRUE(pack_unpack_past_int32(Device::cuda()));
}

}  // namespace
}  // namespace cpattn::testing
