// cpattn verify: every op x dtype x odd shapes (and NaN/inf LSEs, empty shards holding NaN)
// against the f64 reference on the chosen device. One table, exit 1 on any wrong value.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <vector>

#include "cli.hpp"
#include "device.hpp"

namespace cpattn::cli {
namespace {

struct Tally {
  int64_t cases = 0, checked = 0, wrong = 0;
  double max_err = 0;
};


void plant_adversarial(std::vector<float>& lses, std::vector<char>& data, DType dt, int64_t N, int64_t rows, int64_t D,
                       bool merge, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  const size_t es = dtype_size(dt);
  const float nanf = NAN;
  for (int64_t r = 0; r < N; ++r)
    for (int64_t row = 0; row < rows; ++row) {
      const double x = u(rng);
      float& l = lses[r * rows + row];
      if (x < 0.08) l = NAN;
      else if (x < 0.12) l = INFINITY;
      else if (x < 0.2 || row == 0) {  // an empty shard (row 0: all of them) holding NaN data
        l = -INFINITY;
        if (merge || r == N - 1)
          for (int64_t d = 0; d < D; ++d) {
            const int64_t i = ((merge ? r * rows : 0) + row) * D + d;
            if (dt == DType::f32) std::memcpy(data.data() + i * 4, &nanf, 4);
            else std::memset(data.data() + i * static_cast<int64_t>(es), 0xFF, es);
          }
      }
    }
}

void verify_merge(bool merge, DType dt, Device dev, Tally& t, uint32_t seed, bool quick) {
  const std::vector<int64_t> Ns = quick ? std::vector<int64_t>{1, 3, 8} : std::vector<int64_t>{1, 2, 3, 5, 8, 16};
  const std::vector<int64_t> Ds = quick ? std::vector<int64_t>{3, 128, 576} : std::vector<int64_t>{1, 3, 64, 96, 128, 576, 1000};
  std::mt19937 rng(seed);
  for (int64_t N : Ns)
    for (int64_t D : Ds) {
      const int64_t B = 3, H = 5, rows = B * H;
      const size_t es = dtype_size(dt);
      const int64_t data_elems = (merge ? N : 1) * rows * D;
      std::vector<char> data_h(static_cast<size_t>(data_elems) * es);
      std::vector<float> lses_h(static_cast<size_t>(N * rows));
      fill_values(data_h.data(), dt, data_elems, rng());
      fill_values(lses_h.data(), DType::f32, N * rows, rng());
      for (float& l : lses_h) l *= 3;
      plant_adversarial(lses_h, data_h, dt, N, rows, D, merge, rng);
      Buffer data(data_h.size(), dev), lses(lses_h.size() * 4, dev), out(static_cast<size_t>(rows * D) * es, dev),
          lse(static_cast<size_t>(rows) * 4, dev);
      data.upload(data_h.data(), data_h.size());
      lses.upload(lses_h.data(), lses_h.size() * 4);
      const TensorView lse_v(lse.data(), DType::f32, {B, H}, dev), lses_v(lses.data(), DType::f32, {N, B, H}, dev);
      const TensorView out_v(out.data(), dt, {B, H, D}, dev);
      Context ctx(dev);
      const TensorView lses_h_v(lses_h.data(), DType::f32, {N, B, H});
      reference::MergeResult ref;
      if (merge) {
        merge_attn_states(TensorView(data.data(), dt, {N, B, H, D}, dev), lses_v, out_v, &lse_v, {}, &ctx);
        ref = reference::merge_attn_states(TensorView(data_h.data(), dt, {N, B, H, D}), lses_h_v);
      } else {
        correct_attn_out(TensorView(data.data(), dt, {B, H, D}, dev), lses_v, N - 1, out_v, &lse_v, {}, &ctx);
        ref = reference::correct_attn_out(TensorView(data_h.data(), dt, {B, H, D}), lses_h_v, N - 1);
      }
      synchronize(dev);
      std::vector<char> got(out.bytes());
      std::vector<float> got_lse(static_cast<size_t>(rows));
      out.download(got.data(), got.size());
      lse.download(got_lse.data(), got_lse.size() * 4);
      ++t.cases;
      for (int64_t i = 0; i < rows * D; ++i) {
        const double g = reference::load_element(got.data(), dt, i), r = ref.out[i];
        const double e = std::isnan(g) ? INFINITY : std::fabs(g - r);
        t.max_err = std::max(t.max_err, e / std::max(1.0, std::fabs(r)));
        ++t.checked;
        if (!(e <= tolerance(dt) * std::fabs(r) + 2e-5 * 2)) ++t.wrong;
      }
      for (int64_t i = 0; i < rows; ++i) {
        const double g = got_lse[i], r = ref.lse[i];
        ++t.checked;
        if (!(std::isinf(r) ? g == r : std::fabs(g - r) <= 1e-5 * std::max(1.0, std::fabs(r)))) ++t.wrong;
      }
    }
}

// merge_attn_states_varlen: rows with 0, 1 and many partials, NaN/inf lses, empty partials
// holding NaN data, a row whose every partial is empty, partials no row names (poisoned);
// out in the data dtype or (fp8) fp8_e4m3 with a scale of 1/64, one e4m3 rounding allowed.
void verify_varlen(bool fp8, DType dt, Device dev, Tally& t, uint32_t seed, bool quick) {
  const std::vector<std::vector<int64_t>> count_sets = {{2, 0, 3}, {1}, {0, 0}, {5, 1, 17, 0, 2}, {40, 3}};
  const std::vector<int64_t> Ds = quick ? std::vector<int64_t>{3, 128} : std::vector<int64_t>{1, 3, 64, 96, 128, 576};
  std::mt19937 rng(seed);
  const float scale = 1.0f / 64;
  for (const auto& counts : count_sets)
    for (int64_t D : Ds) {
      const auto B = static_cast<int64_t>(counts.size());
      const int64_t H = 5;
      std::vector<int64_t> offsets{0};
      for (int64_t n : counts) offsets.push_back(offsets.back() + n);
      const int64_t P = offsets.back() + 2;  // two partials no row names
      const size_t es = dtype_size(dt);
      const DType out_dt = fp8 ? DType::fp8_e4m3 : dt;
      std::vector<char> data_h(static_cast<size_t>(P * H * D) * es);
      std::vector<float> lses_h(static_cast<size_t>(P * H));
      fill_values(data_h.data(), dt, P * H * D, rng());
      fill_values(lses_h.data(), DType::f32, P * H, rng());
      for (float& l : lses_h) l *= 3;
      // P partials as N = P, B = 1, rows = H: the same planting as the merges, then the unnamed
      // partials poisoned with a large lse (a read of them would dominate every row)
      plant_adversarial(lses_h, data_h, dt, P, H, D, true, rng);
      for (int64_t p = offsets.back(); p < P; ++p)
        for (int64_t h = 0; h < H; ++h) lses_h[static_cast<size_t>(p * H + h)] = 50.0f;
      Buffer data(data_h.size(), dev), lses(lses_h.size() * 4, dev), offs(offsets.size() * 8, dev),
          out(static_cast<size_t>(B * H * D) * dtype_size(out_dt), dev), lse(static_cast<size_t>(B * H) * 4, dev),
          scale_buffer(4, dev);
      data.upload(data_h.data(), data_h.size());
      lses.upload(lses_h.data(), lses_h.size() * 4);
      offs.upload(offsets.data(), offsets.size() * 8);
      scale_buffer.upload(&scale, 4);
      const TensorView scale_v(scale_buffer.data(), DType::f32, {1}, dev), lse_v(lse.data(), DType::f32, {B, H}, dev);
      MergeOptions options;
      if (fp8) options.out_scale = &scale_v;
      Context ctx(dev);
      merge_attn_states_varlen(TensorView(data.data(), dt, {P, H, D}, dev), TensorView(lses.data(), DType::f32, {P, H}, dev),
                               TensorView(offs.data(), DType::i64, {B + 1}, dev), TensorView(out.data(), out_dt, {B, H, D}, dev),
                               &lse_v, options, &ctx);
      synchronize(dev);
      std::vector<char> got(static_cast<size_t>(B * H * D) * dtype_size(out_dt));
      std::vector<float> got_lse(static_cast<size_t>(B * H));
      out.download(got.data(), got.size());
      lse.download(got_lse.data(), got_lse.size() * 4);
      ++t.cases;
      for (int64_t b = 0; b < B; ++b) {  // the f64 reference: row b's partials as [n, 1, H, D]
        const int64_t n = counts[static_cast<size_t>(b)], first = offsets[static_cast<size_t>(b)];
        const int64_t data_shape[] = {n, 1, H, D}, data_strides[] = {H * D, 0, D, 1};
        const int64_t lse_shape[] = {n, 1, H}, lse_strides[] = {H, 0, 1};
        const auto ref = reference::merge_attn_states(
            TensorView(data_h.data() + first * H * D * static_cast<int64_t>(es), dt, data_shape, data_strides),
            TensorView(lses_h.data() + first * H, DType::f32, lse_shape, lse_strides));
        for (int64_t i = 0; i < H * D; ++i) {
          const double g = reference::load_element(got.data(), out_dt, b * H * D + i);
          const double r = fp8 ? std::clamp(ref.out[i] / scale, -448.0, 448.0) : ref.out[i];
          const double e = std::isnan(g) ? INFINITY : std::fabs(g - r);
          t.max_err = std::max(t.max_err, e / std::max(1.0, std::fabs(r)));
          ++t.checked;
          const double tol = fp8 ? std::fabs(r) / 16 + 1.0 / 1024 : tolerance(dt) * std::fabs(r) + 2e-5 * 2;
          if (!(e <= tol)) ++t.wrong;
        }
        for (int64_t h = 0; h < H; ++h) {
          const double g = got_lse[static_cast<size_t>(b * H + h)], r = ref.lse[h];
          ++t.checked;
          if (!(std::isinf(r) ? g == r : std::fabs(g - r) <= 1e-5 * std::max(1.0, std::fabs(r)))) ++t.wrong;
        }
      }
    }
}

// extra: rows of the token tensor past sum(lengths) (a padded token batch): pack must not
// read them, unpack must leave them as they were.
void verify_pack(bool pack, DType dt, Device dev, Tally& t, uint32_t seed) {
  const std::vector<std::vector<int32_t>> length_sets = {{3, 0, 5, 1}, {0}, {7, 7}, {}, {1, 2, 0, 0, 4, 1, 3}};
  for (const auto& lengths : length_sets)
    for (int64_t F : {1, 3, 64})
      for (int64_t extra : {0, 2}) {
        const auto B = static_cast<int64_t>(lengths.size());
        int64_t sum = 0, L = 0;
        std::vector<int64_t> start{0};
        for (int32_t l : lengths) sum += l, L = std::max<int64_t>(L, l), start.push_back(sum);
        const int64_t T = sum + extra;
        const size_t es = dtype_size(dt);
        std::vector<char> tok_h(static_cast<size_t>(T * F) * es), pad_h(static_cast<size_t>(B * L * F) * es);
        fill_values(tok_h.data(), dt, T * F, seed);
        fill_values(pad_h.data(), dt, B * L * F, seed + 1);
        Buffer tok(tok_h.size(), dev), padded(pad_h.size(), dev), len(lengths.size() * 4 + 4, dev);
        tok.upload(tok_h.data(), tok_h.size());
        padded.upload(pad_h.data(), pad_h.size());
        len.upload(lengths.data(), lengths.size() * 4);
        Context ctx(dev);
        const TensorView tok_v(tok.data(), dt, {T, F}, dev), pad_v(padded.data(), dt, {B, L, F}, dev),
            len_v(len.data(), DType::i32, {B}, dev);
        PackOptions o;
        o.pad_value = 0.0;
        if (pack) pack_seq(tok_v, len_v, pad_v, o, &ctx);
        else unpack_seq(pad_v, len_v, tok_v, o, &ctx);
        synchronize(dev);
        std::vector<char> got(pack ? pad_h.size() : tok_h.size());
        (pack ? padded : tok).download(got.data(), got.size());
        ++t.cases;
        const size_t row = static_cast<size_t>(F) * es;
        std::vector<char> zero_row(row, 0);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t s = 0; s < L; ++s) {
            const bool valid = s < lengths[b];
            if (!pack && !valid) continue;
            const char* want = pack ? (valid ? tok_h.data() + (start[b] + s) * static_cast<int64_t>(row) : zero_row.data())
                                    : pad_h.data() + (b * L + s) * static_cast<int64_t>(row);
            const char* have = pack ? got.data() + (b * L + s) * static_cast<int64_t>(row)
                                    : got.data() + (start[b] + s) * static_cast<int64_t>(row);
            ++t.checked;
            if (std::memcmp(want, have, row) != 0) ++t.wrong;
          }
        if (!pack)  // the rows past the sum: untouched
          for (int64_t r = sum; r < T; ++r) {
            const auto at = static_cast<size_t>(r) * row;
            ++t.checked;
            if (std::memcmp(tok_h.data() + at, got.data() + at, row) != 0) ++t.wrong;
          }
      }
}

void verify_cp(CpOp op, DType dt, Device dev, Tally& t, uint32_t seed, bool quick) {
  for (int ranks : quick ? std::vector<int>{1, 3} : std::vector<int>{1, 2, 3, 4, 5}) {
    for (LseBase base : {LseBase::e, LseBase::two}) {
      const auto p = reference::make_cp_attention(5, 19, 2 * ranks, 24, ranks, seed + static_cast<uint32_t>(ranks));
      std::mutex mu;
      run_local_ranks(ranks, [&](Communicator& comm) {
        const StageResult s = run_cp_stage(op, comm, dev, dt, base, p);
        std::lock_guard<std::mutex> lock(mu);
        t.max_err = std::max(t.max_err, s.err);
        t.wrong += s.wrong;
        t.checked += p.B * (op == CpOp::ar ? p.H : p.H / ranks) * (p.D + 1);
      });
      ++t.cases;
    }
  }
}

}  // namespace

int run_verify(const VerifyOptions& o) {
  const Device dev = parse_device(o.device);
  check_device(dev);
  std::printf("# cpattn verify: device %s%s; every op x dtype x odd shapes vs the f64 reference, with NaN/+inf/-inf "
              "LSEs and empty shards holding NaN\n",
              device_description(dev).c_str(), o.quick ? " (quick)" : "");
  std::fflush(stdout);
  Table table({{"op", 18}, {"dtype", 9}, {"cases", 6}, {"checked", 9}, {"max_err", 9}, {"#wrong", 7}, {"status", 6}});
  int64_t wrong = 0;
  auto row = [&](const std::string& op, DType dt, const Tally& t) {
    wrong += t.wrong;
    table.add({op, dtype_name(dt), std::to_string(t.cases), std::to_string(t.checked), fmt_sci(t.max_err),
               std::to_string(t.wrong), t.wrong ? "FAIL" : "PASS"});
  };
  const DType floats[] = {DType::f32, DType::f16, DType::bf16};
  for (bool merge : {true, false})
    for (DType dt : floats) {
      Tally t;
      verify_merge(merge, dt, dev, t, o.seed, o.quick);
      row(merge ? "merge_attn_states" : "correct_attn_out", dt, t);
    }
  for (bool fp8 : {false, true})
    for (DType dt : floats) {
      Tally t;
      verify_varlen(fp8, dt, dev, t, o.seed, o.quick);
      row(fp8 ? "merge_varlen fp8" : "merge_varlen", dt, t);
    }
  for (bool pack : {true, false})
    for (DType dt : {DType::bf16, DType::f32, DType::fp8_e4m3, DType::u8, DType::i64}) {
      Tally t;
      verify_pack(pack, dt, dev, t, o.seed);
      row(pack ? "pack_seq" : "unpack_seq", dt, t);
    }
  for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a})
    for (DType dt : floats) {
      Tally t;
      verify_cp(op, dt, dev, t, o.seed, o.quick);
      row(cp_op_name(op), dt, t);
    }
  std::printf("%s# %s: %lld wrong values\n", table.str().c_str(), wrong ? "FAILED" : "OK", static_cast<long long>(wrong));
  return wrong ? 1 : 0;
}

}  // namespace cpattn::cli
