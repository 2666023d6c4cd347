#include <atomic>
#include <cmath>
#include <mutex>

#include "cp_check.hpp"
#include "forwarding_comm.hpp"

namespace cpattn::testing {
namespace {

struct LocalCpParam {
  int ranks;
  CpOp op;
  DType dtype;
};

class LocalCp : public ::testing::TestWithParam<LocalCpParam> {};

TEST_P(LocalCp, MatchesUnsplitAttention) {
  const auto [ranks, op, dtype] = GetParam();
  for (bool kv : {false, true})
    for (LseBase base : {LseBase::e, LseBase::two}) {
      CpCase c;
      c.op = op, c.dtype = dtype, c.use_kv_lens = kv, c.base = base;
      c.H = op == CpOp::ar ? 5 : 2 * ranks;
      c.seed = static_cast<uint32_t>(ranks * 100 + static_cast<int>(op) * 10 + kv);
      const auto problem = reference::make_cp_attention(c.B, c.S, c.H, c.D, ranks, c.seed);
      std::mutex mu;
      std::vector<std::string> failures;
      run_local_ranks(ranks, [&](Communicator& comm) {
        const std::string f = run_cp_case(c, comm, Device::cpu(), problem);
        if (!f.empty()) {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back(f);
        }
      });
      for (const auto& f : failures) ADD_FAILURE() << f;
    }
}

std::vector<LocalCpParam> params() {
  std::vector<LocalCpParam> v;
  for (int n = 1; n <= 8; ++n)
    for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a}) v.push_back({n, op, n % 3 == 0 ? DType::f32 : n % 3 == 1 ? DType::bf16 : DType::f16});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Ranks, LocalCp, ::testing::ValuesIn(params()), [](const auto& info) {
  return std::string(cp_op_name(info.param.op)) + "_" + std::to_string(info.param.ranks) + "ranks_" +
         dtype_name(info.param.dtype);
});

// Each rank records what it raised; every rank must raise, none may hang.
std::vector<std::string> errors_on_every_rank(int ranks, const std::function<void(Communicator&)>& fn) {
  std::vector<std::string> args(static_cast<size_t>(ranks), "<no error>");
  std::atomic<int> raised{0};
  const auto group = LocalComm::make_group(ranks, std::chrono::seconds(20));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      LocalComm comm(group, r);
      try {
        fn(comm);
      } catch (const Error& e) {
        args[static_cast<size_t>(r)] = e.argument();
        ++raised;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(raised.load(), ranks);
  return args;
}

// World size 1: the merge of the one partial. Non-empty rows are copied exactly; a row that
// kv_lens or its lse (-inf, NaN, +inf) marks empty is zero, whatever out held there, in place
// (ar: result is out) and into a separate result; out_lse is the masked lse.
TEST(CpSingleRank, EmptyRowsAreZeroOthersExact) {
  const int64_t B = 4, H = 2, D = 8;
  for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a})
    for (bool in_place : {false, true}) {
      if (in_place && op != CpOp::ar) continue;  // only ar may write over out
      std::vector<float> out(B * H * D), lse(B * H), result(B * H * D, 7.0f), out_lse(B * H);
      for (size_t i = 0; i < out.size(); ++i) out[i] = 0.25f * static_cast<float>(i % 13) - 1.0f;
      for (size_t i = 0; i < lse.size(); ++i) lse[i] = 0.5f * static_cast<float>(i);
      lse[2] = -INFINITY, lse[3] = NAN, lse[4] = INFINITY;  // rows (1, 0), (1, 1), (2, 0) empty by their lse
      for (int64_t d = 0; d < D; ++d) out[2 * D + d] = NAN, out[4 * D + d] = INFINITY;
      std::vector<int32_t> kv_lens{3, 3, 3, 0};  // b = 3 empty by kv_lens, lse finite
      for (int64_t d = 0; d < 2 * D; ++d) out[6 * D + d] = NAN;
      const std::vector<float> input = out;
      const TensorView out_v(out.data(), DType::f32, {B, H, D}), lse_v(lse.data(), DType::f32, {B, H});
      const TensorView result_v(in_place ? out.data() : result.data(), DType::f32, {B, H, D});
      const TensorView out_lse_v(out_lse.data(), DType::f32, {B, H}), kv_v(kv_lens.data(), DType::i32, {B});
      CpOptions options;
      options.kv_lens = &kv_v;
      options.out_lse = &out_lse_v;
      run_local_ranks(1, [&](Communicator& comm) { cp_combine(op, out_v, lse_v, comm, result_v, options); });
      const float* got = in_place ? out.data() : result.data();
      for (int64_t row = 0; row < B * H; ++row) {
        const bool empty = row == 2 || row == 3 || row == 4 || row >= 6;
        EXPECT_EQ(out_lse[row], empty ? -INFINITY : lse[row]) << cp_op_name(op) << " row " << row;
        for (int64_t d = 0; d < D; ++d) {
          const float want = empty ? 0.0f : input[row * D + d];
          ASSERT_EQ(got[row * D + d], want) << cp_op_name(op) << (in_place ? " in place" : "") << " row " << row << " d " << d;
        }
      }
      if (!in_place)
        for (size_t i = 0; i < out.size(); ++i)
          if (!std::isnan(input[i])) ASSERT_EQ(out[i], input[i]) << "out was written";
    }
}

TEST(CpErrors, MismatchedShapesRaiseOnEveryRank) {
  const auto args = errors_on_every_rank(3, [](Communicator& comm) {
    const int64_t B = comm.rank() == 2 ? 5 : 4, H = 6, D = 8;
    std::vector<float> out(B * H * D), lse(B * H), result(B * 2 * D);
    cp_lse_ag_out_rs(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), DType::f32, {B, H}), comm,
                     TensorView(result.data(), DType::f32, {B, 2, D}));
  });
  for (const auto& a : args) EXPECT_EQ(a, "arguments across ranks");
}

TEST(CpErrors, OneRankWithBadInputRaisesEverywhere) {
  const auto args = errors_on_every_rank(4, [](Communicator& comm) {
    const int64_t B = 2, H = 4, D = 8;
    std::vector<float> out(B * H * D), lse(B * H), result(B * H * D);
    const DType lse_dtype = comm.rank() == 1 ? DType::i32 : DType::f32;
    cp_lse_a2a_merge(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), lse_dtype, {B, H}), comm,
                     TensorView(result.data(), DType::f32, {B, 1, D}));
  });
  EXPECT_EQ(args[1], "lse");
  for (int r : {0, 2, 3}) EXPECT_EQ(args[r], "arguments on rank 1");
}

TEST(CpErrors, HeadsNotDivisibleRaiseOnEveryRank) {
  const auto args = errors_on_every_rank(3, [](Communicator& comm) {
    const int64_t B = 2, H = 4, D = 8;
    std::vector<float> out(B * H * D), lse(B * H), result(B * H * D);
    cp_lse_ag_out_rs(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), DType::f32, {B, H}), comm,
                     TensorView(result.data(), DType::f32, {B, 1, D}));
  });
  for (const auto& a : args) EXPECT_EQ(a, "out");
}

TEST(CpErrors, ResultShapeIsChecked) {
  run_local_ranks(1, [](Communicator& comm) {
    std::vector<float> out(2 * 4 * 8), lse(8), result(2 * 4 * 8);
    EXPECT_THROW(cp_lse_ag_out_ar(TensorView(out.data(), DType::f32, {2, 4, 8}), TensorView(lse.data(), DType::f32, {2, 4}),
                                  comm, TensorView(result.data(), DType::f32, {2, 2, 8})),
                 Error);
  });
}

// The direct transport needs an NcclComm: asked for on LocalComm it raises on every rank,
// naming the reason; auto takes the collectives, saying why.
TEST(CpPath, DirectOnLocalCommRaisesOnEveryRankAutoFallsBack) {
  const auto args = errors_on_every_rank(2, [](Communicator& comm) {
    const int64_t B = 2, H = 4, D = 8;
    std::vector<float> out(B * H * D), lse(B * H), result(B * 2 * D);
    CpOptions o;
    o.path = CpPath::direct;
    try {
      cp_lse_a2a_merge(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), DType::f32, {B, H}), comm,
                       TensorView(result.data(), DType::f32, {B, 2, D}), o);
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what.find("no symmetric memory") != std::string::npos) << what;
      throw;
    }
  });
  for (const auto& a : args) EXPECT_EQ(a, "path");
  run_local_ranks(2, [](Communicator& comm) {
    std::vector<float> out(2 * 4 * 8);
    const TensorView view(out.data(), DType::f32, {2, 4, 8});
    CpOptions o;
    const CpPlan automatic = cp_plan(CpOp::rs, view, comm, o);
    EXPECT_EQ(automatic.path, CpPath::collectives);
    EXPECT_NE(automatic.reason.find("no symmetric memory"), std::string::npos) << automatic.reason;
    o.path = CpPath::collectives;
    EXPECT_EQ(cp_plan(CpOp::ar, view, comm, o).path, CpPath::collectives);
    o.path = CpPath::direct;
    const CpPlan direct = cp_plan(CpOp::a2a, view, comm, o);
    EXPECT_EQ(direct.path, CpPath::direct);
    EXPECT_FALSE(direct.reason.empty());  // the call would raise with this reason
  });
  run_local_ranks(1, [](Communicator& comm) {
    std::vector<float> out(2 * 4 * 8);
    const CpPlan one = cp_plan(CpOp::rs, TensorView(out.data(), DType::f32, {2, 4, 8}), comm);
    EXPECT_EQ(one.path, CpPath::collectives);
    EXPECT_EQ(one.reason, "one rank: nothing to exchange");
  });
}

TEST(CpPath, Names) {
  EXPECT_STREQ(cp_path_name(CpPath::automatic), "auto");
  EXPECT_STREQ(cp_path_name(CpPath::collectives), "collectives");
  EXPECT_STREQ(cp_path_name(CpPath::direct), "direct");
  EXPECT_STREQ(cp_op_name(CpOp::a2a), "cp_lse_a2a_merge");
}

// Forwards to a LocalComm and counts the host-side exchanges (the consistency check).
class CountingComm final : public ForwardingComm {
 public:
  CountingComm(Communicator& inner, std::atomic<int>& host_exchanges) : ForwardingComm(inner), count_(host_exchanges) {}
  std::string name() const override { return "counting " + inner_.name(); }
  void all_gather_host(const void* s, void* r, size_t bytes) override {
    ++count_;
    inner_.all_gather_host(s, r, bytes);
  }

 private:
  std::atomic<int>& count_;
};

// first_call: one exchange per distinct call signature, none for repeats (no host sync in a
// steady loop); every_call: one per call; off: none. Results stay right in every mode.
TEST(CpConsistency, ExchangesOncePerSignatureByDefault) {
  for (const auto mode : {ConsistencyCheck::first_call, ConsistencyCheck::every_call, ConsistencyCheck::off}) {
    std::atomic<int> exchanges{0};
    run_local_ranks(2, [&](Communicator& local) {
      CountingComm comm(local, exchanges);
      CpOptions o;
      o.check_consistency = mode;
      for (int64_t B : {3, 3, 3, 5, 3, 5}) {
        const int64_t H = 4, D = 8;
        std::vector<float> out(static_cast<size_t>(B * H * D), 1.0f), lse(static_cast<size_t>(B * H), 0.0f),
            result(static_cast<size_t>(B * 2 * D), -1.0f);
        cp_lse_ag_out_rs(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), DType::f32, {B, H}),
                         comm, TensorView(result.data(), DType::f32, {B, 2, D}), o);
        for (float x : result) ASSERT_FLOAT_EQ(x, 1.0f);  // two equal partials of weight 1/2 each
      }
    });
    const int per_rank = mode == ConsistencyCheck::first_call ? 2 : mode == ConsistencyCheck::every_call ? 6 : 0;
    EXPECT_EQ(exchanges.load(), 2 * per_rank) << "mode " << static_cast<int>(mode);
  }
}

}  // namespace
}  // namespace cpattn::testing
