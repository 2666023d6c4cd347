// libFuzzer target: the cp functions' argument validation over 1-4 LocalComm ranks, the
// cross-rank consistency exchange included (detail::validate_cp_call, what every cp_*
// call runs first). Each input decodes a valid call (small B, H, D, dtypes, kv_lens and
// out_lse or not, options), then mutates it: a descriptor replaced by an arbitrary one
// (extreme shapes and strides, any dtype, null, cuda:0), moved to overlap another, or one
// rank's batch changed so that the ranks disagree. Nothing is read or written. Properties:
// every call passes or raises cpattn::Error, without undefined behaviour (UBSan) or a hang;
// and unless the consistency check is off, either every rank raises or none does.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/cp_args.hpp"
#include "cpattn/cpattn.hpp"
#include "fuzz_input.hpp"

using namespace cpattn;

namespace {

// Byte offsets of the tensors of a valid call in the (never read) arena: none overlaps, and
// a pointer moved by up to 64 bytes stays inside.
constexpr size_t kOut = 64, kLse = 8192, kResult = 16384, kKvLens = 24576, kOutLse = 28672, kArena = 32768;
char arena[kArena];

// One rank's arguments; the views' shapes live in the views themselves.
struct Call {
  TensorView out, lse, result, kv_lens, out_lse;
};

Call valid_call(fuzz::Input& in, CpOp op, int64_t N) {
  const DType floats[] = {DType::f32, DType::f16, DType::bf16};
  const DType indices[] = {DType::i32, DType::i64};
  const int64_t B = in.pick(0, 5), D = in.pick(0, 40);
  const int64_t H = op == CpOp::ar ? in.pick(0, 8) : in.pick(0, 4) * N, kept = op == CpOp::ar ? H : H / N;
  const DType dtype = in.one_of(floats), lse_dtype = in.one_of(floats);
  Call c;
  c.out = TensorView(arena + kOut, dtype, {B, H, D});
  c.lse = TensorView(arena + kLse, lse_dtype, {B, H});
  c.result = TensorView(arena + kResult, dtype, {B, kept, D});
  c.kv_lens = TensorView(arena + kKvLens, in.one_of(indices), {B});
  c.out_lse = TensorView(arena + kOutLse, in.one_of(floats), {B, kept});
  return c;
}

TensorView& tensor_of(Call& c, int which) {
  TensorView* tensors[] = {&c.out, &c.lse, &c.result, &c.kv_lens, &c.out_lse};
  return *tensors[which % 5];
}

// Changes one thing, the same on each rank of [first, last] (all of them, or one).
void mutate(fuzz::Input& in, std::vector<Call>& calls, size_t first, size_t last) {
  const int kind = in.byte() % 4, which = in.byte();
  const fuzz::Desc any = fuzz::make(in, arena + in.pick(64, kArena - 1024));
  const int64_t shift = in.pick(-64, 64), batch = in.pick(0, 6);
  for (size_t r = first; r <= last; ++r) {
    TensorView& t = tensor_of(calls[r], which);
    switch (kind) {
      case 0: t = any.view; break;  // an arbitrary descriptor
      case 1:                       // onto or next to another
        if (t.data) t.data = static_cast<char*>(t.data) + shift;
        break;
      case 2:  // a batch of its own
        if (t.ndim > 0) t.shape[0] = batch;
        break;
      default: t.data = nullptr; break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const CpOp ops[] = {CpOp::rs, CpOp::ar, CpOp::a2a};
  const ConsistencyCheck checks[] = {ConsistencyCheck::first_call, ConsistencyCheck::every_call, ConsistencyCheck::off};
  const CpPath paths[] = {CpPath::automatic, CpPath::collectives, CpPath::direct};
  const CpOp op = in.one_of(ops);
  const int N = static_cast<int>(in.pick(1, 4));
  CpOptions options;
  options.lse_base = in.flag() ? LseBase::two : LseBase::e;
  options.check_consistency = in.one_of(checks);
  options.path = in.one_of(paths);
  const bool kv_lens = in.flag(), out_lse = in.flag();
  std::vector<Call> calls(static_cast<size_t>(N), valid_call(in, op, N));
  for (int64_t m = in.pick(0, 3); m > 0; --m) {
    const int64_t rank = in.pick(-1, N - 1);  // -1: every rank
    const auto first = static_cast<size_t>(rank < 0 ? 0 : rank), last = static_cast<size_t>(rank < 0 ? N - 1 : rank);
    mutate(in, calls, first, last);
  }

  std::atomic<int> raised{0};
  try {
    run_local_ranks(N, [&](Communicator& comm) {
      const Call& c = calls[static_cast<size_t>(comm.rank())];
      CpOptions o = options;
      o.kv_lens = kv_lens ? &c.kv_lens : nullptr;
      o.out_lse = out_lse ? &c.out_lse : nullptr;
      try {
        detail::validate_cp_call(op, c.out, c.lse, comm, c.result, o);
      } catch (const Error&) {
        ++raised;
      }
    }, std::chrono::seconds(10));
  } catch (const Error&) {
    std::abort();  // a rank waited for the others in vain: the exchange lost a rank
  }
  if (options.check_consistency != ConsistencyCheck::off && raised != 0 && raised != N) std::abort();
  return 0;
}
