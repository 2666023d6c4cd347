// Float64 references: the semantics of DESIGN.md section 1 in plain loops.
#include "cpattn/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "../backend/convert.hpp"
#include "cpattn/error.hpp"

namespace cpattn::reference {
namespace {
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double sanitize(double l) { return (std::isnan(l) || l == -kNegInf) ? kNegInf : l; }

// Merged lse and the weight of each partial for one row, in f64.
double weights(const std::vector<double>& l, LseBase base, std::vector<double>& w) {
  const bool base2 = base == LseBase::two;
  const double m = l.empty() ? kNegInf : *std::max_element(l.begin(), l.end());  // no partials: empty
  w.assign(l.size(), 0.0);
  if (m == kNegInf) return kNegInf;
  double s = 0;
  for (double x : l) s += base2 ? std::exp2(x - m) : std::exp(x - m);
  const double lse = m + (base2 ? std::log2(s) : std::log(s));
  for (size_t r = 0; r < l.size(); ++r) w[r] = base2 ? std::exp2(l[r] - lse) : std::exp(l[r] - lse);
  return lse;
}

std::vector<double> row_lses(const TensorView& lses, int64_t b, int64_t h, const MergeOptions& o) {
  std::vector<double> l(static_cast<size_t>(lses.shape[0]));
  for (int64_t r = 0; r < lses.shape[0]; ++r) {
    l[r] = sanitize(load(lses, offset_of(lses, {r, b, h})));
    if (o.kv_lens && load(*o.kv_lens, offset_of(*o.kv_lens, {r, b})) == 0) l[r] = kNegInf;
  }
  return l;
}
}  // namespace

double load_element(const void* p, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f16: return detail::f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::bf16: return detail::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::fp8_e4m3: return detail::fp8_to_f32(static_cast<const uint8_t*>(p)[i], true);
    case DType::fp8_e5m2: return detail::fp8_to_f32(static_cast<const uint8_t*>(p)[i], false);
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::i32: return static_cast<const int32_t*>(p)[i];
    case DType::i16: return static_cast<const int16_t*>(p)[i];
    case DType::i8: return static_cast<const int8_t*>(p)[i];
    case DType::u8: return static_cast<const uint8_t*>(p)[i];
  }
  throw Error("dtype", "a cpattn dtype", std::to_string(static_cast<int>(dtype)));
}

void store_element(void* p, DType dtype, int64_t i, double v) {
  const auto f = [v] { return static_cast<float>(v); };
  switch (dtype) {
    case DType::f64: static_cast<double*>(p)[i] = v; return;
    case DType::f32: static_cast<float*>(p)[i] = f(); return;
    case DType::f16: static_cast<uint16_t*>(p)[i] = detail::f32_to_f16(f()); return;
    case DType::bf16: static_cast<uint16_t*>(p)[i] = detail::f32_to_bf16(f()); return;
    case DType::fp8_e4m3: static_cast<uint8_t*>(p)[i] = detail::f32_to_fp8(f(), true); return;
    case DType::fp8_e5m2: static_cast<uint8_t*>(p)[i] = detail::f32_to_fp8(f(), false); return;
    case DType::i64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); return;
    case DType::i32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); return;
    case DType::i16: static_cast<int16_t*>(p)[i] = static_cast<int16_t>(v); return;
    case DType::i8: static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); return;
    case DType::u8: static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); return;
  }
  throw Error("dtype", "a cpattn dtype", std::to_string(static_cast<int>(dtype)));
}

double load(const TensorView& t, int64_t off) { return load_element(t.data, t.dtype, off); }

int64_t offset_of(const TensorView& t, std::initializer_list<int64_t> index) {
  int64_t off = 0;
  int d = 0;
  for (int64_t i : index) off += i * t.strides[d++];
  return off;
}

MergeResult merge_attn_states(const TensorView& outs, const TensorView& lses, const MergeOptions& o) {
  const int64_t N = outs.shape[0], B = outs.shape[1], H = outs.shape[2], D = outs.shape[3];
  MergeResult res{std::vector<double>(static_cast<size_t>(B * H * D)), std::vector<double>(static_cast<size_t>(B * H))};
  std::vector<double> w;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      res.lse[b * H + h] = weights(row_lses(lses, b, h, o), o.lse_base, w);
      for (int64_t d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t r = 0; r < N; ++r)
          if (w[r] != 0) acc += w[r] * load(outs, offset_of(outs, {r, b, h, d}));
        res.out[(b * H + h) * D + d] = acc;
      }
    }
  return res;
}

MergeResult correct_attn_out(const TensorView& out, const TensorView& lses, int64_t rank, const MergeOptions& o) {
  const int64_t B = out.shape[0], H = out.shape[1], D = out.shape[2];
  MergeResult res{std::vector<double>(static_cast<size_t>(B * H * D)), std::vector<double>(static_cast<size_t>(B * H))};
  std::vector<double> w;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      res.lse[b * H + h] = weights(row_lses(lses, b, h, o), o.lse_base, w);
      for (int64_t d = 0; d < D; ++d)
        res.out[(b * H + h) * D + d] = w[rank] == 0 ? 0.0 : w[rank] * load(out, offset_of(out, {b, h, d}));
    }
  return res;
}

MergeResult attention(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                      int64_t B, int64_t S, int64_t H, int64_t D, const std::vector<int64_t>& kv_len, double scale,
                      const std::vector<int64_t>* kv_begin, const std::vector<int64_t>* kv_end, int64_t kv_heads) {
  if (kv_heads == 0) kv_heads = H;
  if (kv_heads < 1 || H % kv_heads != 0)
    throw Error("kv_heads", "a divisor of H = " + std::to_string(H), std::to_string(kv_heads));
  const int64_t group = H / kv_heads;
  MergeResult res{std::vector<double>(static_cast<size_t>(B * H * D), 0.0),
                  std::vector<double>(static_cast<size_t>(B * H), kNegInf)};
  for (int64_t b = 0; b < B; ++b) {
    const int64_t hi = kv_end ? std::clamp<int64_t>((*kv_end)[b], 0, kv_len[b]) : kv_len[b];
    if (hi > S) throw Error("kv_len", "lengths <= S = " + std::to_string(S), std::to_string(hi));
  }
  // rows are independent; OpenMP (when built with it) keeps MLA-sized demos to seconds
#pragma omp parallel for schedule(dynamic, 1) if (B * H * S * D > (int64_t{1} << 22))
  for (int64_t row = 0; row < B * H; ++row) {
    const int64_t b = row / H, h = row % H, kvh = h / group;
    const int64_t lo = kv_begin ? std::clamp<int64_t>((*kv_begin)[b], 0, kv_len[b]) : 0;
    const int64_t hi = kv_end ? std::clamp<int64_t>((*kv_end)[b], lo, kv_len[b]) : kv_len[b];
    if (hi <= lo) continue;
    std::vector<double> scores(static_cast<size_t>(hi - lo));
    double m = kNegInf;
    for (int64_t s = lo; s < hi; ++s) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += q[row * D + d] * k[((b * S + s) * kv_heads + kvh) * D + d];
      scores[s - lo] = dot * scale;
      m = std::max(m, scores[s - lo]);
    }
    double sum = 0;
    for (double& x : scores) sum += (x = std::exp(x - m));
    for (int64_t s = lo; s < hi; ++s)
      for (int64_t d = 0; d < D; ++d)
        res.out[row * D + d] += scores[s - lo] / sum * v[((b * S + s) * kv_heads + kvh) * D + d];
    res.lse[row] = m + std::log(sum);
  }
  return res;
}

CpAttention make_cp_attention(int64_t B, int64_t S, int64_t H, int64_t D, int64_t ranks, uint32_t seed) {
  if (B < 0 || S < 0 || H < 0 || D < 0 || ranks < 1)
    throw Error("cp attention sizes", "B, S, H, D >= 0 and ranks >= 1",
                "B " + std::to_string(B) + " S " + std::to_string(S) + " H " + std::to_string(H) + " D " +
                    std::to_string(D) + " ranks " + std::to_string(ranks));
  CpAttention p;
  p.B = B, p.S = S, p.H = H, p.D = D, p.ranks = ranks;
  p.scale = D > 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0;
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  auto fill = [&](std::vector<double>& x, size_t n) {
    x.resize(n);
    for (double& e : x) e = normal(rng);
  };
  fill(p.q, static_cast<size_t>(B * H * D));
  fill(p.k, static_cast<size_t>(B * S * D));
  fill(p.v, static_cast<size_t>(B * S * D));
  std::uniform_int_distribution<int64_t> any_len(0, S);
  p.kv_len.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    // row 0 empty, row 1 shorter than the group (some shards empty), the rest random
    if (b == 0) p.kv_len[b] = 0;
    else if (b == 1) p.kv_len[b] = std::min<int64_t>(S, std::max<int64_t>(ranks - 1, 1));
    else p.kv_len[b] = any_len(rng);
  }
  p.full = attention(p.q, p.k, p.v, B, S, H, D, p.kv_len, p.scale, nullptr, nullptr, 1);
  for (int64_t r = 0; r < ranks; ++r) {
    std::vector<int64_t> lo(static_cast<size_t>(B)), hi(static_cast<size_t>(B)), len(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t chunk = (p.kv_len[b] + ranks - 1) / ranks;
      lo[b] = std::min(p.kv_len[b], r * chunk);
      hi[b] = std::min(p.kv_len[b], (r + 1) * chunk);
      len[b] = hi[b] - lo[b];
    }
    p.partial.push_back(attention(p.q, p.k, p.v, B, S, H, D, p.kv_len, p.scale, &lo, &hi, 1));
    p.shard_begin.push_back(std::move(lo));
    p.shard_end.push_back(std::move(hi));
    p.shard_len.push_back(std::move(len));
  }
  return p;
}

}  // namespace cpattn::reference
