// Run under mpirun with 1..4 processes: each rank holds real partial attention over its KV
// shard (some shards empty), the three cp_* functions combine them over MpiComm, and every
// rank's result is compared with unsplit f64 attention. Bad arguments raise on all ranks.
#include <mpi.h>

#include "cp_check.hpp"
#include "cpattn/mpi_comm.hpp"

namespace cpattn::testing {
namespace {

TEST(Mpi, CpFunctionsMatchUnsplitAttention) {
  MpiComm comm;
  const int ranks = comm.size();
  for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a})
    for (DType dt : {DType::f32, DType::bf16, DType::f16})
      for (bool kv : {false, true}) {
        CpCase c;
        c.op = op, c.dtype = dt, c.use_kv_lens = kv, c.H = op == CpOp::ar ? 3 : 2 * ranks, c.D = 40;
        c.base = kv ? LseBase::two : LseBase::e;
        const auto p = reference::make_cp_attention(c.B, c.S, c.H, c.D, ranks, 11);
        EXPECT_EQ(run_cp_case(c, comm, Device::cpu(), p), "");
      }
}

TEST(Mpi, MismatchedShapesRaiseOnEveryRank) {
  MpiComm comm;
  const int64_t B = comm.rank() == comm.size() - 1 && comm.size() > 1 ? 3 : 2, H = 2 * comm.size(), D = 8;
  std::vector<float> out(B * H * D), lse(B * H), result(B * 2 * D);
  try {
    cp_lse_ag_out_rs(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), DType::f32, {B, H}), comm,
                     TensorView(result.data(), DType::f32, {B, 2, D}));
    EXPECT_EQ(comm.size(), 1) << "no error with mismatched shapes";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "arguments across ranks");
  }
}

TEST(Mpi, BadRankInputRaisesEverywhere) {
  MpiComm comm;
  const int64_t B = 2, H = comm.size(), D = 8;
  std::vector<float> out(B * H * D), lse(B * H), result(B * D);
  const DType lse_dtype = comm.rank() == 0 ? DType::i64 : DType::f32;
  try {
    cp_lse_a2a_merge(TensorView(out.data(), DType::f32, {B, H, D}), TensorView(lse.data(), lse_dtype, {B, H}), comm,
                     TensorView(result.data(), DType::f32, {B, 1, D}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), comm.rank() == 0 ? "lse" : "arguments on rank 0");
  }
}

}  // namespace
}  // namespace cpattn::testing
