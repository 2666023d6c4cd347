#pragma once
// The cpattn command-line tool: demo, bench, verify. Each command returns the process exit
// status (0 when every checked value was right).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpattn/cpattn.hpp"
#include "cpattn/reference.hpp"

namespace cpattn::cli {

struct CommonOptions {
  std::string device = "cpu";  // cpu | cuda
  std::string comm = "local";  // local | mpi | nccl
  std::string dtype = "bf16";
  uint32_t seed = 1;
};

struct DemoOptions : CommonOptions {
  int ranks = 4;
  int64_t batch = 8, heads = 0, head_dim = 128, kv_len = 512;  // heads 0: 16 rounded up to a multiple of the ranks
  std::string lse_base = "e";
  std::string path = "auto";  // the cp functions' transport: auto, collectives or direct
};

struct BenchOptions : CommonOptions {
  std::string op = "correct";
  std::vector<int64_t> batch, heads, head_dim, ranks;  // empty: the default sweep
  std::vector<int64_t> max_len, features;             // pack/unpack sweeps
  int iters = 20, warmup = 3;
  bool check = true;
  bool pdl = false;  // Context::set_pdl for correct/merge
  std::string out_dtype;  // merge/merge-varlen: fp8_e4m3 (with a per-tensor scale); "" = --dtype
  std::vector<std::string> paths{"auto"};  // cp-*: the transports to time, one row each
  std::string json;
};

struct VerifyOptions : CommonOptions {
  bool quick = false;
};

int run_demo(const DemoOptions& o);
int run_bench(const BenchOptions& o);
int run_verify(const VerifyOptions& o);

// --------------------------------------------------------------- shared helpers
// One rank's part of a cp_* run on real partial attention (demo, verify). err is max
// |result - unsplit| / max |unsplit|; wrong counts values past tolerance; path is the
// transport the call took.
struct StageResult {  // POD: gathered to rank 0 as bytes
  double us = 0, err = 0, lse_err = 0;
  int64_t wrong = 0;
  CpPath path = CpPath::collectives;
};
StageResult run_cp_stage(CpOp op, Communicator& comm, Device device, DType dtype, LseBase base,
                         const reference::CpAttention& problem, CpPath path = CpPath::automatic);
CpPath parse_path(const std::string& name);  // auto | collectives | direct, errors naming --path
// Tolerance of a cp_* result against f64: one rounding where the partials are merged in f32
// (a2a, the direct path), N + 1 where each corrected partial is rounded before the sum.
double cp_tolerance(CpOp op, CpPath path, DType dtype, int64_t ranks);

Device parse_device(const std::string& name);
DType parse_dtype_option(const std::string& name);  // parse_dtype, errors naming --dtype
LseBase parse_lse_base(const std::string& name);
// This process's rank communicator for --comm mpi|nccl (MPI initialised on first use). For nccl
// an unpinned device ("cuda") becomes the GPU of this rank's node-local rank; device is updated.
std::unique_ptr<Communicator> make_process_comm(const std::string& name, Device& device, bool device_pinned);
// Runs fn on every rank of the chosen communicator: `ranks` threads for local, this
// process for mpi/nccl.
void for_each_rank(const CommonOptions& o, int ranks, Device device, const std::function<void(Communicator&, Device)>& fn);

// The end of a bench run: the summary line and the exit status (0, or 1 with a wrong value).
// When every one of `rows` was skipped, nothing ran: prints so and throws an Error naming the
// first row's reason (the CLI exits 2).
int finish_bench(int64_t rows, int64_t skipped, int64_t wrong, const std::string& first_skip, const std::string& suffix);

// Fills `n` elements of dtype at host memory `p` with deterministic values in [-2, 2).
void fill_values(void* p, DType dtype, int64_t n, uint64_t seed);
double tolerance(DType dtype);  // one rounding to dtype, plus f32 arithmetic

// A fixed-width text table, nccl-tests style: a header, rows, printed by rank 0.
class Table {
 public:
  explicit Table(std::vector<std::pair<std::string, int>> columns) : columns_(std::move(columns)) {}
  void add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string str() const;                                  // header and rows so far
  std::string row(const std::vector<std::string>& cells) const;  // one row, formatted

 private:
  std::vector<std::pair<std::string, int>> columns_;
  std::vector<std::vector<std::string>> rows_;
};
std::string fmt(double v, int precision = 2);
std::string fmt_sci(double v);
std::string fmt_bytes(double bytes);  // "512 B", "3.2 GiB", "1.9 PiB"

}  // namespace cpattn::cli
