// cpattn demo: a random decode batch whose KV is split over N ranks; each rank holds its
// partial attention (empty shards carry garbage, masked by kv_lens), the cp_* functions
// combine them, and every rank's result is checked against unsplit f64 attention.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <vector>

#include "cli.hpp"
#include "device.hpp"

namespace cpattn::cli {
namespace {

constexpr CpOp kOps[] = {CpOp::rs, CpOp::ar, CpOp::a2a};
constexpr int kOpCount = 3;

// Refuses, before anything is allocated, a demo that cannot fit: the f64 reference attention
// (K and V [B, S, D], q, the unsplit result and every rank's partial [B, H, D]) on the host,
// and each rank's buffers for the cp calls (the input, the result, their host copies, the
// library's workspace: two outputs' worth and the gathered LSEs) on the device. Ranks that are
// threads of this process (--comm local) share the reference and run their calls at once.
void check_demo_memory(const DemoOptions& o, int64_t heads, int ranks, DType dt, Device device) {
  const double B = static_cast<double>(o.batch), S = static_cast<double>(o.kv_len), H = static_cast<double>(heads),
               D = static_cast<double>(o.head_dim), N = ranks, es = static_cast<double>(dtype_size(dt));
  const double kv = 2 * B * S * D * 8, rows = B * H * D * 8 * (2 + N) + B * H * 8 * (1 + N) + B * 8 * (1 + 3 * N);
  const double data = B * H * D * es, lses = B * H * 4 * (N + 6);
  const double in_process = o.comm == "local" ? N : 1;  // ranks whose buffers this process holds
  const bool cuda = device.type == DeviceType::cuda;
  const double device_bytes = in_process * (4 * data + lses), host_bytes = kv + rows + in_process * 2 * data + (cuda ? 0 : device_bytes);
  char sizes[160];
  std::snprintf(sizes, sizeof(sizes), "demo -B %lld -H %lld -D %lld -S %lld on %d ranks", static_cast<long long>(o.batch),
                static_cast<long long>(heads), static_cast<long long>(o.head_dim), static_cast<long long>(o.kv_len), ranks);
  const std::string shrink = "; a smaller --batch, --kv-len, --heads or --head-dim shrinks it";
  check_memory(Device::cpu(), host_bytes, sizes,
               "f64 K and V [B, S, D] for the reference attention: " + fmt_bytes(kv) + ", f64 q, unsplit result and " +
                   std::to_string(ranks) + " partials [B, H, D]: " + fmt_bytes(rows) +
                   (cuda ? ", host copies of the ranks' buffers: " + fmt_bytes(in_process * 2 * data)
                         : ", the ranks' buffers: " + fmt_bytes(in_process * 2 * data + device_bytes)) +
                   shrink);
  if (cuda)
    check_memory(device, device_bytes, sizes,
                 "inputs, results and workspace of " + std::to_string(static_cast<int>(in_process)) + " rank(s) on " +
                     device_name(device) + shrink);
}

}  // namespace

CpPath parse_path(const std::string& name) {
  if (name == "auto") return CpPath::automatic;
  if (name == "collectives") return CpPath::collectives;
  if (name == "direct") return CpPath::direct;
  throw Error("--path", "auto, collectives or direct", "'" + name + "'");
}

double cp_tolerance(CpOp op, CpPath path, DType dtype, int64_t ranks) {
  const bool one_rounding = op == CpOp::a2a || path == CpPath::direct;
  return tolerance(dtype) * (one_rounding ? 2.0 : static_cast<double>(ranks + 1));
}

StageResult run_cp_stage(CpOp op, Communicator& comm, Device dev, DType dt, LseBase base,
                         const reference::CpAttention& p, CpPath path) {
  const int64_t N = comm.size(), r = comm.rank(), B = p.B, H = p.H, D = p.D;
  const int64_t Hn = op == CpOp::ar ? H : H / N;
  const size_t es = dtype_size(dt);
  std::vector<char> out_h(static_cast<size_t>(B * H * D) * es);
  std::vector<float> lse_h(static_cast<size_t>(B * H));
  std::vector<int32_t> kv_h(static_cast<size_t>(B));
  const auto& part = p.partial[static_cast<size_t>(r)];
  for (int64_t b = 0; b < B; ++b) {
    const bool empty = p.shard_len[static_cast<size_t>(r)][b] == 0;
    kv_h[b] = static_cast<int32_t>(p.shard_len[static_cast<size_t>(r)][b]);
    for (int64_t h = 0; h < H; ++h) {
      // an empty shard: whatever the attention kernel left (here NaN and a bogus lse)
      lse_h[b * H + h] = empty ? 7.0f : static_cast<float>(part.lse[b * H + h] / (base == LseBase::two ? std::log(2.0) : 1.0));
      for (int64_t d = 0; d < D; ++d) reference::store_element(out_h.data(), dt, (b * H + h) * D + d, empty ? NAN : part.out[(b * H + h) * D + d]);
    }
  }
  Buffer out(out_h.size(), dev), lse(lse_h.size() * 4, dev), kv(kv_h.size() * 4, dev);
  Buffer result(static_cast<size_t>(B * Hn * D) * es, dev), out_lse(static_cast<size_t>(B * Hn) * 4, dev);
  out.upload(out_h.data(), out_h.size());
  lse.upload(lse_h.data(), lse_h.size() * 4);
  kv.upload(kv_h.data(), kv_h.size() * 4);
  const TensorView kv_v(kv.data(), DType::i32, {B}, dev), out_lse_v(out_lse.data(), DType::f32, {B, Hn}, dev);
  CpOptions o;
  o.lse_base = base;
  o.kv_lens = &kv_v;
  o.out_lse = &out_lse_v;
  o.path = path;
  Context ctx(dev);
  const TensorView out_v(out.data(), dt, {B, H, D}, dev), lse_v(lse.data(), DType::f32, {B, H}, dev),
      result_v(result.data(), dt, {B, Hn, D}, dev);
  const CpPath taken = cp_plan(op, out_v, comm, o).path;
  auto call = [&] {
    cp_combine(op, out_v, lse_v, comm, result_v, o, &ctx);
    synchronize(dev);
  };
  call();
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    const auto t = std::chrono::steady_clock::now();
    call();
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count());
  }
  std::sort(times.begin(), times.end());

  std::vector<char> res_h(result.bytes());
  std::vector<float> res_lse(static_cast<size_t>(B * Hn));
  result.download(res_h.data(), res_h.size());
  out_lse.download(res_lse.data(), res_lse.size() * 4);
  double max_ref = 1e-30;
  for (double v : p.full.out) max_ref = std::max(max_ref, std::fabs(v));
  const double tol = cp_tolerance(op, taken, dt, N);
  StageResult s;
  s.us = times[2];
  s.path = taken;
  const int64_t h0 = (op == CpOp::ar || N == 1) ? 0 : r * Hn;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < Hn; ++j) {
      const int64_t h = h0 + j;
      if (N > 1) {
        const double ref = p.full.lse[b * H + h];
        const double got = res_lse[b * Hn + j] * (base == LseBase::two ? std::log(2.0) : 1.0);
        const double e = std::isinf(ref) ? (got == ref ? 0.0 : INFINITY) : std::fabs(got - ref);
        s.lse_err = std::max(s.lse_err, e);
        if (!(e <= 1e-4 * std::max(1.0, std::fabs(ref)))) ++s.wrong;
      }
      for (int64_t d = 0; d < D; ++d) {
        const double got = reference::load_element(res_h.data(), dt, (b * Hn + j) * D + d);
        const double ref = p.full.out[(b * H + h) * D + d];
        if (N == 1 && p.kv_len[b] == 0) continue;  // world size 1 returns the input untouched
        const double e = std::isnan(got) ? INFINITY : std::fabs(got - ref) / max_ref;
        s.err = std::max(s.err, e);
        if (!(e <= tol)) ++s.wrong;
      }
    }
  return s;
}

int run_demo(const DemoOptions& o) {
  const Device dev = parse_device(o.device);
  const DType dt = parse_dtype_option(o.dtype);
  if (dt != DType::f32 && dt != DType::f16 && dt != DType::bf16) throw Error("--dtype", "f32, f16 or bf16", o.dtype);
  const LseBase base = parse_lse_base(o.lse_base);
  const CpPath path = parse_path(o.path);
  check_device(dev);
  if (o.batch < 1 || o.heads < 0 || o.head_dim < 1 || o.kv_len < 0)
    throw Error("sizes", "--batch, --heads, --head-dim >= 1 and --kv-len >= 0", "a smaller value");
  int status = 0;
  std::mutex mu;
  std::shared_ptr<reference::CpAttention> problem;
  double reference_us = 0;
  for_each_rank(o, o.ranks, dev, [&](Communicator& comm, Device device) {
    const int N = comm.size();
    const int64_t heads = o.heads > 0 ? o.heads : (16 + N - 1) / N * N;
    if (heads % N != 0)
      throw Error("--heads", "a multiple of the number of ranks (" + std::to_string(N) + ")", std::to_string(heads));
    // every rank stops when one lacks the memory (one rank alone would leave the others waiting)
    std::exception_ptr short_of_memory;
    try {
      check_demo_memory(o, heads, N, dt, device);
    } catch (const Error&) {
      short_of_memory = std::current_exception();
    }
    const char lacking = short_of_memory ? 1 : 0;
    std::vector<char> short_on(static_cast<size_t>(N));
    comm.all_gather_host(&lacking, short_on.data(), 1);
    if (short_of_memory) std::rethrow_exception(short_of_memory);
    for (int r = 0; r < N; ++r)
      if (short_on[static_cast<size_t>(r)])
        throw Error("sizes", "sizes that fit on every rank", "rank " + std::to_string(r) + " lacks the memory (its message says how much)");
    {
      std::lock_guard<std::mutex> lock(mu);  // local ranks share one problem; processes build the same one
      if (!problem) {
        const auto t = std::chrono::steady_clock::now();
        problem = std::make_shared<reference::CpAttention>(
            reference::make_cp_attention(o.batch, o.kv_len, heads, o.head_dim, N, o.seed));
        reference_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
      }
    }
    StageResult mine[kOpCount];
    for (int op = 0; op < kOpCount; ++op) mine[op] = run_cp_stage(kOps[op], comm, device, dt, base, *problem, path);
    std::vector<StageResult> all(static_cast<size_t>(N) * kOpCount);
    comm.all_gather_host(mine, all.data(), sizeof(mine));
    int64_t wrong = 0;
    for (const StageResult& s : all) wrong += s.wrong;
    if (wrong) status = 1;  // every process exits non-zero on a mismatch, not only rank 0
    if (comm.rank() != 0) return;
    const auto& p = *problem;
    int64_t partly_empty = 0;
    for (int64_t b = 0; b < p.B; ++b)
      if (p.kv_len[b] < N) ++partly_empty;
    std::printf("# cpattn demo: B=%lld H=%lld D=%lld kv_len<=%lld ranks=%d dtype=%s device=%s (%s) comm=%s lse-base=%s seed=%u\n",
                static_cast<long long>(o.batch), static_cast<long long>(heads), static_cast<long long>(o.head_dim),
                static_cast<long long>(o.kv_len), N, dtype_name(dt), device_name(device).c_str(),
                device_description(device).c_str(), comm.name().c_str(), o.lse_base.c_str(), o.seed);
    std::printf("# %lld of %lld rows have an empty shard on some rank (row 0 has no keys at all); empty shards hold NaN "
                "output and a bogus lse, masked by kv_lens\n",
                static_cast<long long>(partly_empty), static_cast<long long>(p.B));
    Table t({{"stage", 28}, {"path", 11}, {"time(us)", 10}, {"max_err", 9}, {"tol", 9}, {"lse_err", 9}, {"#wrong", 7},
             {"status", 6}});
    t.add({"unsplit attention (f64 ref)", "-", fmt(reference_us, 1), "-", "-", "-", "-", "-"});
    for (int op = 0; op < kOpCount; ++op) {
      StageResult worst;
      worst.path = all[static_cast<size_t>(op)].path;
      for (int r = 0; r < N; ++r) {
        const StageResult& s = all[static_cast<size_t>(r) * kOpCount + op];
        worst.us = std::max(worst.us, s.us);
        worst.err = std::max(worst.err, s.err);
        worst.lse_err = std::max(worst.lse_err, s.lse_err);
        worst.wrong += s.wrong;
      }
      const double tol = cp_tolerance(kOps[op], worst.path, dt, N);
      t.add({cp_op_name(kOps[op]), N > 1 ? cp_path_name(worst.path) : "-", fmt(worst.us, 1), fmt_sci(worst.err),
             fmt_sci(tol), N > 1 ? fmt_sci(worst.lse_err) : "-", std::to_string(worst.wrong),
             worst.wrong ? "FAIL" : "PASS"});
    }
    std::printf("%s", t.str().c_str());
    std::printf("# max_err: max |result - unsplit| / max |unsplit| over every rank; time: slowest rank, median of 5\n");
    std::printf("# %s\n", status ? "MISMATCH: some results are outside the tolerance" : "all results match unsplit attention");
    std::fflush(stdout);
  });
  return status;
}

}  // namespace cpattn::cli
