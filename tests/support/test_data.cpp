#include "test_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "core/validate.hpp"
#include "cuda/backend.hpp"

namespace cpattn::testing {
namespace {

constexpr int64_t kGuard = 32;  // elements of poison before and after every view
constexpr unsigned char kPoison = 0xFF;  // NaN in every float format, -1 in integers

// Calls fn(index) for every multi-index of `shape`, row-major.
template <class Fn>
void for_each_index(const std::vector<int64_t>& shape, Fn&& fn) {
  for (int64_t s : shape)
    if (s == 0) return;
  std::vector<int64_t> idx(shape.size(), 0);
  while (true) {
    fn(idx);
    int d = static_cast<int>(shape.size()) - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

std::string index_str(const std::vector<int64_t>& idx) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < idx.size(); ++i) o << (i ? ", " : "") << idx[i];
  o << "]";
  return o.str();
}

// Element-wise comparison with the f64 reference; NaN never passes, infinities must match.
class Comparer {
 public:
  Comparer(const char* what, double rtol, double atol) : what_(what), rtol_(rtol), atol_(atol) {}
  void operator()(double got, double ref, const std::vector<int64_t>& idx) {
    ++count_;
    const bool ok = std::isinf(ref) ? got == ref : (!std::isnan(got) && std::fabs(got - ref) <= atol_ + rtol_ * std::fabs(ref));
    if (!ok && wrong_++ == 0) {
      std::ostringstream o;
      o << what_ << index_str(idx) << " = " << got << ", reference " << ref << " (rtol " << rtol_ << ", atol " << atol_ << ")";
      first_ = o.str();
    }
  }
  bool ok() const { return wrong_ == 0; }
  std::string report() const { return std::to_string(wrong_) + " of " + std::to_string(count_) + " wrong; first: " + first_; }

 private:
  const char* what_;
  double rtol_, atol_;
  int64_t count_ = 0, wrong_ = 0;
  std::string first_;
};

}  // namespace

std::string layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::padded: return "padded";
    case Layout::inner: return "inner";
    case Layout::unaligned: return "unaligned";
    case Layout::reversed: return "reversed";
  }
  return "?";
}

bool has_gpu() { return gpus_missing(1).empty(); }

std::string gpus_missing(int count) {
  if (!cuda::compiled()) return "cpattn was built without CUDA";
  const int found = cuda::device_count();
  if (found >= count) return "";
  if (found == 0) return "no CUDA device visible (cudaGetDeviceCount = 0)";
  return "needs " + std::to_string(count) + " GPUs, found " + std::to_string(found);
}

TestTensor::TestTensor(DType dtype, std::vector<int64_t> shape, Device device, Layout layout)
    : dtype_(dtype), shape_(std::move(shape)), strides_(shape_.size()), device_(device) {
  const int nd = static_cast<int>(shape_.size());
  const auto esize = static_cast<int64_t>(dtype_size(dtype));
  const int64_t keep_aligned = std::max<int64_t>(16 / esize, 1);  // padding that keeps 16-byte rows
  int64_t s = layout == Layout::inner ? 2 : 1;
  for (int d = nd - 1; d >= 0; --d) {
    strides_[d] = s;
    int64_t pad = 0;
    if (layout == Layout::padded) pad = keep_aligned;
    if (layout == Layout::inner) pad = 3;
    s = s * std::max<int64_t>(shape_[d], 1) + pad;
  }
  int64_t lo = 0, hi = 0;
  for (int d = 0; d < nd; ++d) hi += (std::max<int64_t>(shape_[d], 1) - 1) * strides_[d];
  if (layout == Layout::reversed && nd > 0) {
    strides_[0] = -strides_[0];
    lo = (std::max<int64_t>(shape_[0], 1) - 1) * strides_[0];
    hi -= lo == 0 ? 0 : -lo;
  }
  base_ = kGuard - lo + (layout == Layout::unaligned ? 1 : 0);
  // round the guard so that base_ * esize stays 16-byte aligned unless asked otherwise
  bytes_ = static_cast<size_t>((base_ + hi + 1 + kGuard) * esize);
  host_.assign(bytes_, kPoison);
  if (device_.type == DeviceType::cuda) device_ptr_ = cuda::device_malloc(bytes_, device_.index);
  upload();
}

TestTensor::~TestTensor() {
  if (device_ptr_) cuda::device_free(device_ptr_, device_.index);
}

TensorView TestTensor::view() const {
  void* root = device_.type == DeviceType::cuda ? device_ptr_ : const_cast<unsigned char*>(host_.data());
  return TensorView(static_cast<char*>(root) + base_ * static_cast<int64_t>(dtype_size(dtype_)), dtype_, shape_,
                    strides_, device_);
}

TensorView TestTensor::host_view() const {
  return TensorView(const_cast<unsigned char*>(host_.data()) + base_ * static_cast<int64_t>(dtype_size(dtype_)), dtype_,
                    shape_, strides_, Device::cpu());
}

int64_t TestTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

int64_t TestTensor::offset(const std::vector<int64_t>& idx) const {
  int64_t off = base_;
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * strides_[d];
  return off;
}

void TestTensor::set(const std::vector<int64_t>& idx, double v) {
  reference::store_element(host_.data(), dtype_, offset(idx), v);
}

double TestTensor::get(const std::vector<int64_t>& idx) const {
  return reference::load(host_view(), offset(idx) - base_);
}

void TestTensor::fill_normal(std::mt19937& rng, double scale) {
  std::normal_distribution<double> normal(0.0, scale);
  std::uniform_int_distribution<int> small(-100, 100);
  for_each_index(shape_, [&](const std::vector<int64_t>& idx) {
    set(idx, dtype_is_float(dtype_) ? normal(rng) : static_cast<double>(dtype_ == DType::u8 ? small(rng) + 100 : small(rng)));
  });
}

void TestTensor::fill(double v) {
  for_each_index(shape_, [&](const std::vector<int64_t>& idx) { set(idx, v); });
}

// On the tensor's GPU: the legacy default stream of that device orders the copies with the
// ops (the library runs them there too), whatever device the test has current.
void TestTensor::upload() {
  if (device_.type == DeviceType::cuda) {
    cuda::DeviceGuard on(device_.index);
    cuda::memcpy_async(device_ptr_, host_.data(), bytes_, nullptr);
    cuda::stream_synchronize(nullptr);
  }
}

void TestTensor::download() {
  if (device_.type == DeviceType::cuda) {
    cuda::DeviceGuard on(device_.index);
    cuda::memcpy_to_host(host_.data(), device_ptr_, bytes_, nullptr);
  }
}

void TestTensor::poison() {
  std::fill(host_.begin(), host_.end(), kPoison);
  upload();
}

bool TestTensor::guard_intact() {
  download();
  std::vector<bool> inside(bytes_, false);
  const auto esize = static_cast<int64_t>(dtype_size(dtype_));
  for_each_index(shape_, [&](const std::vector<int64_t>& idx) {
    for (int64_t i = 0; i < esize; ++i) inside[static_cast<size_t>(offset(idx) * esize + i)] = true;
  });
  for (size_t i = 0; i < bytes_; ++i)
    if (!inside[i] && host_[i] != kPoison) return false;
  return true;
}

std::string MergeCase::describe() const {
  std::ostringstream o;
  o << dtype_name(dtype) << " lse " << dtype_name(lse_dtype) << " N" << N << " B" << B << " H" << H << " D" << D << " "
    << layout_name(layout) << (base == LseBase::two ? " base2" : "") << (adv.nan_lse ? " nan" : "")
    << (adv.pos_inf_lse ? " +inf" : "") << (adv.neg_inf_lse ? " -inf" : "") << (adv.empty_shard_nan_data ? " empty-nan" : "")
    << (adv.all_empty_rows ? " all-empty" : "") << (adv.kv_lens ? " kv_lens" : "") << " seed " << seed;
  return o.str();
}

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::bf16: return 1.0 / 256;   // one rounding is 2^-9
    case DType::f16: return 1.0 / 1024;   // one rounding is 2^-11
    default: return 2e-5;                 // f32 exp/log and accumulation
  }
}

namespace {

struct MergeInputs {
  int64_t rank;  // correct: the partial whose data `data` holds
  TestTensor data, lses;
  std::unique_ptr<TestTensor> kv;
  MergeOptions options;
  MergeOptions host_options;
  TensorView kv_view, kv_host;
  MergeInputs(const MergeCase& c, Device device, std::vector<int64_t> data_shape)
      : rank(c.N - 1 - static_cast<int64_t>(c.seed % static_cast<uint32_t>(std::max<int64_t>(c.N, 1)))),
        data(c.dtype, std::move(data_shape), device, c.layout), lses(c.lse_dtype, {c.N, c.B, c.H}, device, c.layout) {
    std::mt19937 rng(c.seed);
    data.fill_normal(rng);
    lses.fill_normal(rng, 4.0);
    std::uniform_real_distribution<double> u(0, 1);
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const bool merge = data.shape().size() == 4;
    auto poison_row = [&](int64_t r, int64_t b, int64_t h) {
      for (int64_t d = 0; d < c.D; ++d) {
        const double v = d % 3 == 0 ? inf : nan;
        if (merge) data.set({r, b, h, d}, v);
        else data.set({b, h, d}, v);
      }
    };
    for (int64_t r = 0; r < c.N; ++r)
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.H; ++h) {
          const double x = u(rng);
          if (c.adv.nan_lse && x < 0.1) lses.set({r, b, h}, nan);
          else if (c.adv.pos_inf_lse && x < 0.15) lses.set({r, b, h}, inf);
          else if (c.adv.neg_inf_lse && x < 0.2) lses.set({r, b, h}, -inf);
          else if (c.adv.empty_shard_nan_data && x < 0.3) {
            lses.set({r, b, h}, -inf);
            if (merge || r == rank) poison_row(r, b, h);
          }
          if (c.adv.all_empty_rows && b == 0) {
            lses.set({r, b, h}, r % 3 == 0 ? -inf : r % 3 == 1 ? nan : inf);
            if (merge || r == rank) poison_row(r, b, h);
          }
        }
    if (c.adv.kv_lens) {
      kv = std::make_unique<TestTensor>(DType::i32, std::vector<int64_t>{c.N, c.B}, device);
      for (int64_t r = 0; r < c.N; ++r)
        for (int64_t b = 0; b < c.B; ++b) {
          const bool empty = u(rng) < 0.25 || b == 0;
          kv->set({r, b}, empty ? 0 : 1 + r);
          if (empty)  // the attention kernel left garbage there: kv_lens must win
            for (int64_t h = 0; h < c.H; ++h) {
              lses.set({r, b, h}, 5.0 + u(rng));
              if (merge || r == rank) poison_row(r, b, h);
            }
        }
      kv->upload();
      kv_view = kv->view();
      kv_host = kv->host_view();
      options.kv_lens = &kv_view;
      host_options.kv_lens = &kv_host;
    }
    options.lse_base = host_options.lse_base = c.base;
    data.upload();
    lses.upload();
  }
};

::testing::AssertionResult compare_merge(const MergeCase& c, TestTensor& out, TestTensor& lse,
                                         const reference::MergeResult& ref, double data_scale) {
  out.download();
  lse.download();
  Comparer out_cmp("out", tolerance(c.dtype), 1e-5 * data_scale);
  Comparer lse_cmp("lse", 1e-5, 1e-5);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      lse_cmp(lse.get({b, h}), ref.lse[b * c.H + h], {b, h});
      for (int64_t d = 0; d < c.D; ++d) out_cmp(out.get({b, h, d}), ref.out[(b * c.H + h) * c.D + d], {b, h, d});
    }
  if (!out_cmp.ok()) return ::testing::AssertionFailure() << c.describe() << ": " << out_cmp.report();
  if (!lse_cmp.ok()) return ::testing::AssertionFailure() << c.describe() << ": " << lse_cmp.report();
  if (!lse.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside out_lse";
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult check_merge(const MergeCase& c, Device device) {
  MergeInputs in(c, device, {c.N, c.B, c.H, c.D});
  TestTensor out(c.dtype, {c.B, c.H, c.D}, device, c.layout), lse(DType::f32, {c.B, c.H}, device, c.layout);
  out.poison();
  lse.poison();
  const TensorView lse_view = lse.view();
  merge_attn_states(in.data.view(), in.lses.view(), out.view(), &lse_view, in.options);
  const auto ref = reference::merge_attn_states(in.data.host_view(), in.lses.host_view(), in.host_options);
  auto r = compare_merge(c, out, lse, ref, 4.0);
  if (r && !out.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside out";
  return r;
}

::testing::AssertionResult check_correct(const MergeCase& c, Device device, bool in_place) {
  MergeInputs in(c, device, {c.B, c.H, c.D});
  const int64_t rank = in.rank;
  const auto ref = reference::correct_attn_out(in.data.host_view(), in.lses.host_view(), rank, in.host_options);
  TestTensor separate(c.dtype, {c.B, c.H, c.D}, device, c.layout);
  separate.poison();
  TestTensor lse(DType::f32, {c.B, c.H}, device, c.layout);
  lse.poison();
  const TensorView lse_view = lse.view();
  TestTensor& target = in_place ? in.data : separate;
  correct_attn_out(in.data.view(), in.lses.view(), rank, target.view(), &lse_view, in.options);
  auto r = compare_merge(c, target, lse, ref, 4.0);
  if (r && !in_place && !separate.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside new_out";
  return r;
}

namespace {

// The expected fp8 e4m3 element of a merged f64 value: value / scale, saturated at +-448.
double fp8_expected(double value, double scale) { return std::clamp(value / scale, -448.0, 448.0); }

// fp8 out against the f64 reference: one rounding to 3 mantissa bits (2^-4 relative) or,
// below 2^-6, to the subnormal grid (steps of 2^-9); saturated elements exactly +-448.
::testing::AssertionResult compare_fp8(const std::string& what, TestTensor& out, const std::vector<double>& ref,
                                       int64_t B, int64_t H, int64_t D, double scale) {
  out.download();
  Comparer cmp("out", 1.0 / 16, 1.0 / 1024);
  int64_t saturated = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) {
        const double want = fp8_expected(ref[(b * H + h) * D + d], scale);
        const double got = out.get({b, h, d});
        if (std::fabs(want) == 448.0) {
          ++saturated;
          cmp(got == want ? 0.0 : got, 0.0, {b, h, d});  // exactly the largest finite value
        } else {
          cmp(got, want, {b, h, d});
        }
      }
  if (!cmp.ok()) return ::testing::AssertionFailure() << what << ": " << cmp.report() << " (" << saturated << " saturated)";
  if (!out.guard_intact()) return ::testing::AssertionFailure() << what << ": wrote outside out";
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult check_merge_fp8(const MergeCase& c, Device device, double scale) {
  MergeInputs in(c, device, {c.N, c.B, c.H, c.D});
  TestTensor out(DType::fp8_e4m3, {c.B, c.H, c.D}, device, c.layout), lse(DType::f32, {c.B, c.H}, device, c.layout);
  TestTensor scale_tensor(DType::f32, {1}, device);
  scale_tensor.set({0}, scale);
  scale_tensor.upload();
  out.poison();
  lse.poison();
  const TensorView lse_view = lse.view(), scale_view = scale_tensor.view();
  MergeOptions options = in.options;
  options.out_scale = &scale_view;
  merge_attn_states(in.data.view(), in.lses.view(), out.view(), &lse_view, options);
  const auto ref = reference::merge_attn_states(in.data.host_view(), in.lses.host_view(), in.host_options);
  const std::string what = c.describe() + " fp8 out scale " + std::to_string(scale);
  auto r = compare_fp8(what, out, ref.out, c.B, c.H, c.D, scale);
  if (!r) return r;
  lse.download();
  Comparer lse_cmp("lse", 1e-5, 1e-5);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) lse_cmp(lse.get({b, h}), ref.lse[b * c.H + h], {b, h});
  if (!lse_cmp.ok()) return ::testing::AssertionFailure() << what << ": " << lse_cmp.report();
  return ::testing::AssertionSuccess();
}

std::string VarlenCase::describe() const {
  std::ostringstream o;
  o << dtype_name(dtype) << " lse " << dtype_name(lse_dtype) << " offsets " << dtype_name(index_dtype) << " counts [";
  for (size_t i = 0; i < counts.size() && i < 12; ++i) o << (i ? "," : "") << counts[i];
  o << (counts.size() > 12 ? ",..." : "") << "] H" << H << " D" << D << " unused " << unused << " " << layout_name(layout)
    << (base == LseBase::two ? " base2" : "") << (adv.nan_lse ? " nan" : "") << (adv.pos_inf_lse ? " +inf" : "")
    << (adv.neg_inf_lse ? " -inf" : "") << (adv.empty_shard_nan_data ? " empty-nan" : "")
    << (adv.all_empty_rows ? " all-empty" : "") << (fp8_scale > 0 ? " fp8 scale " + std::to_string(fp8_scale) : "")
    << (with_lse ? "" : " no-lse") << " seed " << seed;
  return o.str();
}

::testing::AssertionResult check_merge_varlen(const VarlenCase& c, Device device) {
  const auto B = static_cast<int64_t>(c.counts.size());
  std::vector<int64_t> offsets(static_cast<size_t>(B + 1), 0);
  for (int64_t b = 0; b < B; ++b) offsets[b + 1] = offsets[b] + c.counts[b];
  const int64_t used = offsets[B], P = used + c.unused;
  TestTensor outs(c.dtype, {P, c.H, c.D}, device, c.layout), lses(c.lse_dtype, {P, c.H}, device, c.layout);
  TestTensor offsets_tensor(c.index_dtype, {B + 1}, device);
  std::mt19937 rng(c.seed);
  outs.fill_normal(rng);
  lses.fill_normal(rng, 4.0);
  std::uniform_real_distribution<double> u(0, 1);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  auto poison_partial = [&](int64_t p, int64_t h) {
    for (int64_t d = 0; d < c.D; ++d) outs.set({p, h, d}, d % 3 == 0 ? inf : nan);
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = offsets[b]; p < offsets[b + 1]; ++p)
      for (int64_t h = 0; h < c.H; ++h) {
        const double x = u(rng);
        if (c.adv.nan_lse && x < 0.1) lses.set({p, h}, nan);
        else if (c.adv.pos_inf_lse && x < 0.15) lses.set({p, h}, inf);
        else if (c.adv.neg_inf_lse && x < 0.2) lses.set({p, h}, -inf);
        else if (c.adv.empty_shard_nan_data && x < 0.3) {
          lses.set({p, h}, -inf);
          poison_partial(p, h);
        }
        if (c.adv.all_empty_rows && b == 0) {
          lses.set({p, h}, p % 3 == 0 ? -inf : p % 3 == 1 ? nan : inf);
          poison_partial(p, h);
        }
      }
  for (int64_t p = used; p < P; ++p)  // named by no row: a read would poison the result
    for (int64_t h = 0; h < c.H; ++h) {
      lses.set({p, h}, 50.0);
      poison_partial(p, h);
    }
  for (int64_t b = 0; b <= B; ++b) offsets_tensor.set({b}, static_cast<double>(offsets[b]));
  outs.upload();
  lses.upload();
  offsets_tensor.upload();

  const bool fp8 = c.fp8_scale > 0;
  TestTensor out(fp8 ? DType::fp8_e4m3 : c.dtype, {B, c.H, c.D}, device, c.layout), lse(DType::f32, {B, c.H}, device, c.layout);
  TestTensor scale_tensor(DType::f32, {1}, device);
  scale_tensor.set({0}, fp8 ? c.fp8_scale : 1.0);
  scale_tensor.upload();
  out.poison();
  lse.poison();
  const TensorView lse_view = lse.view(), scale_view = scale_tensor.view();
  MergeOptions options;
  options.lse_base = c.base;
  if (fp8) options.out_scale = &scale_view;
  merge_attn_states_varlen(outs.view(), lses.view(), offsets_tensor.view(), out.view(), c.with_lse ? &lse_view : nullptr,
                           options);

  // the f64 reference, row by row: row b's partials as an [n, 1, H, D] view of the host mirror
  std::vector<double> ref_out(static_cast<size_t>(B * c.H * c.D)), ref_lse(static_cast<size_t>(B * c.H));
  const TensorView outs_host = outs.host_view(), lses_host = lses.host_view();
  MergeOptions host_options;
  host_options.lse_base = c.base;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = c.counts[b];
    const int64_t data_shape[] = {n, 1, c.H, c.D}, data_strides[] = {outs_host.strides[0], 0, outs_host.strides[1], outs_host.strides[2]};
    const int64_t lse_shape[] = {n, 1, c.H}, lse_strides[] = {lses_host.strides[0], 0, lses_host.strides[1]};
    const TensorView row_outs(static_cast<char*>(outs_host.data) + offsets[b] * outs_host.strides[0] * int64_t(outs_host.element_size()),
                              c.dtype, data_shape, data_strides);
    const TensorView row_lses(static_cast<char*>(lses_host.data) + offsets[b] * lses_host.strides[0] * int64_t(lses_host.element_size()),
                              c.lse_dtype, lse_shape, lse_strides);
    const auto r = reference::merge_attn_states(row_outs, row_lses, host_options);
    std::copy(r.out.begin(), r.out.end(), ref_out.begin() + b * c.H * c.D);
    std::copy(r.lse.begin(), r.lse.end(), ref_lse.begin() + b * c.H);
  }
  ::testing::AssertionResult r = ::testing::AssertionSuccess();
  if (fp8) {
    r = compare_fp8(c.describe(), out, ref_out, B, c.H, c.D, c.fp8_scale);
  } else {
    out.download();
    Comparer out_cmp("out", tolerance(c.dtype), 4e-5);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t d = 0; d < c.D; ++d) out_cmp(out.get({b, h, d}), ref_out[(b * c.H + h) * c.D + d], {b, h, d});
    if (!out_cmp.ok()) return ::testing::AssertionFailure() << c.describe() << ": " << out_cmp.report();
    if (!out.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside out";
  }
  if (!r) return r;
  lse.download();
  if (!c.with_lse) {  // no out_lse given: the poison stays everywhere
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        if (!std::isnan(lse.get({b, h}))) return ::testing::AssertionFailure() << c.describe() << ": wrote an lse nobody asked for";
    return ::testing::AssertionSuccess();
  }
  Comparer lse_cmp("lse", 1e-5, 1e-5);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < c.H; ++h) lse_cmp(lse.get({b, h}), ref_lse[b * c.H + h], {b, h});
  if (!lse_cmp.ok()) return ::testing::AssertionFailure() << c.describe() << ": " << lse_cmp.report();
  if (!lse.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside out_lse";
  return ::testing::AssertionSuccess();
}

std::string PackCase::describe() const {
  std::ostringstream o;
  o << dtype_name(dtype) << " lengths [";
  for (size_t i = 0; i < lengths.size() && i < 12; ++i) o << (i ? "," : "") << lengths[i];
  o << (lengths.size() > 12 ? ",..." : "") << "] features " << index_str(features) << " max_len " << max_len
    << (cu_seqlens ? " cu_seqlens" : "") << " " << dtype_name(index_dtype) << " " << layout_name(layout) << " pad "
    << pad_value << (extra_tokens ? " T = sum + " + std::to_string(extra_tokens) : std::string());
  return o.str();
}

namespace {

struct SeqInputs {
  int64_t B, L, T, F;
  std::vector<int64_t> start;
  std::unique_ptr<TestTensor> lengths;
  SeqInputs(const PackCase& c, Device device) {
    B = static_cast<int64_t>(c.lengths.size());
    start.assign(static_cast<size_t>(B + 1), 0);
    int64_t longest = 0;
    for (int64_t b = 0; b < B; ++b) {
      start[b + 1] = start[b] + c.lengths[b];
      longest = std::max(longest, c.lengths[b]);
    }
    T = start[B] + c.extra_tokens;
    L = c.max_len >= 0 ? c.max_len : longest;
    F = 1;
    for (int64_t f : c.features) F *= f;
    lengths = std::make_unique<TestTensor>(c.index_dtype, std::vector<int64_t>{c.cu_seqlens ? B + 1 : B}, device);
    for (int64_t i = 0; i < (c.cu_seqlens ? B + 1 : B); ++i) lengths->set({i}, static_cast<double>(c.cu_seqlens ? start[i] : c.lengths[i]));
    lengths->upload();
  }
  std::vector<int64_t> token_shape(const PackCase& c) const {
    std::vector<int64_t> s{T};
    s.insert(s.end(), c.features.begin(), c.features.end());
    return s;
  }
  std::vector<int64_t> padded_shape(const PackCase& c) const {
    std::vector<int64_t> s{B, L};
    s.insert(s.end(), c.features.begin(), c.features.end());
    return s;
  }
};

// Index of element f of a row whose trailing dims are `features`, appended to `index`.
std::vector<int64_t> with_features(std::vector<int64_t> index, int64_t f, const std::vector<int64_t>& features) {
  std::vector<int64_t> tail(features.size());
  for (int d = static_cast<int>(features.size()) - 1; d >= 0; --d) tail[d] = f % features[d], f /= features[d];
  index.insert(index.end(), tail.begin(), tail.end());
  return index;
}

// Seq layouts: only the leading (token / batch, time) dims may be strided.
Layout seq_layout(Layout l) { return l == Layout::padded || l == Layout::inner ? Layout::contiguous : l; }

// Byte-exact element comparison (pack/unpack are copies).
bool same_bytes(const TestTensor& a, const std::vector<int64_t>& ia, const TestTensor& b, const std::vector<int64_t>& ib) {
  const double x = a.get(ia), y = b.get(ib);
  return (std::isnan(x) && std::isnan(y)) || x == y;
}

}  // namespace

::testing::AssertionResult check_pack(const PackCase& c, Device device) {
  SeqInputs s(c, device);
  TestTensor x(c.dtype, s.token_shape(c), device, seq_layout(c.layout));
  TestTensor out(c.dtype, s.padded_shape(c), device, seq_layout(c.layout));
  std::mt19937 rng(c.seed);
  x.fill_normal(rng);
  for (int64_t t = s.start[s.B]; t < s.T; ++t)  // the batch's padding rows: never read
    for (int64_t f = 0; f < s.F; ++f) x.set(with_features({t}, f, c.features), dtype_is_float(c.dtype) ? NAN : 99.0);
  x.upload();
  out.poison();
  PackOptions o;
  o.pad_value = c.pad_value;
  o.cu_seqlens = c.cu_seqlens;
  pack_seq(x.view(), s.lengths->view(), out.view(), o);
  out.download();
  TestTensor pad(c.dtype, {1});
  pad.set({0}, 0);
  {
    const uint64_t bits = detail::pad_bits(c.pad_value, c.dtype);
    std::memcpy(const_cast<void*>(pad.host_view().data), &bits, dtype_size(c.dtype));
  }
  int64_t wrong = 0;
  std::string first;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < s.L; ++t)
      for (int64_t f = 0; f < s.F; ++f) {
        const auto oi = with_features({b, t}, f, c.features), xi = with_features({s.start[b] + t}, f, c.features);
        const bool ok = t < c.lengths[b] ? same_bytes(out, oi, x, xi) : same_bytes(out, oi, pad, {0});
        if (!ok && wrong++ == 0) first = "out" + index_str(oi) + " = " + std::to_string(out.get(oi));
      }
  if (wrong) return ::testing::AssertionFailure() << c.describe() << ": " << wrong << " wrong; first " << first;
  if (!out.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside out";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult check_unpack(const PackCase& c, Device device) {
  SeqInputs s(c, device);
  TestTensor packed(c.dtype, s.padded_shape(c), device, seq_layout(c.layout));
  TestTensor out(c.dtype, s.token_shape(c), device, seq_layout(c.layout));
  std::mt19937 rng(c.seed);
  packed.fill_normal(rng);
  packed.upload();
  out.poison();
  PackOptions o;
  o.cu_seqlens = c.cu_seqlens;
  unpack_seq(packed.view(), s.lengths->view(), out.view(), o);
  out.download();
  int64_t wrong = 0;
  std::string first;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t t = 0; t < c.lengths[b]; ++t)
      for (int64_t f = 0; f < s.F; ++f) {
        const auto pi = with_features({b, t}, f, c.features), oi = with_features({s.start[b] + t}, f, c.features);
        if (!same_bytes(out, oi, packed, pi) && wrong++ == 0) first = "out" + index_str(oi);
      }
  const TensorView host = out.host_view();
  for (int64_t t = s.start[s.B]; t < s.T; ++t)  // rows past the sum: untouched (still poison)
    for (int64_t f = 0; f < s.F; ++f) {
      const auto oi = with_features({t}, f, c.features);
      int64_t element = 0;
      for (size_t d = 0; d < oi.size(); ++d) element += oi[d] * host.strides[d];
      const auto* bytes = static_cast<const unsigned char*>(host.data) + element * static_cast<int64_t>(dtype_size(c.dtype));
      for (size_t i = 0; i < dtype_size(c.dtype); ++i)
        if (bytes[i] != kPoison && wrong++ == 0) first = "out" + index_str(oi) + " past the sum, written";
    }
  if (wrong) return ::testing::AssertionFailure() << c.describe() << ": " << wrong << " wrong; first " << first;
  if (!out.guard_intact()) return ::testing::AssertionFailure() << c.describe() << ": wrote outside out";
  return ::testing::AssertionSuccess();
}

}  // namespace cpattn::testing
