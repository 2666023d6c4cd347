#include <cmath>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "cli.hpp"
#include "cpattn/config.hpp"

namespace cpattn::cli {

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  const std::string index = name.rfind("cuda:", 0) == 0 ? name.substr(5) : "";
  if (!index.empty() && index.size() <= 4 && index.find_first_not_of("0123456789") == std::string::npos)
    return Device::cuda(std::stoi(index));
  throw Error("--device", "cpu or cuda[:index]", "'" + name + "'");
}

DType parse_dtype_option(const std::string& name) {
  try {
    return parse_dtype(name);
  } catch (const Error& e) {
    throw Error("--dtype", e.expected(), e.got());
  }
}

LseBase parse_lse_base(const std::string& name) {
  if (name == "e") return LseBase::e;
  if (name == "2") return LseBase::two;
  throw Error("--lse-base", "e or 2", "'" + name + "'");
}

void for_each_rank(const CommonOptions& o, int ranks, Device device,
                   const std::function<void(Communicator&, Device)>& fn) {
  if (o.comm == "local") {
    if (ranks < 1) throw Error("--ranks", "at least 1", std::to_string(ranks));
    run_local_ranks(ranks, [&](Communicator& comm) { fn(comm, device); });
    return;
  }
  // plain "cuda" under mpirun: NcclComm gives each rank its node-local rank's GPU
  const bool pinned = o.device.find(':') != std::string::npos;
  auto comm = make_process_comm(o.comm, device, pinned);
  fn(*comm, device);
}

void fill_values(void* p, DType dtype, int64_t n, uint64_t seed) {
  const bool is_float = dtype_is_float(dtype);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (static_cast<uint64_t>(i) + seed * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 31)) * 0x94D049BB133111EBull;
    const float v = static_cast<float>((z >> 40) & 0xFFFF) / 16384.0f - 2.0f;
    if (is_float) {
      reference::store_element(p, dtype, i, v);
    } else {
      const size_t es = dtype_size(dtype);
      std::memcpy(static_cast<char*>(p) + i * static_cast<int64_t>(es), &z, es);
    }
  }
}

double tolerance(DType dtype) {
  switch (dtype) {
    case DType::bf16: return 1.0 / 256;
    case DType::f16: return 1.0 / 1024;
    default: return 2e-5;
  }
}

std::string Table::row(const std::vector<std::string>& cells) const {
  std::ostringstream o;
  o << " ";
  for (size_t i = 0; i < columns_.size(); ++i)
    o << std::setw(columns_[i].second) << (i < cells.size() ? cells[i] : std::string()) << (i + 1 < columns_.size() ? " " : "\n");
  return o.str();
}

std::string Table::str() const {
  std::ostringstream o;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      const std::string& c = i < cells.size() ? cells[i] : std::string();
      o << std::setw(columns_[i].second) << c << (i + 1 < columns_.size() ? " " : "\n");
    }
  };
  std::vector<std::string> head;
  for (const auto& c : columns_) head.push_back(c.first);
  o << "#";
  line(head);
  for (const auto& r : rows_) {
    o << " ";
    line(r);
  }
  return o.str();
}

std::string fmt(double v, int precision) {
  if (std::isnan(v)) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(precision) << v;
  return o.str();
}

std::string fmt_sci(double v) {
  if (std::isnan(v)) return "-";
  std::ostringstream o;
  o << std::scientific << std::setprecision(1) << v;
  return o.str();
}

std::string fmt_bytes(double bytes) {
  if (std::isnan(bytes)) return "-";
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024 && u < 6) bytes /= 1024, ++u;
  return u == 0 ? fmt(bytes, 0) + " B" : fmt(bytes, 1) + " " + units[u];
}

}  // namespace cpattn::cli
