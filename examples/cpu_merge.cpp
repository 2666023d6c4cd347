// cpu_merge.cpp: cpattn's single-device ops on host buffers, no GPU and no Python:
// merge_attn_states, correct_attn_out, pack_seq and unpack_seq, each checked against a
// float64 computation written out here. Prints what it did; exits 1 on a mismatch.
//
// Build and run (examples/CMakeLists.txt, against an installed cpattn):
//   cmake --install build --prefix /tmp/cpattn
//   cmake -S examples -B build-app -DCMAKE_PREFIX_PATH=/tmp/cpattn && cmake --build build-app
//   build-app/cpu_merge
#include <cpattn/cpattn.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("MISMATCH: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  using namespace cpattn;
  const float inf = std::numeric_limits<float>::infinity();

  // ---- merge_attn_states: N partials [N, B, H, D] and their LSEs -> out [B, H, D], lse [B, H]
  const int64_t N = 3, B = 2, H = 4, D = 96;  // any N >= 1, any head dim
  std::vector<float> outs(N * B * H * D), lses_bhn(B * H * N), out(B * H * D), lse(B * H);
  for (size_t i = 0; i < outs.size(); ++i) outs[i] = static_cast<float>(i % 7) - 3.0f;
  for (size_t i = 0; i < lses_bhn.size(); ++i) lses_bhn[i] = 0.25f * static_cast<float>(i % 5);
  for (int64_t i = 0; i < H * N; ++i) lses_bhn[i] = -inf;  // row b = 0: no keys on any rank
  // row 1, head 0 of partial 2: an empty shard whose output holds NaN; weight 0 ignores it
  lses_bhn[(1 * H + 0) * N + 2] = -inf;
  for (int64_t d = 0; d < D; ++d) outs[((2 * B + 1) * H + 0) * D + d] = std::nanf("");

  // The LSEs are stored [B, H, N] (as some attention kernels write them) and read through a
  // strided [N, B, H] view: strides count elements, as in torch and DLPack.
  const int64_t lse_shape[] = {N, B, H}, lse_strides[] = {1, H * N, N};
  const TensorView outs_v(outs.data(), DType::f32, {N, B, H, D});
  const TensorView lses_v(lses_bhn.data(), DType::f32, lse_shape, lse_strides);
  const TensorView out_v(out.data(), DType::f32, {B, H, D});
  const TensorView lse_v(lse.data(), DType::f32, {B, H});

  merge_attn_states(outs_v, lses_v, out_v, &lse_v);  // no Context: CPU, a per-thread default one
  std::printf("merge_attn_states N=%lld B=%lld H=%lld D=%lld\n", static_cast<long long>(N),
              static_cast<long long>(B), static_cast<long long>(H), static_cast<long long>(D));
  std::printf("  row 0 (all partials empty): lse %g, out %g\n", lse[0], out[0]);
  std::printf("  row 1: lse %.4f, out[0] %.4f\n", lse[H], out[H * D]);

  // the float64 reference: m = max lse_r; lse = m + log(sum exp(lse_r - m)); out = sum w_r outs_r
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      double m = -inf, s = 0;
      for (int64_t r = 0; r < N; ++r) m = std::fmax(m, lses_bhn[(b * H + h) * N + r]);
      for (int64_t r = 0; r < N && m > -inf; ++r) s += std::exp(lses_bhn[(b * H + h) * N + r] - m);
      const double ref_lse = m > -inf ? m + std::log(s) : -inf;
      expect(ref_lse == -inf ? lse[b * H + h] == -inf : std::fabs(lse[b * H + h] - ref_lse) < 1e-5, "merged lse");
      for (int64_t d = 0; d < D; ++d) {
        double ref = 0;
        for (int64_t r = 0; r < N; ++r) {
          const double w = ref_lse == -inf ? 0 : std::exp(lses_bhn[(b * H + h) * N + r] - ref_lse);
          if (w != 0) ref += w * outs[((r * B + b) * H + h) * D + d];
        }
        worst = std::fmax(worst, std::fabs(out[(b * H + h) * D + d] - ref));
      }
    }
  expect(worst < 1e-5, "merged out");  // also false for NaN
  std::printf("  max |out - f64 reference| = %.2e\n", worst);

  // ---- correct_attn_out: scale rank 1's partial by its weight exp(lse_1 - lse), in place
  std::vector<float> mine(outs.begin() + B * H * D, outs.begin() + 2 * B * H * D);
  const TensorView mine_v(mine.data(), DType::f32, {B, H, D});
  std::vector<float> lse2(B * H);
  const TensorView lse2_v(lse2.data(), DType::f32, {B, H});
  correct_attn_out(mine_v, lses_v, /*rank=*/1, /*new_out=*/mine_v, &lse2_v);
  worst = 0;
  for (int64_t i = 0; i < B * H * D; ++i) {
    const int64_t bh = i / D;
    const double w = lse[bh] == -inf ? 0 : std::exp(static_cast<double>(lses_bhn[bh * N + 1]) - lse[bh]);
    worst = std::fmax(worst, std::fabs(mine[i] - (w != 0 ? w * outs[B * H * D + i] : 0.0)));
  }
  expect(worst < 1e-5, "corrected out");
  std::printf("correct_attn_out rank 1, in place: max |out - f64 reference| = %.2e\n", worst);

  // ---- pack_seq / unpack_seq: a padded token batch, T = 10 rows of which 8 are tokens
  const int64_t T = 10, F = 8, L = 4;
  std::vector<int64_t> lengths = {3, 1, 4};  // sum 8 <= T: rows 8 and 9 of x are not read
  const int64_t batch = static_cast<int64_t>(lengths.size());
  std::vector<float> x(T * F), packed(batch * L * F), back(T * F, 42.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const TensorView x_v(x.data(), DType::f32, {T, F}), lengths_v(lengths.data(), DType::i64, {batch});
  const TensorView packed_v(packed.data(), DType::f32, {batch, L, F}), back_v(back.data(), DType::f32, {T, F});
  PackOptions pack_options;
  pack_options.pad_value = 0.0;  // rows past a sequence's end (default -inf)
  pack_seq(x_v, lengths_v, packed_v, pack_options);  // L = packed.shape[1]; longer sequences are truncated
  unpack_seq(packed_v, lengths_v, back_v);           // rows past sum(lengths) are left untouched
  bool pack_ok = true, unpack_ok = true;
  for (int64_t b = 0, start = 0; b < batch; start += lengths[b], ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t f = 0; f < F; ++f)
        pack_ok &= packed[(b * L + t) * F + f] == (t < lengths[b] ? x[(start + t) * F + f] : 0.0f);
  for (int64_t i = 0; i < T * F; ++i) unpack_ok &= back[i] == (i < 8 * F ? x[i] : 42.0f);
  expect(pack_ok, "pack_seq");
  expect(unpack_ok, "unpack_seq");
  std::printf("pack_seq [%lld, %lld] -> [%lld, %lld, %lld], unpack_seq back: %s\n", static_cast<long long>(T),
              static_cast<long long>(F), static_cast<long long>(batch), static_cast<long long>(L),
              static_cast<long long>(F), pack_ok && unpack_ok ? "exact" : "WRONG");

  // ---- bad input throws cpattn::Error naming the argument, what was expected and what came
  try {
    merge_attn_states(outs_v, TensorView(lses_bhn.data(), DType::f32, {N, B, H + 1}), out_v);
    expect(false, "an error for a wrong lses shape");
  } catch (const Error& e) {
    std::printf("bad input: %s\n", e.what());
    expect(e.argument() == "lses", "the error names lses");
  }

  std::printf(failures ? "cpu_merge: FAILED\n" : "cpu_merge: every result matches the float64 reference\n");
  return failures ? 1 : 0;
}
