// cpattn bench --op cp-rs|cp-ar|cp-a2a: the whole cp_* call next to the raw collectives it
// issues, timed alone in the same run; algbw and busbw computed as nccl-tests does for the
// main collective (reduce-scatter, all-reduce or all-to-all of the attention output).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cli.hpp"
#include "device.hpp"

namespace cpattn::cli {
namespace {

struct CpRow {  // POD, gathered to rank 0
  int64_t B, H, D;
  CpPath asked, taken;
  double bytes, us, loop_us, graph_us, checked_us, coll_us, err;
  int64_t checked, wrong;
  char reason[120];  // why auto did not take the direct path
  char skipped[240];  // why the row did not run ("" when it ran)
};

// Why a row cannot run on this rank, or "": H not split evenly by rs / a2a, or buffers that do
// not fit in the memory there is now. Per rank, with `data` one rank's input: on the device the
// input, the result, the library's workspace (rs: one input, a2a: two) and the raw collectives'
// two buffers of N inputs each; on the host the input and, for the check, every rank's input
// rebuilt (freed before the collectives run). Ranks that are threads of this process (--comm
// local) hold theirs at once.
std::string skip_reason(CpOp op, const BenchOptions& o, Device dev, DType dt, int64_t N, int64_t B, int64_t H, int64_t D) {
  if (op != CpOp::ar && H % N != 0)
    return "H = " + std::to_string(H) + " is not divisible by the " + std::to_string(N) + " ranks (" +
           cp_op_name(op) + " splits the heads over the ranks)";
  const double n = static_cast<double>(N), in_process = o.comm == "local" ? n : 1;
  const double data = static_cast<double>(B) * static_cast<double>(H) * static_cast<double>(D) * static_cast<double>(dtype_size(dt));
  const double result = op == CpOp::ar ? data : data / n, workspace = op == CpOp::rs ? data : op == CpOp::a2a ? 2 * data : 0;
  const double lses = static_cast<double>(B) * static_cast<double>(H) * 4 * (n + 3);
  const double host = data + n * data + result + lses, device = data + result + workspace + 2 * n * data + lses;
  // on the CPU the check's copies are freed before the collectives' buffers are taken
  const double cpu = 2 * data + result + workspace + std::max(n * data + result, 2 * n * data) + 2 * lses;
  std::string why = memory_shortfall(Device::cpu(), in_process * (dev.type == DeviceType::cuda ? host : cpu));
  if (why.empty() && dev.type == DeviceType::cuda) why = memory_shortfall(dev, in_process * device);
  return why;
}

double median_wall_us(Device dev, int iters, int warmup, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(dev);
  std::vector<double> t;
  for (int i = 0; i < std::max(iters, 1); ++i) {
    const auto s = std::chrono::steady_clock::now();
    fn();
    synchronize(dev);
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}


// Mean time per call of `iters` back-to-back calls and one synchronisation: what a decode
// loop of one call per layer sees (the direct path's calls pipeline; a sync each call would
// add the host's wake-up to every one).
double loop_us(Device dev, int iters, int warmup, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(dev);
  const auto s = std::chrono::steady_clock::now();
  for (int i = 0; i < std::max(iters, 1); ++i) fn();
  synchronize(dev);
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count() / std::max(iters, 1);
}

CpOp parse_op(const std::string& op) {
  if (op == "cp-rs") return CpOp::rs;
  if (op == "cp-ar") return CpOp::ar;
  if (op == "cp-a2a") return CpOp::a2a;
  throw Error("--op", "cp-rs, cp-ar or cp-a2a", "'" + op + "'");
}

CpRow run_case(CpOp op, CpPath path, Communicator& comm, Device dev, DType dt, int64_t B, int64_t H, int64_t D,
               const BenchOptions& o) {
  const int64_t N = comm.size(), r = comm.rank();
  const bool ar = op == CpOp::ar, a2a = op == CpOp::a2a;
  const int64_t Hn = ar ? H : H / N;
  const size_t es = dtype_size(dt);
  const int64_t elems = B * H * D, rows = B * H;
  // every rank can rebuild every other rank's inputs (seeded by rank) for the check
  auto make = [&](int64_t rank, std::vector<char>& out, std::vector<float>& lse) {
    out.resize(static_cast<size_t>(elems) * es);
    lse.resize(static_cast<size_t>(rows));
    fill_values(out.data(), dt, elems, o.seed + 17 * static_cast<uint64_t>(rank));
    fill_values(lse.data(), DType::f32, rows, o.seed + 17 * static_cast<uint64_t>(rank) + 1);
  };
  std::vector<char> out_h;
  std::vector<float> lse_h;
  make(r, out_h, lse_h);
  Buffer out(out_h.size(), dev), lse(lse_h.size() * 4, dev), result(static_cast<size_t>(B * Hn * D) * es, dev);
  out.upload(out_h.data(), out_h.size());
  lse.upload(lse_h.data(), lse_h.size() * 4);
  Context ctx(dev);
  ctx.set_pdl(o.pdl);
  const TensorView out_v(out.data(), dt, {B, H, D}, dev), lse_v(lse.data(), DType::f32, {B, H}, dev),
      res_v(result.data(), dt, {B, Hn, D}, dev);
  CpOptions plain;
  plain.path = path;
  CpOptions every = plain;  // the default (first_call) checks once; this one pays the host exchange each call
  every.check_consistency = ConsistencyCheck::every_call;
  auto call_with = [&](const CpOptions& co) { cp_combine(op, out_v, lse_v, comm, res_v, co, &ctx); };
  auto call = [&] { call_with(plain); };
  CpRow row{};
  row.B = B, row.H = H, row.D = D, row.asked = path;
  row.bytes = static_cast<double>(elems * static_cast<int64_t>(es));
  const CpPlan plan = cp_plan(op, out_v, comm, plain);
  row.taken = plan.path;
  std::snprintf(row.reason, sizeof(row.reason), "%s", plan.reason.c_str());
  if (o.check) {
    call();
    synchronize(dev);
    std::vector<char> got(result.bytes());
    result.download(got.data(), got.size());
    std::vector<std::vector<char>> outs(static_cast<size_t>(N));
    std::vector<std::vector<float>> lses(static_cast<size_t>(N));
    for (int64_t q = 0; q < N; ++q) make(q, outs[q], lses[q]);
    const int64_t h0 = ar || N == 1 ? 0 : r * Hn;
    const double tol = cp_tolerance(op, row.taken, dt, N);
    for (int64_t b = 0; b < B; b += std::max<int64_t>(B / 64, 1))
      for (int64_t j = 0; j < Hn; ++j) {
        const int64_t row_i = b * H + h0 + j;
        double m = -INFINITY, s = 0;
        for (int64_t q = 0; q < N; ++q) m = std::max<double>(m, lses[q][row_i]);
        for (int64_t q = 0; q < N; ++q) s += std::exp(lses[q][row_i] - m);
        const double l = m + std::log(s);
        for (int64_t d = 0; d < D; ++d) {
          double ref = 0;
          for (int64_t q = 0; q < N; ++q) ref += std::exp(lses[q][row_i] - l) * reference::load_element(outs[q].data(), dt, row_i * D + d);
          if (N == 1) ref = reference::load_element(outs[0].data(), dt, row_i * D + d);
          const double g = reference::load_element(got.data(), dt, (b * Hn + j) * D + d);
          const double e = std::isnan(g) ? INFINITY : std::fabs(g - ref);
          row.err = std::max(row.err, e);
          ++row.checked;
          if (!(e <= tol * (2.0 + std::fabs(ref)))) ++row.wrong;
        }
      }
  }
  row.us = median_wall_us(dev, o.iters, o.warmup, call);
  row.loop_us = loop_us(dev, o.iters, o.warmup, call);
  row.graph_us = dev.type == DeviceType::cuda ? time_us(dev, ctx, call, 20, o.warmup) : 0.0;
  row.checked_us = median_wall_us(dev, o.iters, o.warmup, [&] { call_with(every); });
  // the raw collectives alone, on buffers of the same sizes
  Buffer a(static_cast<size_t>(std::max<int64_t>(N, 1)) * out_h.size() + 4096, dev), b2(a.bytes(), dev);
  const size_t chunk = (static_cast<size_t>(B * Hn * D) * es + 15) / 16 * 16 + (static_cast<size_t>(B * Hn) * 4 + 15) / 16 * 16;
  row.coll_us = median_wall_us(dev, o.iters, o.warmup, [&] {
    if (a2a) {
      comm.all_to_all(a.data(), b2.data(), chunk, DType::u8, ctx);
      return;
    }
    comm.all_gather(a.data(), b2.data(), static_cast<size_t>(rows), DType::f32, ctx);
    if (ar) comm.all_reduce(a.data(), a.data(), static_cast<size_t>(elems), dt, ctx);
    else comm.reduce_scatter(a.data(), b2.data(), static_cast<size_t>(B * Hn * D), dt, ctx);
  });
  return row;
}

}  // namespace

int run_cp_bench(const BenchOptions& o, Device dev, DType dt) {
  const CpOp op = parse_op(o.op);
  std::vector<CpPath> paths;
  for (const std::string& p : o.paths) paths.push_back(parse_path(p));
  if (dt != DType::f32 && dt != DType::f16 && dt != DType::bf16) throw Error("--dtype", "f32, f16 or bf16", o.dtype);
  const int local_ranks = o.ranks.empty() ? 4 : static_cast<int>(o.ranks.front());
  int status = 0;
  std::atomic<bool> nothing_ran{false};
  std::function<int()> summary;  // rank 0's summary line and exit status
  std::string first_skip;
  for_each_rank(o, local_ranks, dev, [&](Communicator& comm, Device device) {
    const int64_t N = comm.size();
    std::vector<CpRow> rows;
    const std::vector<int64_t> batches = o.batch.empty() ? std::vector<int64_t>{1, 8, 64, 256, 2048} : o.batch;
    const std::vector<int64_t> heads = o.heads.empty() ? std::vector<int64_t>{128, 16} : o.heads;
    const std::vector<int64_t> dims = o.head_dim.empty() ? std::vector<int64_t>{} : o.head_dim;
    for (int64_t H : heads)
      for (int64_t B : batches)
        for (int64_t D : dims.empty() ? std::vector<int64_t>{H == 128 ? 512 : 128} : dims)
          for (CpPath path : paths) {
            // a row runs on every rank or on none: the ranks agree on each one's reason, each
            // measuring the memory once every rank has freed the row before (a barrier)
            const char token = 0;
            std::vector<char> barrier(static_cast<size_t>(N));
            comm.all_gather_host(&token, barrier.data(), 1);
            CpRow skip{};
            skip.B = B, skip.H = H, skip.D = D, skip.asked = path, skip.taken = path;
            skip.bytes = static_cast<double>(B * H * D) * static_cast<double>(dtype_size(dt));
            std::snprintf(skip.skipped, sizeof(skip.skipped), "%s", skip_reason(op, o, device, dt, N, B, H, D).c_str());
            std::vector<CpRow> each(static_cast<size_t>(N));
            comm.all_gather_host(&skip, each.data(), sizeof(CpRow));
            const auto short_rank = std::find_if(each.begin(), each.end(), [](const CpRow& x) { return x.skipped[0] != 0; });
            if (short_rank == each.end()) {
              rows.push_back(run_case(op, path, comm, device, dt, B, H, D, o));
              continue;
            }
            if (!skip.skipped[0])
              std::snprintf(skip.skipped, sizeof(skip.skipped), "rank %lld %s",
                            static_cast<long long>(short_rank - each.begin()), short_rank->skipped);
            rows.push_back(skip);
          }
    std::vector<CpRow> all(rows.size() * static_cast<size_t>(N));
    comm.all_gather_host(rows.data(), all.data(), rows.size() * sizeof(CpRow));
    int64_t wrong = 0, skipped = 0;
    for (const CpRow& x : all) wrong += x.wrong;
    for (const CpRow& x : rows) skipped += x.skipped[0] ? 1 : 0;
    if (wrong) status = 1;
    if (!rows.empty() && skipped == static_cast<int64_t>(rows.size())) nothing_ran = true;
    if (comm.rank() != 0) return;
    // nccl-tests bus bandwidth factors for the main collective
    const double n = static_cast<double>(N);
    const double factor = o.op == "cp-ar" ? 2 * (n - 1) / n : (n - 1) / n;
    std::printf("# cpattn bench --op %s comm %s ranks %lld device %s dtype %s iters %d | call: median wall time of "
                "one call and a synchronisation, slowest rank (consistency checked on the first call); loop: mean per "
                "call of back-to-back calls; graph: mean per call of 20 calls captured in a CUDA graph and replayed (no host "
                "work); checked: with the host-side check on every call; coll: the raw "
                "collectives alone (call/coll compares call with coll)\n",
                o.op.c_str(), comm.name().c_str(), static_cast<long long>(N), device_description(device).c_str(),
                dtype_name(dt), o.iters);
    Table t({{"shape", 18}, {"path", 18}, {"bytes", 11}, {"call(us)", 9}, {"loop(us)", 9}, {"graph(us)", 9}, {"checked(us)", 11},
             {"coll(us)", 9}, {"call/coll", 9}, {"algbw", 8}, {"busbw", 8}, {"max_err", 8}, {"#wrong", 6}});
    std::vector<std::string> reasons, skipped_rows;
    for (size_t i = 0; i < rows.size(); ++i) {
      CpRow w = rows[i];
      for (int64_t q = 0; q < N; ++q) {
        const CpRow& x = all[static_cast<size_t>(q) * rows.size() + i];
        w.us = std::max(w.us, x.us);
        w.loop_us = std::max(w.loop_us, x.loop_us);
        w.graph_us = std::max(w.graph_us, x.graph_us);
        w.checked_us = std::max(w.checked_us, x.checked_us);
        w.coll_us = std::max(w.coll_us, x.coll_us);
        w.err = std::max(w.err, x.err);
        w.wrong += q ? x.wrong : 0;
      }
      if (w.skipped[0]) {
        skipped_rows.push_back(t.row({"B" + std::to_string(w.B) + " H" + std::to_string(w.H) + " D" + std::to_string(w.D),
                                      cp_path_name(w.asked), fmt(w.bytes, 0)}));
        skipped_rows.back().resize(skipped_rows.back().find_last_not_of(" \n") + 1);
        skipped_rows.back() += "  SKIPPED: " + std::string(w.skipped) + "\n";
        if (first_skip.empty()) first_skip = w.skipped;
        continue;
      }
      const double algbw = w.bytes / w.us / 1e3;
      std::string path = cp_path_name(w.taken);
      if (w.asked == CpPath::automatic) path = std::string("auto: ") + path;
      if (w.asked == CpPath::automatic && w.reason[0]) {
        const std::string why = w.reason;
        if (std::find(reasons.begin(), reasons.end(), why) == reasons.end()) reasons.push_back(why);
        path += " [" + std::to_string(std::find(reasons.begin(), reasons.end(), why) - reasons.begin() + 1) + "]";
      }
      t.add({"B" + std::to_string(w.B) + " H" + std::to_string(w.H) + " D" + std::to_string(w.D), path, fmt(w.bytes, 0),
             fmt(w.us, 1), fmt(w.loop_us, 1), w.graph_us > 0 ? fmt(w.graph_us, 1) : "-", fmt(w.checked_us, 1), fmt(w.coll_us, 1), fmt(w.us / w.coll_us, 2),
             fmt(algbw, 2), fmt(algbw * factor, 2), fmt_sci(w.err), std::to_string(w.wrong)});
    }

    std::printf("%s", t.str().c_str());
    for (const std::string& r : skipped_rows) std::printf("%s", r.c_str());
    for (size_t i = 0; i < reasons.size(); ++i)
      std::printf("# [%zu] auto took the collectives: %s\n", i + 1, reasons[i].c_str());
    std::fflush(stdout);
    summary = [=] {
      return finish_bench(static_cast<int64_t>(rows.size()), skipped, wrong, first_skip,
                          " (algbw/busbw in GB/s of the attention output, nccl-tests factors)");
    };
  });
  // after every rank is done: with nothing run, every process exits 2 (rank 0 prints why)
  if (summary) {
    const int s = summary();
    return std::max(s, status);
  }
  if (nothing_ran) throw Error("sizes", "at least one bench row that can run", "none: every row SKIPPED (rank 0 lists why)");
  return status;
}

}  // namespace cpattn::cli
