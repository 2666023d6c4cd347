// One row per invalid argument of every public function: each must raise cpattn::Error
// naming that argument, and the message must say what was expected and what came.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <vector>

#include "cpattn/cpattn.hpp"

namespace cpattn {
namespace {

struct BadInput {
  const char* case_name;
  const char* argument;  // what Error::argument() must be
  std::function<void()> call;
};

// Valid baseline buffers (N=2, B=3, H=4, D=8) that each row perturbs once.
struct Buffers {
  std::vector<float> outs = std::vector<float>(2 * 3 * 4 * 8), lses = std::vector<float>(2 * 3 * 4);
  std::vector<float> out = std::vector<float>(3 * 4 * 8), out2 = std::vector<float>(3 * 4 * 8), lse = std::vector<float>(3 * 4);
  std::vector<double> f64 = std::vector<double>(3 * 4 * 8);
  std::vector<int32_t> kv = std::vector<int32_t>(2 * 3, 1);
  std::vector<float> x = std::vector<float>(6 * 5), packed = std::vector<float>(3 * 4 * 5);
  std::vector<int32_t> lengths = {1, 2, 3};
  std::vector<int32_t> cu = {0, 1, 3, 6};
  std::vector<float> f_lengths = {1, 2, 3};
  TensorView Outs() { return {outs.data(), DType::f32, {2, 3, 4, 8}}; }
  TensorView Lses() { return {lses.data(), DType::f32, {2, 3, 4}}; }
  TensorView Out() { return {out.data(), DType::f32, {3, 4, 8}}; }
  TensorView Out2() { return {out2.data(), DType::f32, {3, 4, 8}}; }
  TensorView Lse() { return {lse.data(), DType::f32, {3, 4}}; }
  TensorView X() { return {x.data(), DType::f32, {6, 5}}; }
  TensorView Packed() { return {packed.data(), DType::f32, {3, 4, 5}}; }
  TensorView Lengths() { return {lengths.data(), DType::i32, {3}}; }
};

std::vector<BadInput> table(Buffers& b) {
  const int64_t shape3[] = {3, 4, 8}, zero_stride[] = {0, 8, 1}, neg_shape[] = {3, -4, 8};
  auto strided = [](TensorView t, std::initializer_list<int64_t> s) {
    std::copy(s.begin(), s.end(), t.strides.begin());
    return t;
  };
  auto with_dtype = [](TensorView t, DType d) { t.dtype = d; return t; };
  auto on_cuda = [](TensorView t) { t.device = Device::cuda(0); return t; };
  auto null = [](TensorView t) { t.data = nullptr; return t; };
  auto merge = [](TensorView outs, TensorView lses, TensorView out, const TensorView* lse = nullptr, MergeOptions o = {}) {
    merge_attn_states(outs, lses, out, lse, o);
  };
  auto correct = [](TensorView out, TensorView lses, int64_t rank, TensorView new_out, const TensorView* lse = nullptr,
                      MergeOptions o = {}) { correct_attn_out(out, lses, rank, new_out, lse, o); };
  static TensorView lse_view, kv_view, kv_bad;
  lse_view = b.Lse();
  kv_view = TensorView(b.kv.data(), DType::i32, {3, 2});
  kv_bad = TensorView(b.f_lengths.data(), DType::f32, {1, 3});
  static TensorView lse_wrong, lse_i32;
  lse_wrong = TensorView(b.lse.data(), DType::f32, {4, 3});
  lse_i32 = with_dtype(b.Lse(), DType::i32);
  MergeOptions kv_shape;
  kv_shape.kv_lens = &kv_view;
  MergeOptions kv_dtype;
  kv_dtype.kv_lens = &kv_bad;
  PackOptions cu;
  cu.cu_seqlens = true;
  PackOptions int_pad;
  return {
      // merge_attn_states
      {"merge outs 3-D", "outs", [=, &b] { merge(b.Out(), b.Lses(), b.Out2()); }},
      {"merge outs int dtype", "outs", [=, &b] { merge(with_dtype(b.Outs(), DType::i32), b.Lses(), b.Out()); }},
      {"merge outs f64 dtype", "outs", [=, &b] { merge(with_dtype(b.Outs(), DType::f64), b.Lses(), b.Out()); }},
      {"merge outs null", "outs", [=, &b] { merge(null(b.Outs()), b.Lses(), b.Out()); }},
      {"merge lses wrong N", "lses", [=, &b] { merge(b.Outs(), TensorView(b.lses.data(), DType::f32, {1, 3, 4}), b.Out()); }},
      {"merge lses wrong rank", "lses", [=, &b] { merge(b.Outs(), TensorView(b.lses.data(), DType::f32, {2, 12}), b.Out()); }},
      {"merge lses device", "lses", [=, &b] { merge(b.Outs(), on_cuda(b.Lses()), b.Out()); }},
      {"merge out dtype", "out", [=, &b] { merge(b.Outs(), b.Lses(), TensorView(b.f64.data(), DType::f64, {3, 4, 8})); }},
      {"merge out shape", "out", [=, &b] { merge(b.Outs(), b.Lses(), TensorView(b.out.data(), DType::f32, {3, 4, 7})); }},
      {"merge out zero stride", "out", [=, &b] { merge(b.Outs(), b.Lses(), TensorView(b.out.data(), DType::f32, shape3, zero_stride)); }},
      {"merge out negative size", "out", [=, &b] { merge(b.Outs(), b.Lses(), TensorView(b.out.data(), DType::f32, neg_shape)); }},
      {"merge out overlaps outs", "out", [=, &b] { merge(b.Outs(), b.Lses(), TensorView(b.outs.data() + 8, DType::f32, {3, 4, 8})); }},
      {"merge out_lse shape", "out_lse", [=, &b] { merge(b.Outs(), b.Lses(), b.Out(), &lse_wrong); }},
      {"merge out_lse dtype", "out_lse", [=, &b] { merge(b.Outs(), b.Lses(), b.Out(), &lse_i32); }},
      {"merge kv_lens shape", "kv_lens", [=, &b] { merge(b.Outs(), b.Lses(), b.Out(), nullptr, kv_shape); }},
      {"merge kv_lens dtype", "kv_lens", [=, &b] { merge(b.Outs(), b.Lses(), b.Out(), nullptr, kv_dtype); }},
      // correct_attn_out
      {"correct out 4-D", "out", [=, &b] { correct(b.Outs(), b.Lses(), 0, b.Out()); }},
      {"correct rank negative", "rank", [=, &b] { correct(b.Out(), b.Lses(), -1, b.Out()); }},
      {"correct rank too large", "rank", [=, &b] { correct(b.Out(), b.Lses(), 2, b.Out()); }},
      {"correct lses B", "lses", [=, &b] { correct(b.Out(), TensorView(b.lses.data(), DType::f32, {2, 4, 3}), 0, b.Out()); }},
      {"correct lses N = 0", "lses", [=, &b] { correct(b.Out(), TensorView(b.lses.data(), DType::f32, {0, 3, 4}), 0, b.Out()); }},
      {"correct new_out dtype", "new_out", [=, &b] { correct(b.Out(), b.Lses(), 0, TensorView(b.f64.data(), DType::f64, {3, 4, 8})); }},
      {"correct new_out partial overlap", "new_out", [=, &b] { correct(b.Out(), b.Lses(), 0, TensorView(b.out.data() + 1, DType::f32, {3, 4, 8})); }},
      {"correct new_out shifted overlap", "new_out", [=, &b] { correct(TensorView(b.out.data(), DType::f32, {2, 4, 8}), TensorView(b.lses.data(), DType::f32, {2, 2, 4}), 0, TensorView(b.out.data() + 8, DType::f32, {2, 4, 8})); }},
      {"correct new_out overlaps lses", "new_out", [=, &b] { correct(b.Out(), TensorView(b.out2.data(), DType::f32, {1, 3, 4}), 0, b.Out2()); }},
      {"correct new_out broadcast", "new_out", [=, &b] { correct(b.Out(), b.Lses(), 0, strided(b.Out2(), {32, 0, 1})); }},
      {"correct out device", "lses", [=, &b] { correct(on_cuda(b.Out()), b.Lses(), 0, on_cuda(b.Out2())); }},
      // pack_seq
      {"pack x 0-D", "x", [=, &b] { pack_seq(TensorView(b.x.data(), DType::f32, std::span<const int64_t>{}), b.Lengths(), b.Packed()); }},
      {"pack out rank", "out", [=, &b] { pack_seq(b.X(), b.Lengths(), TensorView(b.packed.data(), DType::f32, {3, 20})); }},
      {"pack out dtype", "out", [=, &b] { pack_seq(b.X(), b.Lengths(), with_dtype(b.Packed(), DType::i32)); }},
      {"pack out features", "out", [=, &b] { pack_seq(b.X(), b.Lengths(), TensorView(b.packed.data(), DType::f32, {3, 5, 4})); }},
      {"pack out batch", "out", [=, &b] { pack_seq(b.X(), b.Lengths(), TensorView(b.packed.data(), DType::f32, {2, 4, 5})); }},
      {"pack x strided features", "x", [=, &b] { pack_seq(strided(b.X(), {5, 2}), b.Lengths(), b.Packed()); }},
      {"pack lengths dtype", "lengths", [=, &b] { pack_seq(b.X(), TensorView(b.f_lengths.data(), DType::f32, {3}), b.Packed()); }},
      {"pack lengths 2-D", "lengths", [=, &b] { pack_seq(b.X(), TensorView(b.lengths.data(), DType::i32, {1, 3}), b.Packed()); }},
      {"pack lengths device", "lengths", [=, &b] { pack_seq(b.X(), on_cuda(b.Lengths()), b.Packed()); }},
      {"pack lengths sum", "lengths", [=, &b] { pack_seq(TensorView(b.x.data(), DType::f32, {5, 5}), b.Lengths(), b.Packed()); }},
      {"pack lengths negative", "lengths", [=, &b] {
        std::vector<int32_t> negative = {1, -2, 3};
        pack_seq(TensorView(b.x.data(), DType::f32, {2, 5}), TensorView(negative.data(), DType::i32, {3}), b.Packed());
      }},
      {"pack cu_seqlens empty", "cu_seqlens", [=, &b] { pack_seq(b.X(), TensorView(b.cu.data(), DType::i32, {0}), TensorView(b.packed.data(), DType::f32, {0, 4, 5}), cu); }},
      {"pack cu_seqlens first", "cu_seqlens", [=, &b] { b.cu[0] = 1; pack_seq(b.X(), TensorView(b.cu.data(), DType::i32, {4}), b.Packed(), cu); }},
      {"pack pad not integral", "pad_value", [=, &b] { pack_seq(with_dtype(b.X(), DType::i32), b.Lengths(), with_dtype(b.Packed(), DType::i32)); }},
      {"pack out overlaps x", "out", [=, &b] { pack_seq(b.X(), b.Lengths(), TensorView(b.x.data(), DType::f32, {3, 2, 5})); }},
      // unpack_seq
      {"unpack length past L", "lengths", [=, &b] { unpack_seq(TensorView(b.packed.data(), DType::f32, {3, 2, 5}), b.Lengths(), b.X()); }},
      {"unpack out rows", "lengths", [=, &b] { unpack_seq(b.Packed(), b.Lengths(), TensorView(b.x.data(), DType::f32, {5, 5})); }},
      {"unpack out broadcast", "out", [=, &b] { unpack_seq(b.Packed(), b.Lengths(), strided(b.X(), {0, 1})); }},
      {"unpack packed dims", "packed", [=, &b] { unpack_seq(TensorView(b.packed.data(), DType::f32, {3, 20}), b.Lengths(), b.X()); }},
      // seq_length_stats
      {"stats lengths dtype", "lengths", [=, &b] { seq_length_stats(TensorView(b.f_lengths.data(), DType::f32, {3})); }},
      {"stats cu decreasing", "cu_seqlens", [&b] { b.cu = {0, 3, 2, 6}; seq_length_stats(TensorView(b.cu.data(), DType::i32, {4}), true); }},
  };
}

TEST(BadInput, EveryRowRaisesANamedError) {
  Buffers b;
  for (const BadInput& row : table(b)) {
    SCOPED_TRACE(row.case_name);
    try {
      row.call();
      ADD_FAILURE() << row.case_name << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), row.argument) << e.what();
      const std::string what = e.what();
      EXPECT_NE(what.find("expected"), std::string::npos) << what;
      EXPECT_NE(what.find("got"), std::string::npos) << what;
    }
  }
}

TEST(BadInput, ZeroSizeIsValid) {
  std::vector<float> none(1);
  EXPECT_NO_THROW(merge_attn_states(TensorView(none.data(), DType::f32, {2, 0, 4, 8}),
                                    TensorView(none.data(), DType::f32, {2, 0, 4}),
                                    TensorView(nullptr, DType::f32, {0, 4, 8})));
  std::vector<int32_t> empty_lengths;
  EXPECT_NO_THROW(pack_seq(TensorView(nullptr, DType::f32, {0, 5}), TensorView(nullptr, DType::i32, {0}),
                           TensorView(nullptr, DType::f32, {0, 0, 5})));
  EXPECT_NO_THROW(unpack_seq(TensorView(nullptr, DType::f32, {0, 3, 5}), TensorView(nullptr, DType::i32, {0}),
                             TensorView(nullptr, DType::f32, {0, 5})));
}

}  // namespace
}  // namespace cpattn
