// cuda_nccl_cp.cpp: context-parallel decode across GPUs, one process per GPU under mpirun.
// The KV cache of each sequence is split over the ranks; every rank holds the partial
// attention output [B, H, D] and its LSE [B, H] over its own shard, and the cp functions
// combine them over an NcclComm. Each result is checked against unsplit float64 attention
// on the host; exits 1 on any rank's mismatch.
//
// Build and run (examples/CMakeLists.txt builds it when the installed cpattn has CUDA, NCCL
// and MPI):
//   cmake --install build --prefix /tmp/cpattn
//   cmake -S examples -B build-app -DCMAKE_PREFIX_PATH=/tmp/cpattn && cmake --build build-app
//   mpirun -np 2 build-app/cuda_nccl_cp          # as root: mpirun --allow-run-as-root -np 2 ...
// On shared multi-GPU hosts where NVLink multicast is off, also export NCCL_NVLS_ENABLE=0.
#include <cpattn/cpattn.hpp>
#include <cpattn/nccl_comm.hpp>  // builds with NCCL: CPATTN_HAS_NCCL in <cpattn/config.hpp>
#include <cpattn/reference.hpp>  // float64 attention: the partials and the unsplit answer
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call)                                                              \
  do {                                                                           \
    cudaError_t e_ = (call);                                                     \
    if (e_ != cudaSuccess) {                                                     \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));           \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

namespace {

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_bf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if (std::isnan(f)) return 0x7FC0;
  return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

struct Errors {
  double out = 0, lse = 0;  // max |result - unsplit| / max |unsplit|; max |lse - unsplit lse|
};

// result [B, kept, D] and out_lse [B, kept] of this rank against the unsplit f64 attention,
// heads [first, first + kept).
Errors compare(const cpattn::reference::CpAttention& p, const std::vector<uint16_t>& result,
               const std::vector<float>& lse, int64_t first, int64_t kept) {
  Errors e;
  double scale = 1e-30;
  for (double v : p.full.out) scale = std::fmax(scale, std::fabs(v));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t j = 0; j < kept; ++j) {
      const int64_t h = first + j;
      const double want_lse = p.full.lse[b * p.H + h], got_lse = lse[b * kept + j];
      e.lse = std::fmax(e.lse, std::isinf(want_lse) ? (got_lse == want_lse ? 0 : INFINITY) : std::fabs(got_lse - want_lse));
      for (int64_t d = 0; d < p.D; ++d) {
        const double got = bf16_to_float(result[(b * kept + j) * p.D + d]);
        const double diff = std::fabs(got - p.full.out[(b * p.H + h) * p.D + d]);
        e.out = std::fmax(e.out, std::isnan(diff) ? INFINITY : diff / scale);
      }
    }
  return e;
}

}  // namespace

int main() {
  using namespace cpattn;
  // initialises MPI if needed, broadcasts an NCCL id, takes the GPU of the node-local rank
  auto comm = NcclComm::create_with_mpi();
  const int64_t n = comm->size(), rank = comm->rank();
  const Device gpu = Device::cuda(comm->device());
  const int64_t B = 16, S = 64, H = 16 * n, D = 128;  // rs and a2a need H divisible by n

  // The same problem on every rank (same seed): random q, k, v; row 0 has no keys and row 1
  // fewer keys than ranks, so some shards are empty. An engine's attention kernel gives
  // each rank its own partial; here the float64 reference does.
  const reference::CpAttention problem = reference::make_cp_attention(B, S, H, D, n, /*seed=*/7);
  const reference::MergeResult& mine = problem.partial[static_cast<size_t>(rank)];
  std::vector<uint16_t> h_out(B * H * D);
  std::vector<float> h_lse(B * H);
  std::vector<int32_t> h_kv_lens(B);  // this rank's KV length per row: 0 = an empty shard
  for (int64_t b = 0; b < B; ++b) {
    h_kv_lens[b] = static_cast<int32_t>(problem.shard_len[static_cast<size_t>(rank)][b]);
    for (int64_t h = 0; h < H; ++h) {
      // what an attention kernel may leave for an empty shard: NaN output and any lse;
      // kv_lens marks the row empty, so neither is read
      const bool empty = h_kv_lens[b] == 0;
      h_lse[b * H + h] = empty ? 7.0f : static_cast<float>(mine.lse[b * H + h]);
      for (int64_t d = 0; d < D; ++d)
        h_out[(b * H + h) * D + d] = float_to_bf16(empty ? NAN : static_cast<float>(mine.out[(b * H + h) * D + d]));
    }
  }

  void *d_out, *d_lse, *d_kv_lens, *d_result, *d_result_lse;
  CHECK(cudaMalloc(&d_out, h_out.size() * 2));
  CHECK(cudaMalloc(&d_lse, h_lse.size() * 4));
  CHECK(cudaMalloc(&d_kv_lens, h_kv_lens.size() * 4));
  CHECK(cudaMalloc(&d_result, B * H * D * 2));  // large enough for every op's result
  CHECK(cudaMalloc(&d_result_lse, B * H * 4));
  CHECK(cudaMemcpy(d_out, h_out.data(), h_out.size() * 2, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_lse, h_lse.data(), h_lse.size() * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(d_kv_lens, h_kv_lens.data(), h_kv_lens.size() * 4, cudaMemcpyHostToDevice));

  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));
  Context ctx(gpu, stream);  // NCCL and cpattn's kernels run on this stream
  const TensorView out(d_out, DType::bf16, {B, H, D}, gpu);
  const TensorView lse(d_lse, DType::f32, {B, H}, gpu);
  const TensorView kv_lens(d_kv_lens, DType::i32, {B}, gpu);

  bool all_ok = true;
  auto check = [&](CpOp op, const char* how, const TensorView& result, const TensorView& result_lse,
                   const CpPlan& plan) {
    const int64_t kept = result.shape[1], first = op == CpOp::ar ? 0 : rank * kept;
    std::vector<uint16_t> h_result(B * kept * D);
    std::vector<float> h_result_lse(B * kept);
    CHECK(cudaMemcpy(h_result.data(), result.data, h_result.size() * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(h_result_lse.data(), result_lse.data, h_result_lse.size() * 4, cudaMemcpyDeviceToHost));
    const Errors mine_err = compare(problem, h_result, h_result_lse, first, kept);
    // every rank's errors to every rank (a small blocking host exchange), printed by rank 0
    std::vector<Errors> all(static_cast<size_t>(n));
    comm->all_gather_host(&mine_err, all.data(), sizeof(Errors));
    // bf16: one rounding when the partials are merged in f32 (a2a, direct); rs and ar over
    // the collectives round each corrected partial and sum in bf16, as vLLM's do
    const bool one_rounding = op == CpOp::a2a || plan.path == CpPath::direct;
    const double tol = (one_rounding ? 2.0 : static_cast<double>(n + 1)) / 256;
    for (int64_t r = 0; r < n; ++r) {
      const bool ok = all[r].out <= tol && all[r].lse <= 1e-4;
      all_ok = all_ok && ok;
      if (rank == 0)
        std::printf("  %-17s %-6s rank %lld: heads [%lld, %lld) max_err %.1e (tol %.1e) lse_err %.1e %s\n",
                    cp_op_name(op), how, static_cast<long long>(r), static_cast<long long>(op == CpOp::ar ? 0 : r * kept),
                    static_cast<long long>(op == CpOp::ar ? kept : (r + 1) * kept), all[r].out, tol, all[r].lse,
                    ok ? "PASS" : "FAIL");
    }
  };

  if (rank == 0)
    std::printf("cuda_nccl_cp: %lld ranks, B=%lld H=%lld D=%lld bf16, kv_len <= %lld split over the ranks\n",
                static_cast<long long>(n), static_cast<long long>(B), static_cast<long long>(H),
                static_cast<long long>(D), static_cast<long long>(S));
  for (CpOp op : {CpOp::rs, CpOp::ar, CpOp::a2a}) {
    const int64_t kept = op == CpOp::ar ? H : H / n;  // rs, a2a: rank r keeps heads [r*H/n, (r+1)*H/n)
    const TensorView result(d_result, DType::bf16, {B, kept, D}, gpu);
    const TensorView result_lse(d_result_lse, DType::f32, {B, kept}, gpu);
    CpOptions options;
    options.path = CpPath::automatic;  // direct over NVLink where it runs and is faster, else collectives
    options.kv_lens = &kv_lens;        // rows with 0 are empty shards on this rank
    options.out_lse = &result_lse;     // optional: the merged lse of the kept heads
    const CpPlan plan = cp_plan(op, out, *comm, options);
    if (rank == 0)
      std::printf("%s: path %s%s%s\n", cp_op_name(op), cp_path_name(plan.path), plan.reason.empty() ? "" : ": ",
                  plan.reason.c_str());
    // the first call of a new signature checks that every rank passed the same arguments
    // (a small host exchange); later identical calls skip it and never sync with the host
    cp_combine(op, out, lse, *comm, result, options, &ctx);  // = cp_lse_ag_out_rs / _ar / cp_lse_a2a_merge
    CHECK(cudaStreamSynchronize(stream));
    check(op, "eager", result, result_lse, plan);

    if (op == CpOp::rs) {
      // after one eager call, the same call can be captured in a CUDA graph (a decode step)
      CHECK(cudaMemsetAsync(d_result, 0, B * kept * D * 2, stream));
      cudaGraph_t graph;
      cudaGraphExec_t exec;
      CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      cp_lse_ag_out_rs(out, lse, *comm, result, options, &ctx);
      CHECK(cudaStreamEndCapture(stream, &graph));
      CHECK(cudaGraphInstantiate(&exec, graph, 0));
      CHECK(cudaGraphLaunch(exec, stream));
      CHECK(cudaStreamSynchronize(stream));
      check(op, "graph", result, result_lse, plan);
      CHECK(cudaGraphExecDestroy(exec));
      CHECK(cudaGraphDestroy(graph));
    }
  }
  if (rank == 0) std::printf("cuda_nccl_cp: %s\n", all_ok ? "every rank matches unsplit float64 attention" : "FAILED");

  CHECK(cudaStreamDestroy(stream));
  for (void* p : {d_out, d_lse, d_kv_lens, d_result, d_result_lse}) CHECK(cudaFree(p));
  return all_ok ? 0 : 1;
}
