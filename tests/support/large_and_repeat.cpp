#include "large_and_repeat.hpp"

#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>

#include "backend/convert.hpp"
#include "cpattn/cp.hpp"
#include "test_data.hpp"

namespace cpattn::testing {
namespace {

float lse_of(int64_t n, int64_t row) {  // a cheap per-row hash in [-2, 2)
  const uint64_t z = (static_cast<uint64_t>(row) * 2654435761u + static_cast<uint64_t>(n) * 40503u) >> 7;
  return static_cast<float>(z % 1000) / 250.0f - 2.0f;
}

uint8_t byte_at(int64_t t, int64_t c) { return static_cast<uint8_t>(t * 31 + c * 7 + (t >> 8)); }

}  // namespace

::testing::AssertionResult correct_past_int32(Device device) {
  constexpr int64_t N = 2, B = 524289, H = 8, D = 512, rank = 1;
  static_assert(B * H * D > (int64_t{1} << 31));
  TestTensor out(DType::bf16, {B, H, D}, device), lses(DType::f32, {N, B, H}, device);
  auto* x = static_cast<uint16_t*>(out.host_view().data);
  auto* l = static_cast<float*>(lses.host_view().data);
  for (int64_t row = 0; row < B * H; ++row) {
    for (int64_t d = 0; d < D; ++d) x[row * D + d] = detail::f32_to_bf16(static_cast<float>((row * 7 + d) % 16 - 8));
    for (int64_t n = 0; n < N; ++n) l[n * B * H + row] = lse_of(n, row);
  }
  out.upload();
  lses.upload();
  correct_attn_out(out.view(), lses.view(), rank, out.view());
  out.download();
  int64_t wrong = 0;
  std::ostringstream first;
  for (int64_t row = 0; row < B * H; ++row) {
    const double l0 = lse_of(0, row), l1 = lse_of(1, row), m = std::max(l0, l1);
    const double w = std::exp(l1 - (m + std::log(std::exp(l0 - m) + std::exp(l1 - m))));
    for (int64_t d = 0; d < D; ++d) {
      const double want = w * static_cast<double>((row * 7 + d) % 16 - 8);
      const double got = detail::bf16_to_f32(x[row * D + d]);
      if (!(std::fabs(got - want) <= std::fabs(want) * 0x1p-8 + 1e-30)) {
        if (wrong++ == 0) first << "element " << row * D + d << ": got " << got << ", want " << want;
      }
    }
  }
  if (wrong) return ::testing::AssertionFailure() << wrong << " wrong elements past 2^31, first " << first.str();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult pack_unpack_past_int32(Device device) {
  constexpr int64_t T = 524289, C = 4096, L0 = 262144, L1 = T - L0;
  static_assert(T * C > (int64_t{1} << 31) && 2 * L1 * C > (int64_t{1} << 31));
  constexpr uint8_t pad = 0xA5;
  TestTensor x(DType::u8, {T, C}, device), lengths(DType::i64, {2}, device), packed(DType::u8, {2, L1, C}, device),
      y(DType::u8, {T, C}, device);
  auto* xs = static_cast<uint8_t*>(x.host_view().data);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) xs[t * C + c] = byte_at(t, c);
  static_cast<int64_t*>(lengths.host_view().data)[0] = L0;
  static_cast<int64_t*>(lengths.host_view().data)[1] = L1;
  x.upload();
  lengths.upload();
  y.poison();
  PackOptions o;
  o.pad_value = pad;
  pack_seq(x.view(), lengths.view(), packed.view(), o);
  unpack_seq(packed.view(), lengths.view(), y.view(), o);
  packed.download();
  y.download();
  const auto* p = static_cast<const uint8_t*>(packed.host_view().data);
  int64_t wrong = 0;
  std::ostringstream first;
  auto expect = [&](bool ok, const char* what, int64_t at) {
    if (!ok && wrong++ == 0) first << what << " byte " << at;
  };
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < L1; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t at = (b * L1 + t) * C + c;
        const bool is_pad = b == 0 && t >= L0;
        expect(p[at] == (is_pad ? pad : byte_at(b * L0 + t, c)), "packed", at);
      }
  const bool round_trip = std::memcmp(y.host_view().data, xs, static_cast<size_t>(T * C)) == 0;
  expect(round_trip, "unpacked (round trip differs)", 0);
  if (wrong) return ::testing::AssertionFailure() << wrong << " wrong bytes past 2^31, first " << first.str();
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ops_bitwise_repeatable(Device device) {
  const int64_t N = 5, B = 64, H = 6, D = 128;
  std::mt19937 rng(21);
  TestTensor outs(DType::bf16, {N, B, H, D}, device), lses(DType::f32, {N, B, H}, device);
  outs.fill_normal(rng);
  lses.fill_normal(rng, 4);
  outs.upload();
  lses.upload();
  std::vector<std::string> failures;
  std::mutex mu;
  auto same = [&](TestTensor& a, TestTensor& b, const std::string& what) {
    a.download();
    b.download();
    const size_t bytes = static_cast<size_t>(a.numel()) * dtype_size(a.view().dtype);
    if (std::memcmp(a.host_view().data, b.host_view().data, bytes) != 0) {
      std::lock_guard<std::mutex> lock(mu);
      failures.push_back(what);
    }
  };
  {
    TestTensor a(DType::bf16, {B, H, D}, device), b(DType::bf16, {B, H, D}, device);
    TestTensor la(DType::f32, {B, H}, device), lb(DType::f32, {B, H}, device);
    const TensorView lav = la.view(), lbv = lb.view();
    merge_attn_states(outs.view(), lses.view(), a.view(), &lav);
    merge_attn_states(outs.view(), lses.view(), b.view(), &lbv);
    same(a, b, "merge_attn_states out");
    same(la, lb, "merge_attn_states lse");
    const TensorView partial(static_cast<char*>(outs.view().data) + 2 * B * H * D * 2, DType::bf16, {B, H, D}, device);
    correct_attn_out(partial, lses.view(), 2, a.view(), &lav);
    correct_attn_out(partial, lses.view(), 2, b.view(), &lbv);
    same(a, b, "correct_attn_out out");
    same(la, lb, "correct_attn_out lse");
  }
  run_local_ranks(3, [&](Communicator& comm) {
    const int64_t Hc = 6, Hn = Hc / 3;
    std::mt19937 r(100 + static_cast<unsigned>(comm.rank()));
    TestTensor out(DType::bf16, {B, Hc, D}, device), lse(DType::f32, {B, Hc}, device);
    out.fill_normal(r);
    lse.fill_normal(r, 4);
    out.upload();
    lse.upload();
    TestTensor a(DType::bf16, {B, Hn, D}, device), b(DType::bf16, {B, Hn, D}, device);
    cp_lse_ag_out_rs(out.view(), lse.view(), comm, a.view());
    cp_lse_ag_out_rs(out.view(), lse.view(), comm, b.view());
    same(a, b, "cp_lse_ag_out_rs on rank " + std::to_string(comm.rank()));
    cp_lse_a2a_merge(out.view(), lse.view(), comm, a.view());
    cp_lse_a2a_merge(out.view(), lse.view(), comm, b.view());
    same(a, b, "cp_lse_a2a_merge on rank " + std::to_string(comm.rank()));
    TestTensor c(DType::bf16, {B, Hc, D}, device), e(DType::bf16, {B, Hc, D}, device);
    cp_lse_ag_out_ar(out.view(), lse.view(), comm, c.view());
    cp_lse_ag_out_ar(out.view(), lse.view(), comm, e.view());
    same(c, e, "cp_lse_ag_out_ar on rank " + std::to_string(comm.rank()));
  });
  if (!failures.empty()) {
    auto f = ::testing::AssertionFailure() << "not bitwise repeatable:";
    for (const auto& s : failures) f << " " << s << ";";
    return f;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace cpattn::testing
