#pragma once
// Non-owning tensor view: {data, dtype, device, shape, strides}. Strides count elements
// (not bytes), as in DLPack and torch. Nothing here allocates or copies.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace cpattn {

enum class DType : uint8_t {
  f64, f32, f16, bf16, fp8_e4m3, fp8_e5m2,  // floating point
  i64, i32, i16, i8, u8,                     // integer
};

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool operator==(const Device&) const = default;
};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
bool dtype_is_float(DType dtype);
// Parses "f32"/"float32"/"bf16"/"bfloat16"/"fp8_e4m3"/... ; throws cpattn::Error otherwise.
DType parse_dtype(const std::string& name);
std::string device_name(Device device);

inline constexpr int kMaxDims = 8;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device{};
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> strides{};  // in elements; may be any sign

  TensorView() = default;
  // Contiguous (row-major) view.
  TensorView(void* data, DType dtype, std::initializer_list<int64_t> shape, Device device = {});
  TensorView(void* data, DType dtype, std::span<const int64_t> shape, Device device = {});
  // Strided view.
  TensorView(void* data, DType dtype, std::span<const int64_t> shape,
             std::span<const int64_t> strides, Device device = {});

  int64_t numel() const;
  int64_t size(int dim) const { return shape[static_cast<size_t>(dim < 0 ? dim + ndim : dim)]; }
  int64_t stride(int dim) const {
    return strides[static_cast<size_t>(dim < 0 ? dim + ndim : dim)];
  }
  size_t element_size() const { return dtype_size(dtype); }
  bool is_contiguous() const;
  bool is_cuda() const { return device.type == DeviceType::cuda; }
  // "bf16[4, 32, 128] strides (4096, 128, 1) on cpu"
  std::string describe() const;
  template <class T>
  T* ptr() const { return static_cast<T*>(data); }
};

}  // namespace cpattn
