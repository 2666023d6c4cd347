#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "backend/convert.hpp"
#include "cpattn/cpattn.hpp"

namespace cpattn {
namespace {

class LocalCollectives : public ::testing::TestWithParam<int> {};

TEST_P(LocalCollectives, AllGatherReduceScatterAllReduceAllToAll) {
  const int n = GetParam();
  const size_t count = 5;
  run_local_ranks(n, [&](Communicator& comm) {
    Context ctx;
    const int r = comm.rank();
    std::vector<float> send(count * n), recv(count * n);
    for (size_t i = 0; i < send.size(); ++i) send[i] = static_cast<float>(100 * r + i);
    comm.all_gather(send.data(), recv.data(), count, DType::f32, ctx);
    for (int q = 0; q < n; ++q)
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(recv[q * count + i], 100.0f * q + i);

    std::vector<float> rs(count);
    comm.reduce_scatter(send.data(), rs.data(), count, DType::f32, ctx);
    for (size_t i = 0; i < count; ++i) {
      float expect = 0;
      for (int q = 0; q < n; ++q) expect += 100.0f * q + r * count + i;
      ASSERT_EQ(rs[i], expect);
    }

    std::vector<float> inplace = send;
    comm.all_reduce(inplace.data(), inplace.data(), inplace.size(), DType::f32, ctx);
    for (size_t i = 0; i < inplace.size(); ++i) {
      float expect = 0;
      for (int q = 0; q < n; ++q) expect += 100.0f * q + i;
      ASSERT_EQ(inplace[i], expect);
    }

    comm.all_to_all(send.data(), recv.data(), count, DType::f32, ctx);
    for (int q = 0; q < n; ++q)
      for (size_t i = 0; i < count; ++i) ASSERT_EQ(recv[q * count + i], 100.0f * q + r * count + i);
  });
}

TEST_P(LocalCollectives, Bf16SumsInF32AndRoundsOnce) {
  const int n = GetParam();
  run_local_ranks(n, [&](Communicator& comm) {
    Context ctx;
    // 1 + n * 2^-9: each term alone would round away in bf16, their f32 sum does not
    std::vector<uint16_t> send = {detail::f32_to_bf16(comm.rank() == 0 ? 1.0f : std::ldexp(1.0f, -9))};
    std::vector<uint16_t> recv(1);
    comm.all_reduce(send.data(), recv.data(), 1, DType::bf16, ctx);
    const float expect = detail::bf16_to_f32(detail::f32_to_bf16(1.0f + (n - 1) * std::ldexp(1.0f, -9)));
    ASSERT_EQ(detail::bf16_to_f32(recv[0]), expect);
  });
}

INSTANTIATE_TEST_SUITE_P(Sizes, LocalCollectives, ::testing::Values(1, 2, 3, 4, 5, 8));

TEST(LocalComm, SumOfAnIntegerDtypeRaisesInsteadOfSummingItsBitsAsF32) {
  try {
    run_local_ranks(2, [](Communicator& comm) {
      Context ctx;
      std::vector<int32_t> send = {1}, recv(1);
      comm.all_reduce(send.data(), recv.data(), 1, DType::i32, ctx);
    });
    ADD_FAILURE() << "an i32 all_reduce returned";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cpattn: invalid dtype: expected f32, f16 or bf16, got i32");
  }
}

TEST(LocalComm, MissingRankTimesOutInsteadOfHanging) {
  auto group = LocalComm::make_group(2, std::chrono::milliseconds(200));
  LocalComm rank0(group, 0);
  int x = 1, y[2];
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(rank0.all_gather_host(&x, y, sizeof(int)), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // the group stays failed: later collectives raise at once
  EXPECT_THROW(rank0.all_gather_host(&x, y, sizeof(int)), Error);
}

TEST(LocalComm, FailingRankReleasesTheOthers) {
  const auto start = std::chrono::steady_clock::now();
  try {
    run_local_ranks(3, [](Communicator& comm) {
      if (comm.rank() == 1) throw Error("test", "nothing", "rank 1 fails on purpose");
      int x = 0, y[3];
      comm.all_gather_host(&x, y, sizeof(int));
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "test") << e.what();  // the root cause, not a follower's timeout
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(LocalComm, BadConstruction) {
  EXPECT_THROW(LocalComm::make_group(0), Error);
  auto g = LocalComm::make_group(2);
  EXPECT_THROW(LocalComm(g, 2), Error);
  EXPECT_THROW(LocalComm(nullptr, 0), Error);
}

}  // namespace
}  // namespace cpattn
