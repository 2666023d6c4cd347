// cpattn: demo, bench and verify for the context-parallel attention library.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <new>

#include "cli.hpp"
#include "cpattn/config.hpp"

namespace {

// The exit status, the same for every subcommand: the commands return 0, or 1 for a wrong value.
constexpr int kOk = 0, kUsage = 2;
constexpr const char* kExitStatus =
    "Exit status: 0 when every checked value was right; 1 when some value was wrong (the table says which); 2 for bad "
    "usage or input, or when nothing could run (sizes that do not fit, no CUDA device, ...): the message on stderr says why.";

void add_common(CLI::App* app, cpattn::cli::CommonOptions& o, const char* default_dtype) {
  o.dtype = default_dtype;
  app->add_option("--device", o.device, "Where tensors live: cpu or cuda[:index] (under --comm nccl, plain cuda gives each rank the GPU of its node-local rank)")->capture_default_str();
  app->add_option("--comm", o.comm,
                  "Communicator: local (ranks are threads of this process), mpi (one rank per process, CPU) or "
                  "nccl (one rank per process and GPU; both under mpirun)")
      ->capture_default_str()
      ->check(CLI::IsMember({"local", "mpi", "nccl"}));
  app->add_option("--dtype", o.dtype, "Data dtype: f32, f16, bf16 (pack/unpack also fp8_e4m3, u8, i64, ...)")
      ->capture_default_str();
  app->add_option("--seed", o.seed, "Random seed")->capture_default_str();
}

// CLI11's PositiveNumber prints its range up to DBL_MAX; this says what is expected.
CLI::Validator at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        try {
          size_t used = 0;
          if (std::stoll(s, &used) >= lo && used == s.size()) return "";
        } catch (const std::exception&) {
        }
        return "expected an integer >= " + std::to_string(lo) + ", got '" + s + "'";
      },
      "INT>=" + std::to_string(lo));
}

}  // namespace

int main(int argc, char** argv) {
  // an unknown subcommand: name it (CLI11 would say that a subcommand is required)
  if (argc > 1 && argv[1][0] != '-') {
    const std::string sub = argv[1];
    if (sub != "demo" && sub != "bench" && sub != "verify") {
      std::fprintf(stderr, "%s (cpattn --help lists them)\n",
                   cpattn::Error("subcommand", "demo, bench or verify", "'" + sub + "'").what());
      return kUsage;
    }
  }
  CLI::App app{"cpattn " CPATTN_VERSION
               ": merge context-parallel attention partials exactly, on CPU or CUDA, across threads, MPI or NCCL"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cpattn ") + CPATTN_VERSION + " (CUDA " +
                                        (CPATTN_HAS_CUDA ? "yes" : "no") + ", MPI " + (CPATTN_HAS_MPI ? "yes" : "no") +
                                        ", NCCL " + (CPATTN_HAS_NCCL ? "yes" : "no") + ")");

  cpattn::cli::DemoOptions demo;
  auto* d = app.add_subcommand("demo",
                               "Split a random decode batch's KV over N ranks, run attention per shard, combine with "
                               "cp_lse_ag_out_rs / _ar / cp_lse_a2a_merge, check against unsplit attention");
  add_common(d, demo, "bf16");
  d->add_option("-N,--ranks", demo.ranks, "Ranks (threads) for --comm local; mpirun -np sets it otherwise")
      ->capture_default_str()->check(at_least(1));
  d->add_option("-B,--batch", demo.batch, "Decode rows (tokens)")->capture_default_str()->check(at_least(1));
  d->add_option("-H,--heads", demo.heads, "Heads, a multiple of the ranks (default: 16, rounded up to one)")->check(at_least(1));
  d->add_option("-D,--head-dim", demo.head_dim, "Head dim")->capture_default_str()->check(at_least(1));
  d->add_option("-S,--kv-len", demo.kv_len, "Longest KV length (rows get 0..S keys)")->capture_default_str()->check(at_least(0));
  d->add_option("--lse-base", demo.lse_base, "LSE units: e (natural log) or 2")->capture_default_str()->check(CLI::IsMember({"e", "2"}));
  d->add_option("--path", demo.path,
                "How the cp functions move data: auto (direct where it runs and is faster, else collectives), "
                "collectives, or direct (one kernel over NVLink symmetric memory; --comm nccl, one NVLink domain)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "collectives", "direct"}));

  cpattn::cli::BenchOptions bench;
  auto* b = app.add_subcommand("bench",
                               "Time an op over a shape sweep: time, GB/s, % of the device copy measured in the same "
                               "run (on a GPU also % of a copy of the row's own size, rows of 8 MiB and more), and a "
                               "check of sampled rows against the f64 reference");
  add_common(b, bench, "bf16");
  b->add_option("--op", bench.op,
                "correct, merge, merge-varlen (a variable number of partials per row: -N is the mean), pack, unpack, "
                "cp-rs, cp-ar or cp-a2a")
      ->capture_default_str()
      ->check(CLI::IsMember({"correct", "merge", "merge-varlen", "pack", "unpack", "cp-rs", "cp-ar", "cp-a2a"}));
  b->add_option("-B,--batch", bench.batch, "Batch sizes to sweep (default: the built-in sweep)")->delimiter(',')->check(at_least(1));
  b->add_option("-H,--heads", bench.heads, "Head counts")->delimiter(',')->check(at_least(1));
  b->add_option("-D,--head-dim", bench.head_dim, "Head dims")->delimiter(',')->check(at_least(1));
  b->add_option("-N,--ranks", bench.ranks, "Partials N (correct/merge; merge-varlen: the mean per row) or local ranks (cp-*)")->delimiter(',')->check(at_least(1));
  b->add_option("-L,--max-len", bench.max_len, "pack/unpack: longest sequence (lengths are uniform in 1..L)")->delimiter(',')->check(at_least(1));
  b->add_option("-F,--features", bench.features, "pack/unpack: elements per token")->delimiter(',')->check(at_least(1));
  b->add_option("-n,--iters", bench.iters, "Timed calls per row")->capture_default_str()->check(at_least(1));
  b->add_option("-w,--warmup", bench.warmup, "Warm-up calls per row")->capture_default_str()->check(at_least(0));
  b->add_option("-c,--check", bench.check, "Check sampled rows against the f64 reference (1) or not (0)")->capture_default_str();
  b->add_flag("--pdl", bench.pdl,
              "correct/merge: programmatic dependent launches (sm_90+), each call overlapping the tail of the one "
              "before; the default times ordinary launches");
  b->add_option("--out-dtype", bench.out_dtype,
                "merge, merge-varlen: the output dtype, fp8_e4m3 (a per-tensor scale of 1/64) or --dtype's (default)");
  b->add_option("--path", bench.paths,
                "cp-*: the transports to time, one row each: auto, collectives, direct (comma-separated)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "collectives", "direct"}));
  b->add_option("--json", bench.json, "Also write the rows as JSON to this file");

  cpattn::cli::VerifyOptions verify;
  auto* v = app.add_subcommand("verify", "Every op x dtype x odd shapes, NaN/inf LSEs and empty shards, against the f64 reference");
  add_common(v, verify, "bf16");
  v->add_flag("--quick", verify.quick, "A smaller matrix");

  for (CLI::App* sub : {&app, d, b, v}) sub->footer(kExitStatus);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help / version text); the status is ours
    return app.exit(e) == 0 ? kOk : kUsage;
  }
  try {
    if (d->parsed()) return cpattn::cli::run_demo(demo);
    if (b->parsed()) return cpattn::cli::run_bench(bench);
    if (v->parsed()) return cpattn::cli::run_verify(verify);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "cpattn: out of host memory: an allocation failed (std::bad_alloc): the sizes asked for need more "
                 "memory than this process may use; smaller ones (--batch, --heads, --head-dim, --kv-len, --max-len, "
                 "--features) need less\n");
    return kUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return kUsage;
  }
  return kOk;
}
