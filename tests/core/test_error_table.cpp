// Walks the C++ rows of docs/errors.md: every documented bad input is run here and must
// raise exactly the documented message (or, for rows marked "works", nothing); every case
// here must be documented. So the table cannot drift from the code.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <vector>

#include "cpattn/cpattn.hpp"
#include "forwarding_comm.hpp"

namespace cpattn::testing {
namespace {

struct Row {
  std::string call, input, outcome;
};

// id -> row, from the lines "| `prefix.…` | call | bad input | outcome |"
std::map<std::string, Row> documented(const std::string& prefix) {
  std::ifstream f(CPATTN_SOURCE_DIR "/docs/errors.md");
  EXPECT_TRUE(f.good()) << "cannot read docs/errors.md";
  const std::regex row(R"(^\| `([^`]+)` \| (.*) \| (.*) \| (.*) \|$)");
  std::map<std::string, Row> rows;
  std::string line;
  std::smatch m;
  while (std::getline(f, line))
    if (std::regex_match(line, m, row) && m[1].str().rfind(prefix, 0) == 0)
      rows[m[1].str()] = Row{m[2].str(), m[3].str(), m[4].str()};
  return rows;
}

// What a case raised: the message, or "" when it returned normally.
std::string outcome_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<char> arena(1 << 16);
void* mem(size_t offset = 0) { return arena.data() + 256 + offset; }
TensorView t(DType d, std::initializer_list<int64_t> shape, size_t offset = 0, Device dev = {}) {
  return TensorView(mem(offset), d, shape, dev);
}
TensorView strided(DType d, std::vector<int64_t> shape, std::vector<int64_t> strides, size_t offset = 0) {
  return TensorView(mem(offset), d, shape, strides);
}
const DType f32 = DType::f32;
constexpr size_t far = 16384;  // byte offset of an output that overlaps nothing

// cp functions on 3 LocalComm ranks; rank r's arguments from make(r); rethrows rank 0's
// error (which rank fails first in time varies). `as` makes the communicator the call gets
// from the rank's LocalComm (default: the LocalComm itself).
using CpFn = void (*)(const TensorView&, const TensorView&, Communicator&, const TensorView&, const CpOptions&,
                      Context*);
using CommFactory = std::function<std::unique_ptr<Communicator>(Communicator&)>;
void cp_case(CpFn fn, const std::function<void(int, TensorView&, TensorView&, TensorView&)>& make,
             const CpOptions& options = {}, const CommFactory& as = nullptr) {
  std::optional<Error> rank0;
  try {
    run_local_ranks(3, [&](Communicator& local) {
      std::unique_ptr<Communicator> wrapped = as ? as(local) : nullptr;
      Communicator& comm = wrapped ? *wrapped : local;
      TensorView out, lse, result;
      make(comm.rank(), out, lse, result);
      try {
        fn(out, lse, comm, result, options, nullptr);
      } catch (const Error& e) {
        if (local.rank() == 0) rank0 = e;
        throw;
      }
    });
  } catch (const Error&) {
  }
  if (rank0) throw *rank0;
}

// The valid rs call the cp rows change one thing of: out [2, 6, 8], lse [2, 6], result
// [2, 2, 8] (H / N = 2 heads kept) on each of the 3 ranks.
void cp_rs(const std::function<void(TensorView&, TensorView&, TensorView&)>& change, const CpOptions& options = {},
           const CommFactory& as = nullptr) {
  cp_case(
      cp_lse_ag_out_rs,
      [&](int, TensorView& o, TensorView& l, TensorView& r) {
        o = t(f32, {2, 6, 8}), l = t(f32, {2, 6}, 1024), r = t(f32, {2, 2, 8}, far);
        change(o, l, r);
      },
      options, as);
}
// The same call with one optional tensor: kv_lens (valid: i32 [2]) or out_lse (valid: f32 [2, 2]).
void cp_rs_with(const char* option, const TensorView& tensor) {
  CpOptions o;
  (std::string(option) == "kv_lens" ? o.kv_lens : o.out_lse) = &tensor;
  cp_rs([](TensorView&, TensorView&, TensorView&) {}, o);
}

// A communicator of CPU buffers only (as MpiComm is), over the LocalComm rank.
class CpuOnlyComm final : public ForwardingComm {
 public:
  using ForwardingComm::ForwardingComm;
  std::string name() const override { return "cpu-only"; }
  bool accepts(Device d) const override { return d.type == DeviceType::cpu; }
};
// A broken Communicator whose rank() is out of [0, size()).
class RankPastSizeComm final : public ForwardingComm {
 public:
  using ForwardingComm::ForwardingComm;
  int rank() const override { return inner_.size(); }
};

std::map<std::string, std::function<void()>> cases() {
  std::map<std::string, std::function<void()>> c;
  const TensorView outs = t(f32, {2, 3, 4, 8}), lses = t(f32, {2, 3, 4}, 1024), out = t(f32, {3, 4, 8}, far);
  // merge_attn_states
  c["cpp.merge.rank"] = [=] { merge_attn_states(t(f32, {2, 3, 4}), lses, out); };
  c["cpp.merge.lses_shape"] = [=] { merge_attn_states(outs, t(f32, {2, 3, 5}, 1024), out); };
  c["cpp.merge.out_shape"] = [=] { merge_attn_states(outs, lses, t(f32, {3, 4, 7}, far)); };
  c["cpp.merge.dtype"] = [=] { merge_attn_states(t(DType::i32, {2, 3, 4, 8}), lses, out); };
  c["cpp.merge.lses_dtype"] = [=] { merge_attn_states(outs, t(DType::i64, {2, 3, 4}, 1024), out); };
  c["cpp.merge.out_dtype"] = [=] { merge_attn_states(outs, lses, t(DType::f16, {3, 4, 8}, far)); };
  c["cpp.merge.device"] = [=] { merge_attn_states(outs, t(f32, {2, 3, 4}, 1024, Device::cuda(0)), out); };
  c["cpp.merge.null"] = [=] { merge_attn_states(TensorView(nullptr, f32, {2, 3, 4, 8}), lses, out); };
  c["cpp.merge.negative_size"] = [=] { merge_attn_states(t(f32, {2, -3, 4, 8}), lses, out); };
  c["cpp.merge.no_partials"] = [=] { merge_attn_states(t(f32, {0, 3, 4, 8}), t(f32, {0, 3, 4}, 1024), out); };
  c["cpp.merge.out_overlaps_outs"] = [=] { merge_attn_states(outs, lses, t(f32, {3, 4, 8}, 64)); };
  c["cpp.merge.out_broadcast"] = [=] { merge_attn_states(outs, lses, strided(f32, {3, 4, 8}, {0, 8, 1}, far)); };
  c["cpp.merge.out_lse_shape"] = [=] {
    const TensorView l = t(f32, {3, 5}, far + 4096);
    merge_attn_states(outs, lses, out, &l);
  };
  c["cpp.merge.kv_lens_shape"] = [=] {
    const TensorView kv = t(DType::i32, {4}, far + 4096);
    MergeOptions o;
    o.kv_lens = &kv;
    merge_attn_states(outs, lses, out, nullptr, o);
  };
  c["cpp.merge.zero_size"] = [=] { merge_attn_states(t(f32, {2, 0, 4, 8}), t(f32, {2, 0, 4}, 1024), t(f32, {0, 4, 8}, far)); };
  c["cpp.merge.broadcast_input"] = [=] { merge_attn_states(strided(f32, {2, 3, 4, 8}, {0, 32, 8, 1}), lses, out); };
  c["cpp.merge.negative_stride"] = [=] { merge_attn_states(strided(f32, {2, 3, 4, 8}, {96, -32, 8, 1}, 64 * 4), lses, out); };
  c["cpp.merge.unaligned"] = [=] { merge_attn_states(outs, lses, t(f32, {3, 4, 8}, far + 4)); };
  c["cpp.merge.misaligned"] = [=] { merge_attn_states(outs, lses, t(f32, {3, 4, 8}, far + 2)); };
  // fp8 output of the merges
  const TensorView scale = t(f32, {1}, far + 2048);
  auto with_scale = [](const TensorView* s) {
    MergeOptions o;
    o.out_scale = s;
    return o;
  };
  c["cpp.merge.fp8_out"] = [=] { merge_attn_states(outs, lses, t(DType::fp8_e4m3, {3, 4, 8}, far), nullptr, with_scale(&scale)); };
  c["cpp.merge.fp8_without_scale"] = [=] { merge_attn_states(outs, lses, t(DType::fp8_e4m3, {3, 4, 8}, far)); };
  c["cpp.merge.scale_without_fp8"] = [=] { merge_attn_states(outs, lses, out, nullptr, with_scale(&scale)); };
  c["cpp.merge.scale_shape"] = [=] {
    const TensorView two = t(f32, {2}, far + 2048);
    merge_attn_states(outs, lses, t(DType::fp8_e4m3, {3, 4, 8}, far), nullptr, with_scale(&two));
  };
  c["cpp.merge.scale_dtype"] = [=] {
    const TensorView f16_scale = t(DType::f16, {1}, far + 2048);
    merge_attn_states(outs, lses, t(DType::fp8_e4m3, {3, 4, 8}, far), nullptr, with_scale(&f16_scale));
  };
  c["cpp.correct.out_scale"] = [=] { correct_attn_out(t(f32, {3, 4, 8}), lses, 0, t(f32, {3, 4, 8}, far), nullptr, with_scale(&scale)); };
  c["cpp.correct.fp8_out"] = [=] {
    correct_attn_out(t(f32, {3, 4, 8}), lses, 0, t(DType::fp8_e4m3, {3, 4, 8}, far), nullptr, with_scale(&scale));
  };
  // merge_attn_states_varlen: outs [P = 4, H = 4, D = 8], lses [4, 4], offsets [B + 1]
  const TensorView v_outs = t(f32, {4, 4, 8}), v_lses = t(f32, {4, 4}, 1024);
  auto offsets = [](std::vector<int64_t> v) {
    static std::vector<int64_t> store;
    store = std::move(v);
    return TensorView(store.data(), DType::i64, {static_cast<int64_t>(store.size())});
  };
  c["cpp.varlen.works"] = [=] { merge_attn_states_varlen(v_outs, v_lses, offsets({0, 3, 3, 4}), t(f32, {3, 4, 8}, far)); };
  c["cpp.varlen.no_rows"] = [=] { merge_attn_states_varlen(v_outs, v_lses, offsets({0}), t(f32, {0, 4, 8}, far)); };
  c["cpp.varlen.outs_rank"] = [=] { merge_attn_states_varlen(outs, v_lses, offsets({0, 4}), t(f32, {1, 4, 8}, far)); };
  c["cpp.varlen.lses_shape"] = [=] {
    merge_attn_states_varlen(v_outs, t(f32, {3, 4}, 1024), offsets({0, 4}), t(f32, {1, 4, 8}, far));
  };
  c["cpp.varlen.offsets_dtype"] = [=] { merge_attn_states_varlen(v_outs, v_lses, t(f32, {2}, far + 4096), t(f32, {1, 4, 8}, far)); };
  c["cpp.varlen.offsets_empty"] = [=] { merge_attn_states_varlen(v_outs, v_lses, offsets({}), t(f32, {0, 4, 8}, far)); };
  c["cpp.varlen.offsets_negative"] = [=] { merge_attn_states_varlen(v_outs, v_lses, offsets({-1, 2}), t(f32, {1, 4, 8}, far)); };
  c["cpp.varlen.offsets_decreasing"] = [=] {
    merge_attn_states_varlen(v_outs, v_lses, offsets({0, 3, 2, 4}), t(f32, {3, 4, 8}, far));
  };
  c["cpp.varlen.offsets_past_P"] = [=] { merge_attn_states_varlen(v_outs, v_lses, offsets({0, 2, 5}), t(f32, {2, 4, 8}, far)); };
  c["cpp.varlen.out_batch"] = [=] { merge_attn_states_varlen(v_outs, v_lses, offsets({0, 2, 4}), t(f32, {3, 4, 8}, far)); };
  c["cpp.varlen.kv_lens"] = [=] {
    const TensorView kv = t(DType::i32, {2, 2}, far + 4096);
    MergeOptions o;
    o.kv_lens = &kv;
    merge_attn_states_varlen(v_outs, v_lses, offsets({0, 2, 4}), t(f32, {2, 4, 8}, far), nullptr, o);
  };
  c["cpp.varlen.fp8_out"] = [=] {
    merge_attn_states_varlen(v_outs, v_lses, offsets({0, 2, 4}), t(DType::fp8_e4m3, {2, 4, 8}, far), nullptr, with_scale(&scale));
  };
  // correct_attn_out
  const TensorView part = t(f32, {3, 4, 8});
  c["cpp.correct.lses_rank"] = [=] { correct_attn_out(part, t(f32, {2, 3}, 1024), 0, t(f32, {3, 4, 8}, far)); };
  c["cpp.correct.rank_range"] = [=] { correct_attn_out(part, lses, 2, t(f32, {3, 4, 8}, far)); };
  c["cpp.correct.lses_shape"] = [=] { correct_attn_out(part, t(f32, {2, 4, 4}, 1024), 0, t(f32, {3, 4, 8}, far)); };
  c["cpp.correct.dtype"] = [=] { correct_attn_out(t(DType::f64, {3, 4, 8}), lses, 0, t(DType::f64, {3, 4, 8}, far)); };
  c["cpp.correct.partial_overlap"] = [=] { correct_attn_out(part, lses, 0, t(f32, {3, 4, 8}, 4)); };
  c["cpp.correct.in_place"] = [=] { correct_attn_out(part, lses, 1, part); };
  // pack_seq / unpack_seq (CPU reads lengths and checks them)
  const TensorView x = t(f32, {5, 2});
  auto lens = [](std::vector<int64_t> v) {
    static std::vector<int64_t> store;
    store = std::move(v);
    return TensorView(store.data(), DType::i64, {static_cast<int64_t>(store.size())});
  };
  c["cpp.pack.x_rank"] = [=] { pack_seq(t(f32, {}), lens({1}), t(f32, {1, 1}, far)); };
  c["cpp.pack.out_rank"] = [=] { pack_seq(x, lens({2, 3}), t(f32, {2, 6}, far)); };
  c["cpp.pack.out_dtype"] = [=] { pack_seq(x, lens({2, 3}), t(DType::f16, {2, 3, 2}, far)); };
  c["cpp.pack.trailing_dims"] = [=] { pack_seq(x, lens({2, 3}), t(f32, {2, 3, 3}, far)); };
  c["cpp.pack.strided_trailing"] = [=] { pack_seq(strided(f32, {5, 2}, {4, 2}), lens({2, 3}), t(f32, {2, 3, 2}, far)); };
  c["cpp.pack.lengths_dtype"] = [=] { pack_seq(x, t(f32, {2}, far + 4096), t(f32, {2, 3, 2}, far)); };
  c["cpp.pack.negative_length"] = [=] { pack_seq(x, lens({2, -1, 4}), t(f32, {3, 4, 2}, far)); };
  c["cpp.pack.sum_past_T"] = [=] { pack_seq(x, lens({2, 4}), t(f32, {2, 4, 2}, far)); };
  c["cpp.pack.sum_under_T"] = [=] { pack_seq(x, lens({2, 2}), t(f32, {2, 3, 2}, far)); };
  c["cpp.pack.cu_seqlens_decreasing"] = [=] {
    PackOptions o;
    o.cu_seqlens = true;
    pack_seq(x, lens({0, 3, 2, 5}), t(f32, {3, 3, 2}, far), o);
  };
  c["cpp.pack.pad_unrepresentable"] = [=] { pack_seq(t(DType::i32, {5, 2}), lens({2, 3}), t(DType::i32, {2, 3, 2}, far)); };
  c["cpp.pack.out_broadcast"] = [=] { pack_seq(x, lens({2, 3}), strided(f32, {2, 3, 2}, {0, 2, 1}, far)); };
  c["cpp.pack.zero_size"] = [=] { pack_seq(t(f32, {0, 2}), lens({0, 0}), t(f32, {2, 0, 2}, far)); };
  c["cpp.pack.truncates"] = [=] { pack_seq(x, lens({2, 3}), t(f32, {2, 1, 2}, far)); };
  c["cpp.unpack.length_past_L"] = [=] { unpack_seq(t(f32, {2, 2, 2}), lens({1, 3}), t(f32, {4, 2}, far)); };
  c["cpp.unpack.sum_past_T"] = [=] { unpack_seq(t(f32, {2, 3, 2}), lens({3, 3}), t(f32, {5, 2}, far)); };
  c["cpp.unpack.sum_under_T"] = [=] { unpack_seq(t(f32, {2, 3, 2}), lens({1, 3}), t(f32, {5, 2}, far)); };
  c["cpp.unpack.out_overlaps"] = [=] { unpack_seq(t(f32, {2, 3, 2}), lens({2, 3}), t(f32, {5, 2}, 8)); };
  // lengths stored where the output goes
  const auto lens_at = [](size_t offset, std::initializer_list<int64_t> v) {
    std::copy(v.begin(), v.end(), static_cast<int64_t*>(mem(offset)));
    return TensorView(mem(offset), DType::i64, {static_cast<int64_t>(v.size())});
  };
  c["cpp.pack.out_overlaps_lengths"] = [=] { pack_seq(x, lens_at(far, {2, 3}), t(f32, {2, 3, 2}, far)); };
  c["cpp.unpack.out_overlaps_cu_seqlens"] = [=] {
    PackOptions o;
    o.cu_seqlens = true;
    unpack_seq(t(f32, {2, 3, 2}), lens_at(far + 8, {0, 2, 5}), t(f32, {5, 2}, far), o);
  };
  c["cpp.stats.negative_length"] = [=] { seq_length_stats(lens({3, -2})); };
  // cp functions, 3 ranks: every check of their validation (src/core/cp_args.cpp)
  const Device gpu = Device::cuda(0);
  const auto none = [](TensorView&, TensorView&, TensorView&) {};
  c["cpp.cp.out_rank"] = [=] { cp_rs([](TensorView& o, TensorView&, TensorView&) { o = t(f32, {2, 48}); }); };
  c["cpp.cp.out_dtype"] = [=] { cp_rs([](TensorView& o, TensorView&, TensorView&) { o = t(DType::f64, {2, 6, 8}); }); };
  c["cpp.cp.out_null"] = [=] {
    cp_rs([](TensorView& o, TensorView&, TensorView&) { o = TensorView(nullptr, f32, {2, 6, 8}); });
  };
  c["cpp.cp.out_device"] = [=] {
    cp_rs([gpu](TensorView& o, TensorView&, TensorView&) { o = t(f32, {2, 6, 8}, 0, gpu); }, {},
          [](Communicator& local) { return std::make_unique<CpuOnlyComm>(local); });
  };
  c["cpp.cp.lse_rank"] = [=] { cp_rs([](TensorView&, TensorView& l, TensorView&) { l = t(f32, {12}, 1024); }); };
  c["cpp.cp.lse_null"] = [=] {
    cp_rs([](TensorView&, TensorView& l, TensorView&) { l = TensorView(nullptr, f32, {2, 6}); });
  };
  c["cpp.cp.lse_device"] = [=] {
    cp_rs([gpu](TensorView&, TensorView& l, TensorView&) { l = t(f32, {2, 6}, 1024, gpu); });
  };
  c["cpp.cp.lse_batch"] = [=] { cp_rs([](TensorView&, TensorView& l, TensorView&) { l = t(f32, {3, 6}, 1024); }); };
  c["cpp.cp.lse_heads"] = [=] { cp_rs([](TensorView&, TensorView& l, TensorView&) { l = t(f32, {2, 5}, 1024); }); };
  c["cpp.cp.comm_rank"] = [=] {
    cp_rs(none, {}, [](Communicator& local) { return std::make_unique<RankPastSizeComm>(local); });
  };
  c["cpp.cp.result_rank"] = [=] { cp_rs([](TensorView&, TensorView&, TensorView& r) { r = t(f32, {2, 16}, far); }); };
  c["cpp.cp.result_device"] = [=] {
    cp_rs([gpu](TensorView&, TensorView&, TensorView& r) { r = t(f32, {2, 2, 8}, far, gpu); });
  };
  c["cpp.cp.result_dtype"] = [=] {
    cp_rs([](TensorView&, TensorView&, TensorView& r) { r = t(DType::bf16, {2, 2, 8}, far); });
  };
  c["cpp.cp.result_batch"] = [=] { cp_rs([](TensorView&, TensorView&, TensorView& r) { r = t(f32, {1, 2, 8}, far); }); };
  c["cpp.cp.result_head_dim"] = [=] {
    cp_rs([](TensorView&, TensorView&, TensorView& r) { r = t(f32, {2, 2, 4}, far); });
  };
  c["cpp.cp.result_null"] = [=] {
    cp_rs([](TensorView&, TensorView&, TensorView& r) { r = TensorView(nullptr, f32, {2, 2, 8}); });
  };
  c["cpp.cp.result_strided"] = [=] {
    cp_rs([](TensorView&, TensorView&, TensorView& r) { r = strided(f32, {2, 2, 8}, {32, 8, 1}, far); });
  };
  c["cpp.cp.result_overlaps_lse"] = [=] {
    cp_rs([](TensorView&, TensorView&, TensorView& r) { r = t(f32, {2, 2, 8}, 1024); });
  };
  c["cpp.cp.result_overlaps_out"] = [=] { cp_rs([](TensorView&, TensorView&, TensorView& r) { r = t(f32, {2, 2, 8}, 64); }); };
  c["cpp.cp.ar_in_place"] = [=] {
    cp_case(cp_lse_ag_out_ar, [](int rank, TensorView& o, TensorView& l, TensorView& r) {
      // a call that runs: each rank writes its own memory (a shared arena would be a data race)
      const size_t own = 512 * static_cast<size_t>(rank);
      o = t(f32, {2, 3, 8}, own), l = t(f32, {2, 3}, 6144 + own), r = o;
    });
  };
  c["cpp.cp.kv_lens_rank"] = [=] { cp_rs_with("kv_lens", t(DType::i32, {1, 2}, far + 8192)); };
  c["cpp.cp.kv_lens_dtype"] = [=] { cp_rs_with("kv_lens", t(DType::f32, {2}, far + 8192)); };
  c["cpp.cp.kv_lens_short"] = [=] { cp_rs_with("kv_lens", t(DType::i32, {1}, far + 8192)); };
  c["cpp.cp.kv_lens_device"] = [=] { cp_rs_with("kv_lens", t(DType::i32, {2}, far + 8192, gpu)); };
  c["cpp.cp.kv_lens_null"] = [=] { cp_rs_with("kv_lens", TensorView(nullptr, DType::i32, {2})); };
  c["cpp.cp.out_lse_rank"] = [=] { cp_rs_with("out_lse", t(f32, {4}, far + 4096)); };
  c["cpp.cp.out_lse_dtype"] = [=] { cp_rs_with("out_lse", t(DType::i32, {2, 2}, far + 4096)); };
  c["cpp.cp.out_lse_device"] = [=] { cp_rs_with("out_lse", t(f32, {2, 2}, far + 4096, gpu)); };
  c["cpp.cp.out_lse_batch"] = [=] { cp_rs_with("out_lse", t(f32, {3, 2}, far + 4096)); };
  c["cpp.cp.out_lse_heads"] = [=] { cp_rs_with("out_lse", t(f32, {2, 6}, far + 4096)); };
  c["cpp.cp.out_lse_null"] = [=] { cp_rs_with("out_lse", TensorView(nullptr, f32, {2, 2})); };
  c["cpp.cp.out_lse_broadcast"] = [=] { cp_rs_with("out_lse", strided(f32, {2, 2}, {0, 1}, far + 4096)); };
  c["cpp.cp.out_lse_overlaps_result"] = [=] { cp_rs_with("out_lse", t(f32, {2, 2}, far + 16)); };
  c["cpp.cp.out_lse_overlaps_out"] = [=] { cp_rs_with("out_lse", t(f32, {2, 2}, 64)); };
  c["cpp.cp.out_lse_overlaps_lse"] = [=] { cp_rs_with("out_lse", t(f32, {2, 2}, 1024 + 8)); };
  // cp functions: across the ranks
  c["cpp.cp.heads_not_divisible"] = [=] {
    cp_case(cp_lse_ag_out_rs, [](int, TensorView& o, TensorView& l, TensorView& r) {
      o = t(f32, {2, 4, 8}), l = t(f32, {2, 4}, 1024), r = t(f32, {2, 1, 8}, far);
    });
  };
  c["cpp.cp.result_shape"] = [=] {
    cp_case(cp_lse_ag_out_ar, [](int, TensorView& o, TensorView& l, TensorView& r) {
      o = t(f32, {2, 3, 8}), l = t(f32, {2, 3}, 1024), r = t(f32, {2, 1, 8}, far);
    });
  };
  c["cpp.cp.ranks_disagree"] = [=] {
    cp_case(cp_lse_a2a_merge, [](int rank, TensorView& o, TensorView& l, TensorView& r) {
      const int64_t B = rank == 2 ? 5 : 4;
      o = t(f32, {B, 6, 8}), l = t(f32, {B, 6}, 4096), r = t(f32, {B, 2, 8}, far);
    });
  };
  c["cpp.cp.direct_unavailable"] = [=] {
    CpOptions direct;
    direct.path = CpPath::direct;
    cp_case(
        cp_lse_a2a_merge,
        [](int, TensorView& o, TensorView& l, TensorView& r) {
          o = t(f32, {2, 6, 8}), l = t(f32, {2, 6}, 1024), r = t(f32, {2, 2, 8}, far);
        },
        direct);
  };
  c["cpp.cp.bad_on_one_rank"] = [=] {
    cp_case(cp_lse_ag_out_rs, [](int rank, TensorView& o, TensorView& l, TensorView& r) {
      o = t(f32, {2, 6, 8}), l = t(rank == 1 ? DType::i32 : f32, {2, 6}, 1024), r = t(f32, {2, 2, 8}, far);
    });
  };
  return c;
}

TEST(ErrorTable, EveryDocumentedCppRowRaisesItsMessage) {
  const auto rows = documented("cpp.");
  const auto c = cases();
  for (const auto& [id, fn] : c) {
    const auto it = rows.find(id);
    const std::string got = outcome_of(fn);
    if (it == rows.end()) {
      ADD_FAILURE() << "case " << id << " is not in docs/errors.md; its outcome: "
                    << (got.empty() ? "works" : "`" + got + "`");
      continue;
    }
    const std::string& want = it->second.outcome;
    if (want.rfind("works", 0) == 0) EXPECT_EQ(got, "") << id << " is documented to work";
    else EXPECT_EQ("`" + got + "`", want) << id;
  }
  for (const auto& [id, row] : rows) EXPECT_TRUE(c.count(id)) << "docs/errors.md row " << id << " has no case here";
}

}  // namespace
}  // namespace cpattn::testing
