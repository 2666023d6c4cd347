// cpattn bench: one table per run, nccl-tests style: shape, bytes, time, GB/s, % of the
// device copy bandwidth measured in the same run, max error and #wrong from a check of
// sampled rows against the f64 reference. Exit status 1 if any value was wrong.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <vector>

#include "cli.hpp"
#include "device.hpp"

namespace cpattn::cli {
namespace {

struct Row {
  std::string op, shape, note;
  double bytes = 0, us = NAN, gbs = NAN, pct = NAN, pct_size_copy = NAN, err = 0, host_us = NAN, coll_us = NAN;
  int64_t checked = 0, wrong = 0;
};

struct Shape {
  int64_t B, H, D, N;
};


// f64 weights of the N partials of one row (partial r's lse at lses[r * stride_n + row]),
// and its merged lse (natural log).
double row_weights(const float* lses, int64_t N, int64_t stride_n, int64_t row, std::vector<double>& w) {
  w.assign(static_cast<size_t>(N), 0.0);
  double m = -INFINITY;
  for (int64_t r = 0; r < N; ++r) {
    double l = lses[r * stride_n + row];
    if (std::isnan(l) || l == INFINITY) l = -INFINITY;
    w[r] = l;
    m = std::max(m, l);
  }
  if (m == -INFINITY) {
    std::fill(w.begin(), w.end(), 0.0);
    return -INFINITY;
  }
  double s = 0;
  for (double l : w) s += std::exp(l - m);
  const double lse = m + std::log(s);
  for (double& l : w) l = std::exp(l - lse);
  return lse;
}

std::vector<int64_t> sample_rows(int64_t rows, int64_t want = 2048) {
  std::vector<int64_t> v;
  const int64_t step = std::max<int64_t>(rows / want, 1);
  for (int64_t i = 0; i < rows; i += step) v.push_back(i);
  if (rows > 0 && v.back() != rows - 1) v.push_back(rows - 1);
  return v;
}

// Host time per call is measured where the kernel is shorter than a launch (decode sizes);
// past that, back-to-back launches wait for the queue and the figure means nothing.
constexpr double kHostTimedBytes = 16.0 * 1024 * 1024;

// Why a row cannot run, or "" when it can: a working set past what one row may move (each
// row stays under a minute), or buffers that do not fit in the memory there is now (the
// inputs, their host copies and the results: on the host, or on the GPU for CUDA).
std::string skip_reason(Device dev, double working_set, double host_bytes, double device_bytes) {
  const bool cuda = dev.type == DeviceType::cuda;
  const double cap = cuda ? 16e9 : 8e9;
  if (working_set > cap)
    return "a working set of " + fmt_bytes(working_set) + ", past the " + fmt_bytes(cap) + " a " + (cuda ? "CUDA" : "CPU") +
           " bench row may move (each row stays under a minute)";
  std::string why = memory_shortfall(Device::cpu(), cuda ? host_bytes : host_bytes + device_bytes);
  if (why.empty() && cuda) why = memory_shortfall(dev, device_bytes);
  return why;
}

// The per-tensor scale of the fp8 rows: merged values in [-2, 2) land inside e4m3's range.
constexpr float kFp8Scale = 1.0f / 64;

// Checks one merged element against its f64 reference: in the data dtype, or (fp8) the
// reference over the scale, saturated, within one e4m3 rounding. Returns |error| / max(1, |ref|).
bool merged_ok(double got, double ref, DType out_dt, double& rel_err) {
  double e = 0;
  bool ok = false;
  if (out_dt == DType::fp8_e4m3) {
    const double want = std::clamp(ref / kFp8Scale, -448.0, 448.0);
    e = std::isnan(got) ? INFINITY : std::fabs(got - want);
    ok = e <= std::fabs(want) / 16 + 1.0 / 1024;
    rel_err = e / std::max(1.0, std::fabs(want));
    return ok;
  }
  e = std::isnan(got) ? INFINITY : std::fabs(got - ref);
  rel_err = e / std::max(1.0, std::fabs(ref));
  return e <= tolerance(out_dt) * std::fabs(ref) + 1e-5 * 2.0;
}

// Reads back out [rows, D] (out_dt) and its lse [rows] after a merge-like call and checks the
// sampled rows against f64: weights_of(r, w) gives row r's merged lse and fills its weights,
// reference_of(r, d, w) the merged element d.
void check_merged_rows(Row& row, Device dev, const Buffer& out, const Buffer& lse, int64_t rows, int64_t D, DType out_dt,
                       const std::function<double(int64_t, std::vector<double>&)>& weights_of,
                       const std::function<double(int64_t, int64_t, const std::vector<double>&)>& reference_of) {
  synchronize(dev);
  std::vector<char> out_h(out.bytes());
  std::vector<float> lse_out(static_cast<size_t>(rows));
  out.download(out_h.data(), out_h.size());
  lse.download(lse_out.data(), lse_out.size() * 4);
  std::vector<double> w;
  for (int64_t r : sample_rows(rows)) {
    const double l = weights_of(r, w);
    const double le = std::isinf(l) ? (lse_out[r] == l ? 0 : INFINITY) : std::fabs(lse_out[r] - l);
    ++row.checked;
    if (!(le <= 1e-5 * std::max(1.0, std::fabs(l)))) ++row.wrong;
    for (int64_t d = 0; d < D; ++d) {
      double rel_err = 0;
      ++row.checked;
      if (!merged_ok(reference::load_element(out_h.data(), out_dt, r * D + d), reference_of(r, d, w), out_dt, rel_err)) ++row.wrong;
      row.err = std::max(row.err, rel_err);
    }
  }
}

// CUDA rows of this many bytes and more are also compared with a copy of their own size: a
// copy of 100 MB pays the same start and drain as any kernel of 100 MB, which the copy of
// 1 GiB behind "% copy" spreads over ten times the bytes.
constexpr double kSizeCopyBytes = 8.0 * 1024 * 1024;

// The row's time (median per call), GB/s, % of copy, % of a copy of its own size (large CUDA
// rows), and host time per call at decode sizes.
void time_row(Row& row, Device dev, Context& ctx, const std::function<void()>& call, const BenchOptions& o, double copy_gbs) {
  row.us = time_us(dev, ctx, call, o.iters, o.warmup);
  row.gbs = row.bytes / row.us / 1e3;
  row.pct = 100.0 * row.gbs / copy_gbs;
  if (dev.type == DeviceType::cuda && row.bytes <= kHostTimedBytes) row.host_us = host_us_per_call(dev, call, 1000);
  if (dev.type == DeviceType::cuda && row.bytes >= kSizeCopyBytes && memory_shortfall(dev, row.bytes).empty()) {
    const auto half = static_cast<size_t>(row.bytes / 2) & ~size_t{15};  // read + written = the row's bytes
    row.pct_size_copy = 100.0 * row.gbs / copy_bandwidth(dev, half).reference();
  }
}

Row bench_merge(bool merge, const Shape& s, DType dt, DType out_dt, Device dev, const BenchOptions& o, double copy_gbs) {
  const auto [B, H, D, N] = s;
  Row row;
  row.op = merge ? "merge" : "correct";
  row.shape = "B" + std::to_string(B) + " H" + std::to_string(H) + " D" + std::to_string(D) + " N" + std::to_string(N);
  if (out_dt != dt) row.shape += " " + std::string(dtype_name(out_dt));
  const size_t es = dtype_size(dt), out_es = dtype_size(out_dt);
  const int64_t rows = B * H, data_elems = (merge ? N : 1) * rows * D;
  row.bytes = static_cast<double>(data_elems * static_cast<int64_t>(es) + rows * D * static_cast<int64_t>(out_es) + (N + 1) * rows * 4);
  // the buffers are the working set; their host copies (inputs, and the results read back) as much again
  row.note = skip_reason(dev, row.bytes, row.bytes, row.bytes);
  if (!row.note.empty()) return row;
  std::vector<char> data_h(static_cast<size_t>(data_elems) * es);
  std::vector<float> lses_h(static_cast<size_t>(N * rows));
  fill_values(data_h.data(), dt, data_elems, o.seed);
  fill_values(lses_h.data(), DType::f32, N * rows, o.seed + 1);
  for (float& l : lses_h) l *= 2.0f;
  Buffer data(data_h.size(), dev), lses(lses_h.size() * 4, dev), out(static_cast<size_t>(rows * D) * out_es, dev),
      lse(static_cast<size_t>(rows) * 4, dev), scale(4, dev);
  data.upload(data_h.data(), data_h.size());
  lses.upload(lses_h.data(), lses_h.size() * 4);
  scale.upload(&kFp8Scale, 4);
  Context ctx(dev);
  ctx.set_pdl(o.pdl);
  const TensorView lses_v(lses.data(), DType::f32, {N, B, H}, dev), out_v(out.data(), out_dt, {B, H, D}, dev),
      lse_v(lse.data(), DType::f32, {B, H}, dev), scale_v(scale.data(), DType::f32, {1}, dev);
  MergeOptions options;
  if (out_dt == DType::fp8_e4m3) options.out_scale = &scale_v;
  const TensorView data_v = merge ? TensorView(data.data(), dt, {N, B, H, D}, dev) : TensorView(data.data(), dt, {B, H, D}, dev);
  const int64_t rank = N - 1;
  auto run_out_of_place = [&] {
    if (merge) merge_attn_states(data_v, lses_v, out_v, &lse_v, options, &ctx);
    else correct_attn_out(data_v, lses_v, rank, out_v, &lse_v, {}, &ctx);
  };
  if (o.check) {
    run_out_of_place();
    check_merged_rows(
        row, dev, out, lse, rows, D, out_dt, [&](int64_t r, std::vector<double>& w) { return row_weights(lses_h.data(), N, rows, r, w); },
        [&](int64_t r, int64_t d, const std::vector<double>& w) {
          double ref = 0;
          if (merge) {
            for (int64_t p = 0; p < N; ++p)
              if (w[p] != 0) ref += w[p] * reference::load_element(data_h.data(), dt, (p * rows + r) * D + d);
          } else if (w[rank] != 0) {
            ref = w[rank] * reference::load_element(data_h.data(), dt, r * D + d);
          }
          return ref;
        });
  }
  // timed as vLLM's Triton functions' table: correct in place, merge out of place
  time_row(row, dev, ctx, [&] {
    if (merge) merge_attn_states(data_v, lses_v, out_v, &lse_v, options, &ctx);
    else correct_attn_out(data_v, lses_v, rank, data_v, &lse_v, {}, &ctx);
  }, o, copy_gbs);
  return row;
}

// merge_attn_states_varlen over B rows whose partial counts are uniform in [1, 2N - 1] (mean
// N; N = 1: one each), as split-KV decode produces them: outs [P, H, D], lses [P, H], offsets
// [B + 1].
Row bench_merge_varlen(const Shape& s, DType dt, DType out_dt, Device dev, const BenchOptions& o, double copy_gbs) {
  const auto [B, H, D, N] = s;
  Row row;
  row.op = "merge-varlen";
  std::mt19937 rng(o.seed);
  std::uniform_int_distribution<int64_t> count_dist(1, std::max<int64_t>(2 * N - 1, 1));
  std::vector<int64_t> offsets(static_cast<size_t>(B + 1), 0);
  for (int64_t b = 0; b < B; ++b) offsets[b + 1] = offsets[b] + count_dist(rng);
  const int64_t P = offsets[B];
  row.shape = "B" + std::to_string(B) + " H" + std::to_string(H) + " D" + std::to_string(D) + " N~" + std::to_string(N) +
              " P" + std::to_string(P) + (out_dt != dt ? " " + std::string(dtype_name(out_dt)) : "");
  const size_t es = dtype_size(dt), out_es = dtype_size(out_dt);
  const int64_t rows = B * H;
  row.bytes = static_cast<double>(P * H * D * static_cast<int64_t>(es) + rows * D * static_cast<int64_t>(out_es) +
                                  (P * H + rows) * 4 + (B + 1) * 8);
  row.note = skip_reason(dev, row.bytes, row.bytes, row.bytes);
  if (!row.note.empty()) return row;
  std::vector<char> data_h(static_cast<size_t>(P * H * D) * es);
  std::vector<float> lses_h(static_cast<size_t>(P * H));
  fill_values(data_h.data(), dt, P * H * D, o.seed);
  fill_values(lses_h.data(), DType::f32, P * H, o.seed + 1);
  for (float& l : lses_h) l *= 2.0f;
  Buffer data(data_h.size(), dev), lses(lses_h.size() * 4, dev), offs(offsets.size() * 8, dev),
      out(static_cast<size_t>(rows * D) * out_es, dev), lse(static_cast<size_t>(rows) * 4, dev), scale(4, dev);
  data.upload(data_h.data(), data_h.size());
  lses.upload(lses_h.data(), lses_h.size() * 4);
  offs.upload(offsets.data(), offsets.size() * 8);
  scale.upload(&kFp8Scale, 4);
  Context ctx(dev);
  ctx.set_pdl(o.pdl);
  const TensorView data_v(data.data(), dt, {P, H, D}, dev), lses_v(lses.data(), DType::f32, {P, H}, dev),
      offsets_v(offs.data(), DType::i64, {B + 1}, dev), out_v(out.data(), out_dt, {B, H, D}, dev),
      lse_v(lse.data(), DType::f32, {B, H}, dev), scale_v(scale.data(), DType::f32, {1}, dev);
  MergeOptions options;
  if (out_dt == DType::fp8_e4m3) options.out_scale = &scale_v;
  auto call = [&] { merge_attn_states_varlen(data_v, lses_v, offsets_v, out_v, &lse_v, options, &ctx); };
  if (o.check) {
    call();
    const auto first = [&](int64_t r) { return offsets[r / H]; };
    const auto count = [&](int64_t r) { return offsets[r / H + 1] - offsets[r / H]; };
    check_merged_rows(
        row, dev, out, lse, rows, D, out_dt,
        [&](int64_t r, std::vector<double>& w) { return row_weights(lses_h.data() + first(r) * H, count(r), H, r % H, w); },
        [&](int64_t r, int64_t d, const std::vector<double>& w) {
          double ref = 0;
          for (int64_t p = 0; p < count(r); ++p)
            if (w[p] != 0) ref += w[p] * reference::load_element(data_h.data(), dt, ((first(r) + p) * H + r % H) * D + d);
          return ref;
        });
  }
  time_row(row, dev, ctx, call, o, copy_gbs);
  return row;
}

Row bench_pack(bool pack, int64_t B, int64_t max_len, int64_t F, DType dt, Device dev, const BenchOptions& o, double copy_gbs) {
  Row row;
  row.op = pack ? "pack" : "unpack";
  std::mt19937 rng(o.seed);
  std::uniform_int_distribution<int64_t> len_dist(1, std::max<int64_t>(max_len, 1));
  std::vector<int32_t> lengths(static_cast<size_t>(B));
  int64_t T = 0, L = 0;
  for (auto& l : lengths) {
    l = static_cast<int32_t>(len_dist(rng));
    T += l;
    L = std::max<int64_t>(L, l);
  }
  const size_t es = dtype_size(dt);
  row.shape = "B" + std::to_string(B) + " Lmax" + std::to_string(L) + " F" + std::to_string(F) + " tok" + std::to_string(T);
  row.bytes = static_cast<double>(pack ? (T + B * L) * F * static_cast<int64_t>(es) : 2 * T * F * static_cast<int64_t>(es));
  // tokens and padded buffers; on the host both once more and the one read back
  const double buffers = static_cast<double>(T + B * L) * static_cast<double>(F) * static_cast<double>(es);
  row.note = skip_reason(dev, row.bytes, 2 * buffers, buffers);
  if (!row.note.empty()) return row;
  std::vector<char> tokens_h(static_cast<size_t>(T * F) * es), padded_h(static_cast<size_t>(B * L * F) * es);
  fill_values(tokens_h.data(), dt, T * F, o.seed);
  fill_values(padded_h.data(), dt, B * L * F, o.seed + 7);
  Buffer tokens(tokens_h.size(), dev), padded(padded_h.size(), dev), len(lengths.size() * 4, dev);
  tokens.upload(tokens_h.data(), tokens_h.size());
  padded.upload(padded_h.data(), padded_h.size());
  len.upload(lengths.data(), lengths.size() * 4);
  Context ctx(dev);
  const TensorView tok_v(tokens.data(), dt, {T, F}, dev), pad_v(padded.data(), dt, {B, L, F}, dev),
      len_v(len.data(), DType::i32, {B}, dev);
  PackOptions po;
  po.pad_value = dtype_is_float(dt) ? -INFINITY : 0.0;
  auto call = [&] {
    if (pack) pack_seq(tok_v, len_v, pad_v, po, &ctx);
    else unpack_seq(pad_v, len_v, tok_v, po, &ctx);
  };
  if (o.check) {
    call();
    synchronize(dev);
    std::vector<char> got(pack ? padded_h.size() : tokens_h.size());
    (pack ? padded : tokens).download(got.data(), got.size());
    std::vector<int64_t> start(static_cast<size_t>(B + 1), 0);
    for (int64_t b = 0; b < B; ++b) start[b + 1] = start[b] + lengths[b];
    const size_t row_bytes = static_cast<size_t>(F) * es;
    for (int64_t r : sample_rows(B * L)) {
      const int64_t b = r / L, t = r % L;
      ++row.checked;
      if (t >= lengths[b]) {
        if (pack) {  // a pad row: every element equal to the first element of the first pad row
          const double v = reference::load_element(got.data() + r * static_cast<int64_t>(row_bytes), dt, 0);
          const bool ok = dtype_is_float(dt) ? (std::isinf(v) && v < 0) || std::isnan(v) : v == 0;
          if (!ok) ++row.wrong;
        }
        continue;
      }
      const char* want = pack ? tokens_h.data() + (start[b] + t) * static_cast<int64_t>(row_bytes)
                              : padded_h.data() + r * static_cast<int64_t>(row_bytes);
      const char* have = pack ? got.data() + r * static_cast<int64_t>(row_bytes)
                              : got.data() + (start[b] + t) * static_cast<int64_t>(row_bytes);
      if (std::memcmp(want, have, row_bytes) != 0) ++row.wrong;
    }
  }
  time_row(row, dev, ctx, call, o, copy_gbs);
  return row;
}

// The shapes -B -H -D -N name (every combination; an option not given takes B 64, H 32, D 128
// or N default_n), or nothing when none of them is given (the op's built-in sweep).
std::vector<Shape> given_shapes(const BenchOptions& o, int64_t default_n) {
  std::vector<Shape> v;
  if (o.batch.empty() && o.heads.empty() && o.head_dim.empty() && o.ranks.empty()) return v;
  for (int64_t B : o.batch.empty() ? std::vector<int64_t>{64} : o.batch)
    for (int64_t H : o.heads.empty() ? std::vector<int64_t>{32} : o.heads)
      for (int64_t D : o.head_dim.empty() ? std::vector<int64_t>{128} : o.head_dim)
        for (int64_t N : o.ranks.empty() ? std::vector<int64_t>{default_n} : o.ranks) v.push_back({B, H, D, N});
  return v;
}

std::vector<Shape> merge_shapes(const BenchOptions& o, Device dev) {
  std::vector<Shape> v = given_shapes(o, 4);
  if (!v.empty()) return v;
  if (dev.type == DeviceType::cpu) {
    // small decode shapes, then working sets >= 256 MiB for the bandwidth claim
    return {{1, 32, 128, 2}, {16, 32, 128, 4}, {4096, 32, 128, 8}, {32768, 32, 128, 8}, {16384, 128, 128, 4}, {2048, 128, 512, 8}};
  }
  // the shapes of vLLM's Triton functions' table, then real model shapes
  v = {{1, 32, 128, 2},    {16, 32, 128, 4},    {64, 128, 128, 8},  {256, 16, 512, 8},
       {128, 128, 512, 4}, {4096, 32, 128, 8},  {32768, 32, 128, 8}, {16384, 128, 128, 4}};
  const Shape models[] = {{0, 128, 512, 8}, {0, 16, 128, 2}, {0, 96, 512, 8}, {0, 12, 512, 2}, {0, 128, 576, 4}, {0, 8, 128, 4}};
  for (const Shape& m : models)
    for (int64_t B : {1, 8, 64, 256, 2048, 32768}) v.push_back({B, m.H, m.D, m.N});
  for (int64_t D : {64, 96, 256, 576})
    for (int64_t N : {3, 16}) v.push_back({8192, 32, D, N});
  return v;
}

// merge-varlen: split-KV decode batches (N: the mean partials per row), GQA and MLA heads.
std::vector<Shape> varlen_shapes(const BenchOptions& o) {
  std::vector<Shape> v = given_shapes(o, 8);
  if (!v.empty()) return v;
  for (int64_t N : {2, 16, 64}) v.push_back({1, 32, 128, N});
  for (int64_t N : {4, 16, 64, 256}) v.push_back({64, 32, 128, N});
  for (int64_t N : {4, 16}) v.push_back({256, 128, 512, N});
  v.push_back({2048, 16, 128, 8});
  v.push_back({4096, 32, 128, 2});
  v.push_back({8192, 32, 128, 8});
  return v;
}

struct PackShape {
  int64_t B, max_len;
  int64_t F;
  DType dtype;
};

std::vector<PackShape> pack_shapes(const BenchOptions& o, DType dt, Device dev) {
  std::vector<PackShape> v;
  if (!o.batch.empty() || !o.max_len.empty() || !o.features.empty()) {
    for (int64_t B : o.batch.empty() ? std::vector<int64_t>{1024} : o.batch)
      for (int64_t L : o.max_len.empty() ? std::vector<int64_t>{4} : o.max_len)
        for (int64_t F : o.features.empty() ? std::vector<int64_t>{1024} : o.features) v.push_back({B, L, F, dt});
    return v;
  }
  // the shapes of vLLM's Triton functions' table (bf16), fp8 [T, 64, 128] decode batches, long bf16 sequences
  v = {{64, 4, 8192, DType::bf16},   {256, 8, 8192, DType::bf16},   {1024, 4, 8192, DType::bf16},
       {4096, 2, 2048, DType::bf16}, {16, 4096, 1024, DType::bf16}, {1024, 64, 576, DType::bf16}};
  for (int64_t B : {32, 256, 1024, 4096}) v.push_back({B, 4, 64 * 128, DType::fp8_e4m3});
  v.push_back({8, 32768, 1024, DType::bf16});
  if (dev.type == DeviceType::cpu) v.push_back({64, 8192, 2048, DType::bf16});  // >= 256 MiB
  return v;
}

void write_json(const std::string& path, const std::string& header, double copy_gbs, const std::vector<Row>& rows) {
  std::ofstream f(path);
  if (!f) throw Error("--json", "a writable file path", "'" + path + "'");
  f << "{\n \"config\": \"" << header << "\",\n \"copy_gbs\": " << copy_gbs << ",\n \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    auto num = [](double v) { return std::isfinite(v) ? std::to_string(v) : std::string("null"); };
    f << "  {\"op\": \"" << r.op << "\", \"shape\": \"" << r.shape << "\", \"bytes\": " << num(r.bytes)
      << ", \"time_us\": " << num(r.us) << ", \"gbs\": " << num(r.gbs) << ", \"pct_copy\": " << num(r.pct)
      << ", \"pct_size_copy\": " << num(r.pct_size_copy)
      << ", \"host_us\": " << num(r.host_us) << ", \"coll_us\": " << num(r.coll_us) << ", \"max_err\": " << num(r.err)
      << ", \"checked\": " << r.checked << ", \"wrong\": " << r.wrong << ", \"note\": \"" << r.note << "\"}"
      << (i + 1 < rows.size() ? ",\n" : "\n");
  }
  f << " ]\n}\n";
}

}  // namespace

int run_cp_bench(const BenchOptions& o, Device dev, DType dt);  // bench_cp.cpp

int finish_bench(int64_t rows, int64_t skipped, int64_t wrong, const std::string& first_skip, const std::string& suffix) {
  if (rows > 0 && skipped == rows) {
    std::printf("# NOTHING RAN: every row was SKIPPED\n");
    std::fflush(stdout);
    throw Error("sizes", "at least one bench row that can run", "none: all " + std::to_string(rows) + " SKIPPED (the first: " + first_skip + ")");
  }
  std::printf("# %s: %lld wrong values%s%s\n", wrong ? "FAILED" : "OK", static_cast<long long>(wrong),
              skipped ? (", " + std::to_string(skipped) + " of " + std::to_string(rows) + " rows SKIPPED").c_str() : "",
              suffix.c_str());
  std::fflush(stdout);
  return wrong ? 1 : 0;
}

int run_bench(const BenchOptions& o) {
  const Device dev = parse_device(o.device);
  const DType dt = parse_dtype_option(o.dtype);
  if (o.pdl && dev.type != DeviceType::cuda) throw Error("--pdl", "--device cuda (a launch mode of CUDA kernels)", o.device);
  if (o.pdl && (o.op == "pack" || o.op == "unpack"))
    throw Error("--pdl", "--op correct, merge, merge-varlen or cp-* (pack and unpack launch ordinarily)", o.op);
  if (o.op.rfind("cp-", 0) == 0) {
    check_device(dev);
    return run_cp_bench(o, dev, dt);
  }
  const bool merge_like = o.op == "correct" || o.op == "merge" || o.op == "merge-varlen";
  const bool pack_like = o.op == "pack" || o.op == "unpack";
  if (!merge_like && !pack_like)
    throw Error("--op", "correct, merge, merge-varlen, pack, unpack, cp-rs, cp-ar or cp-a2a", "'" + o.op + "'");
  if (merge_like && dt != DType::f32 && dt != DType::f16 && dt != DType::bf16)
    throw Error("--dtype", "f32, f16 or bf16 for " + o.op, o.dtype);
  DType out_dt = dt;
  if (!o.out_dtype.empty()) {
    if (o.op != "merge" && o.op != "merge-varlen") throw Error("--out-dtype", "--op merge or merge-varlen (the ops with an fp8 output)", o.op);
    out_dt = parse_dtype_option(o.out_dtype);
    if (out_dt != dt && out_dt != DType::fp8_e4m3)
      throw Error("--out-dtype", std::string("fp8_e4m3 or the data dtype (") + dtype_name(dt) + ")", o.out_dtype);
  }
  check_device(dev);
  const size_t copy_bytes = dev.type == DeviceType::cuda ? (size_t{1} << 30) : (size_t{256} << 20);
  const CopyBandwidth copy = copy_bandwidth(dev, copy_bytes);
  const double copy_gbs = copy.reference();
  std::ostringstream header;
  header << "cpattn bench --op " << o.op << " device " << device_description(dev) << " dtype " << dtype_name(dt)
         << (out_dt != dt ? std::string(" out ") + dtype_name(out_dt) + " scale 1/64" : "") << " iters " << o.iters
         << " warmup " << o.warmup << " check " << (o.check ? 1 : 0) << (o.pdl ? " pdl 1" : "") << " | copy "
         << (copy_bytes >> 20) << " MiB (read+write): "
         << (dev.type == DeviceType::cuda
                 ? "cudaMemcpyAsync " + fmt(copy.memcpy_gbs, 0) + " GB/s, copy kernel " + fmt(copy.kernel_gbs, 0) + " GB/s"
                 : "memcpy " + fmt(copy.memcpy_gbs, 0) + " GB/s")
         << "; %copy against " << fmt(copy_gbs, 0) << " GB/s"
         << (dev.type == DeviceType::cuda ? "; %size-copy against the faster copy of the row's own bytes (rows of 8 MiB and more)" : "")
         << (dev.type == DeviceType::cuda ? " | time: median CUDA-graph replay" : " | time: median wall");
  std::printf("# %s\n", header.str().c_str());
  std::fflush(stdout);
  std::vector<Row> rows;
  Table t({{"op", 12}, {"shape", 34}, {"bytes", 12}, {"time(us)", 10}, {"GB/s", 8}, {"%copy", 6}, {"%size-copy", 10}, {"host(us)", 8},
           {"max_err", 8}, {"#checked", 9}, {"#wrong", 6}});
  std::printf("%s", t.str().c_str());  // the header; rows follow as they are measured
  const Table lead({{"op", 12}, {"shape", 34}, {"bytes", 12}});  // a skipped row: these cells, then why
  auto add = [&](const Row& r) {
    rows.push_back(r);
    if (!r.note.empty()) {
      std::string cells = lead.row({r.op, r.shape, fmt(r.bytes, 0)});
      cells.pop_back();  // the newline
      std::printf("%s SKIPPED: %s\n", cells.c_str(), r.note.c_str());
    } else
      std::printf("%s", t.row({r.op, r.shape, fmt(r.bytes, 0), fmt(r.us, 2), fmt(r.gbs, 0), fmt(r.pct, 1), fmt(r.pct_size_copy, 1), fmt(r.host_us, 1),
                               fmt_sci(r.err), std::to_string(r.checked), std::to_string(r.wrong)})
                            .c_str());
    std::fflush(stdout);
  };
  if (o.op == "merge-varlen") {
    for (const Shape& s : varlen_shapes(o)) add(bench_merge_varlen(s, dt, out_dt, dev, o, copy_gbs));
  } else if (merge_like) {
    for (const Shape& s : merge_shapes(o, dev)) add(bench_merge(o.op == "merge", s, dt, out_dt, dev, o, copy_gbs));
  } else {
    for (const PackShape& s : pack_shapes(o, dt, dev))
      add(bench_pack(o.op == "pack", s.B, s.max_len, s.F, o.batch.empty() && o.max_len.empty() && o.features.empty() ? s.dtype : dt, dev, o, copy_gbs));
  }
  int64_t wrong = 0, skipped = 0;
  for (const Row& r : rows) {
    wrong += r.wrong;
    skipped += r.note.empty() ? 0 : 1;
  }
  if (!o.json.empty()) write_json(o.json, header.str(), copy_gbs, rows);
  return finish_bench(static_cast<int64_t>(rows.size()), skipped, wrong, rows.empty() ? "" : rows.front().note, "");
}

}  // namespace cpattn::cli
