#include <algorithm>
#include <cstdint>
#include <cctype>
#include <sstream>

#include "cpattn/error.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn {
namespace {
struct DTypeInfo {
  DType dtype;
  size_t size;
  const char* name;
  bool is_float;
  const char* aliases[3];
};
constexpr DTypeInfo kDTypes[] = {
    {DType::f64, 8, "f64", true, {"float64", "double", nullptr}},
    {DType::f32, 4, "f32", true, {"float32", "float", "fp32"}},
    {DType::f16, 2, "f16", true, {"float16", "half", "fp16"}},
    {DType::bf16, 2, "bf16", true, {"bfloat16", nullptr, nullptr}},
    {DType::fp8_e4m3, 1, "fp8_e4m3", true, {"float8_e4m3fn", "e4m3", nullptr}},
    {DType::fp8_e5m2, 1, "fp8_e5m2", true, {"float8_e5m2", "e5m2", nullptr}},
    {DType::i64, 8, "i64", false, {"int64", "long", nullptr}},
    {DType::i32, 4, "i32", false, {"int32", "int", nullptr}},
    {DType::i16, 2, "i16", false, {"int16", "short", nullptr}},
    {DType::i8, 1, "i8", false, {"int8", nullptr, nullptr}},
    {DType::u8, 1, "u8", false, {"uint8", "byte", nullptr}},
};
const DTypeInfo& info(DType d) {
  for (const auto& i : kDTypes)
    if (i.dtype == d) return i;
  throw Error("dtype", "a cpattn::DType value", std::to_string(static_cast<int>(d)));
}
}  // namespace

size_t dtype_size(DType d) { return info(d).size; }
const char* dtype_name(DType d) { return info(d).name; }
bool dtype_is_float(DType d) { return info(d).is_float; }

DType parse_dtype(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string all;
  for (const auto& i : kDTypes) {
    if (n == i.name) return i.dtype;
    for (const char* a : i.aliases)
      if (a && n == a) return i.dtype;
    all += (all.empty() ? "" : ", ") + std::string(i.name);
  }
  throw Error("dtype", "one of " + all, "'" + name + "'");
}

std::string device_name(Device d) {
  return d.type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(d.index);
}

TensorView::TensorView(void* data_, DType dtype_, std::initializer_list<int64_t> shape_,
                       Device device_)
    : TensorView(data_, dtype_, std::span<const int64_t>(shape_.begin(), shape_.size()), device_) {}

TensorView::TensorView(void* data_, DType dtype_, std::span<const int64_t> shape_, Device device_)
    : data(data_), dtype(dtype_), device(device_) {
  if (shape_.size() > static_cast<size_t>(kMaxDims))
    throw Error("shape", "at most " + std::to_string(kMaxDims) + " dims",
                std::to_string(shape_.size()));
  ndim = static_cast<int>(shape_.size());
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    shape[i] = shape_[i];
    strides[i] = s;
    if (__builtin_mul_overflow(s, std::max<int64_t>(shape_[i], 1), &s)) s = INT64_MAX;  // saturate (found by fuzz_validation)
  }
}

TensorView::TensorView(void* data_, DType dtype_, std::span<const int64_t> shape_,
                       std::span<const int64_t> strides_, Device device_)
    : TensorView(data_, dtype_, shape_, device_) {
  if (strides_.size() != shape_.size())
    throw Error("strides", std::to_string(shape_.size()) + " strides (one per dim)",
                std::to_string(strides_.size()));
  for (int i = 0; i < ndim; ++i) strides[i] = strides_[i];
}

int64_t TensorView::numel() const {  // saturates: validation rejects views this large
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i)
    if (__builtin_mul_overflow(n, shape[i], &n)) return shape[i] < 0 ? INT64_MIN : INT64_MAX;
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != s) return false;
    if (__builtin_mul_overflow(s, shape[i], &s)) s = INT64_MAX;  // unvalidated views reach describe()
  }
  return true;
}

std::string TensorView::describe() const {
  std::ostringstream o;
  o << dtype_name(dtype) << "[";
  for (int i = 0; i < ndim; ++i) o << (i ? ", " : "") << shape[i];
  o << "]";
  if (!is_contiguous()) {
    o << " strides (";
    for (int i = 0; i < ndim; ++i) o << (i ? ", " : "") << strides[i];
    o << ")";
  }
  o << " on " << device_name(device);
  return o.str();
}

}  // namespace cpattn
