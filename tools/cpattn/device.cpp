// device.hpp for the CPU and CUDA: buffers, copies, timing, memory limits, copy bandwidth.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli.hpp"
#include "device.hpp"

#if CPATTN_HAS_CUDA
#include <cuda_runtime.h>
#define CLI_CUDA(call)                                                                       \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) throw Error("CUDA", "success from " #call, cudaGetErrorString(e_)); \
  } while (0)
#endif

namespace cpattn::cli {
#if CPATTN_HAS_CUDA
cudaError_t launch_copy_kernel(void* dst, const void* src, size_t bytes, cudaStream_t stream);  // copy_kernel.cu
#endif
namespace {
using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The number after `key` on its line of a "key value" file (/proc/meminfo, memory.stat,
// /proc/self/status); -1 when absent.
double read_field(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  std::string line, k;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    double v = 0;
    if (in >> k && k == key && in >> v) return v;
  }
  return -1;
}

// A file holding one number; -1 when absent or not a number (cgroup v2 writes "max").
double read_number(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stod(s);
}

void consider(MemoryAvailable& m, double bytes, const std::string& source) {
  if (bytes >= 0 && bytes < m.bytes) m = {bytes, source};
}

// The memory cgroup limits over this process, each less what its group uses (page cache that
// can be dropped not counted): every level from the process's own cgroup up to the mount's
// root (inside a container the mount's root is the container's own cgroup).
void consider_cgroups(MemoryAvailable& m) {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line)) {  // "0::/path" (v2) or "4:memory:/path" (v1)
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const bool v2 = line.compare(0, a, "0") == 0 && controllers.empty();
    bool v1 = false;
    std::istringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');) v1 = v1 || c == "memory";
    if (!v1 && !v2) continue;
    const std::string root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    const std::string limit_file = v2 ? "memory.max" : "memory.limit_in_bytes";
    for (std::string dir = line.substr(b + 1);;) {
      const std::string d = root + (dir == "/" ? "" : dir);
      const double limit = read_number(d + "/" + limit_file);
      if (limit > 0 && limit < 1e18) {  // v1 writes a number near 2^63 for no limit
        const double used = read_number(d + (v2 ? "/memory.current" : "/memory.usage_in_bytes"));
        const double cache = read_field(d + "/memory.stat", v2 ? "inactive_file" : "total_inactive_file");
        consider(m, std::max(0.0, limit - std::max(0.0, used - std::max(0.0, cache))),
                 "the cgroup limit " + d + "/" + limit_file + " of " + fmt_bytes(limit) + " less what the group uses");
      }
      if (dir.empty() || dir == "/") break;
      dir = dir.substr(0, dir.rfind('/'));
      if (dir.empty()) dir = "/";
    }
  }
}

// ulimit -v / -d: the limit less what this process already maps.
void consider_rlimits(MemoryAvailable& m) {
  const struct {
    int resource;
    const char *name, *status_key;
  } limits[] = {{RLIMIT_AS, "the address-space limit (ulimit -v)", "VmSize:"},
                {RLIMIT_DATA, "the data limit (ulimit -d)", "VmData:"}};
  for (const auto& l : limits) {
    rlimit r{};
    if (getrlimit(l.resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) continue;
    const double limit = static_cast<double>(r.rlim_cur), used = std::max(0.0, read_field("/proc/self/status", l.status_key)) * 1024;
    consider(m, std::max(0.0, limit - used), std::string(l.name) + " of " + fmt_bytes(limit) + " less what this process maps");
  }
}

}  // namespace

Buffer::Buffer(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  const size_t n = std::max<size_t>(bytes, 16);
  if (device.type == DeviceType::cuda) {
#if CPATTN_HAS_CUDA
    CLI_CUDA(cudaSetDevice(device.index));
    const cudaError_t e = cudaMalloc(&ptr_, n);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw Error("sizes", "sizes whose buffers fit in the memory of " + device_name(device),
                  "an allocation of " + fmt_bytes(static_cast<double>(n)) + " that failed (out of memory)");
    }
    CLI_CUDA(e);
#else
    throw Error("--device", "cpu (this build has no CUDA)", "cuda");
#endif
  } else {
    ptr_ = std::aligned_alloc(256, (n + 255) / 256 * 256);
    if (!ptr_)
      throw Error("sizes", "sizes whose buffers fit in host memory",
                  "an allocation of " + fmt_bytes(static_cast<double>(n)) + " that failed (out of memory)");
  }
}
Buffer::Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_), device_(o.device_) { o.ptr_ = nullptr; }
Buffer::~Buffer() {
  if (!ptr_) return;
#if CPATTN_HAS_CUDA
  if (device_.type == DeviceType::cuda) {
    cudaFree(ptr_);
    return;
  }
#endif
  std::free(ptr_);
}

void Buffer::upload(const void* host, size_t bytes, size_t offset) {
  if (bytes == 0) return;  // an empty host vector may hand over a null pointer
#if CPATTN_HAS_CUDA
  if (device_.type == DeviceType::cuda) {
    CLI_CUDA(cudaMemcpy(static_cast<char*>(ptr_) + offset, host, bytes, cudaMemcpyHostToDevice));
    return;
  }
#endif
  std::memcpy(static_cast<char*>(ptr_) + offset, host, bytes);
}

void Buffer::download(void* host, size_t bytes, size_t offset) const {
  if (bytes == 0) return;
#if CPATTN_HAS_CUDA
  if (device_.type == DeviceType::cuda) {
    CLI_CUDA(cudaMemcpy(host, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost));
    return;
  }
#endif
  std::memcpy(host, static_cast<const char*>(ptr_) + offset, bytes);
}

bool cuda_available() {
#if CPATTN_HAS_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
#else
  return false;
#endif
}

void check_device(Device device) {
  if (device.type != DeviceType::cuda) return;
#if CPATTN_HAS_CUDA
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n < 1) {
    (void)cudaGetLastError();
    std::string why = e == cudaSuccess || e == cudaErrorNoDevice ? "the CUDA runtime finds none"
                      : e == cudaErrorInsufficientDriver
                          ? "no NVIDIA driver is loaded, or it is older than this cpattn's CUDA runtime"
                          : std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) why += "; CUDA_VISIBLE_DEVICES='" + std::string(visible) + "'";
    throw Error("--device", "cpu (no CUDA device visible: " + why + ")", device_name(device));
  }
  if (device.index >= n)
    throw Error("--device", "cuda:0 to cuda:" + std::to_string(n - 1) + " (" + std::to_string(n) + " visible)", device_name(device));
#else
  throw Error("--device", "cpu (this cpattn was built without CUDA)", device_name(device));
#endif
}

MemoryAvailable memory_available(Device device) {
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    CLI_CUDA(cudaSetDevice(device.index));
    size_t free = 0, total = 0;
    CLI_CUDA(cudaMemGetInfo(&free, &total));
    return {static_cast<double>(free),
            "free memory of " + device_name(device) + " of " + fmt_bytes(static_cast<double>(total)) + ", cudaMemGetInfo"};
  }
#endif
  MemoryAvailable m{INFINITY, "no limit known"};
  const double kb = read_field("/proc/meminfo", "MemAvailable:");
  if (kb >= 0) {
    consider(m, kb * 1024, "MemAvailable in /proc/meminfo");
  } else {
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) consider(m, static_cast<double>(pages) * static_cast<double>(page), "free memory (sysconf)");
  }
  consider_cgroups(m);
  consider_rlimits(m);
  return m;
}

namespace {
std::string memory_name(Device device) {
  return device.type == DeviceType::cuda ? "memory on " + device_name(device) : "host memory";
}
}  // namespace

std::string memory_shortfall(Device device, double needed) {
  const MemoryAvailable m = memory_available(device);
  if (!(needed > m.bytes)) return "";
  return "needs about " + fmt_bytes(needed) + " of " + memory_name(device) + ", " + fmt_bytes(m.bytes) + " available (" +
         m.source + ")";
}

void check_memory(Device device, double needed, const std::string& what, const std::string& detail) {
  const MemoryAvailable m = memory_available(device);
  if (!(needed > m.bytes)) return;
  throw Error("sizes", "sizes that fit in the " + fmt_bytes(m.bytes) + " of " + memory_name(device) + " available (" + m.source + ")",
              what + ", which needs about " + fmt_bytes(needed) + " (" + detail + ")");
}

std::string device_description(Device device) {
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    cudaDeviceProp p{};
    CLI_CUDA(cudaGetDeviceProperties(&p, device.index));
    return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
           std::to_string(p.multiProcessorCount) + " SMs)";
  }
#endif
  (void)device;
  return "CPU";
}

void synchronize(Device device) {
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) CLI_CUDA(cudaDeviceSynchronize());
#endif
  (void)device;
}

double time_us(Device device, Context& ctx, const std::function<void()>& fn, int calls, int warmup) {
  calls = std::max(calls, 1);
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    // the legacy default stream cannot be captured: time on a stream of our own
    const Stream caller_stream = ctx.stream();
    cudaStream_t s;
    CLI_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CLI_CUDA(cudaDeviceSynchronize());
    ctx.set_stream(s);
    for (int i = 0; i < std::max(warmup, 1); ++i) fn();
    CLI_CUDA(cudaStreamSynchronize(s));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CLI_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < calls; ++i) fn();
    CLI_CUDA(cudaStreamEndCapture(s, &graph));
    CLI_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t a, b;
    CLI_CUDA(cudaEventCreate(&a));
    CLI_CUDA(cudaEventCreate(&b));
    CLI_CUDA(cudaGraphLaunch(exec, s));  // upload + warm
    std::vector<double> t;
    for (int rep = 0; rep < 9; ++rep) {
      CLI_CUDA(cudaEventRecord(a, s));
      CLI_CUDA(cudaGraphLaunch(exec, s));
      CLI_CUDA(cudaEventRecord(b, s));
      CLI_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      CLI_CUDA(cudaEventElapsedTime(&ms, a, b));
      t.push_back(1e3 * ms / calls);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    ctx.set_stream(caller_stream);
    cudaStreamDestroy(s);
    return median(t);
  }
#endif
  (void)device;
  (void)ctx;
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < calls; ++i) {
    const auto start = Clock::now();
    fn();
    t.push_back(us_since(start));
  }
  return median(t);
}

CopyBandwidth copy_bandwidth(Device device, size_t bytes) {
  Buffer src(bytes, device), dst(bytes, device);
  const auto gbs = [&](double us) { return 2.0 * static_cast<double>(bytes) / us / 1e3; };
  CopyBandwidth result;
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    CLI_CUDA(cudaMemset(src.data(), 1, bytes));
    Context ctx(device);
    const auto stream = [&] { return reinterpret_cast<cudaStream_t>(ctx.stream()); };
    // eager calls timed with events: captured in a graph, a memcpy node runs on the copy
    // engines at about two thirds of this
    cudaEvent_t start, stop;
    CLI_CUDA(cudaEventCreate(&start));
    CLI_CUDA(cudaEventCreate(&stop));
    std::vector<double> per_call;
    for (int round = 0; round < 5; ++round) {
      const int calls = 4;
      CLI_CUDA(cudaEventRecord(start, stream()));
      for (int i = 0; i < calls; ++i) CLI_CUDA(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, stream()));
      CLI_CUDA(cudaEventRecord(stop, stream()));
      CLI_CUDA(cudaEventSynchronize(stop));
      float ms = 0;
      CLI_CUDA(cudaEventElapsedTime(&ms, start, stop));
      if (round > 0) per_call.push_back(1e3 * ms / calls);  // round 0 warms up
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(per_call.begin(), per_call.end());
    result.memcpy_gbs = gbs(per_call[per_call.size() / 2]);
    result.kernel_gbs = gbs(time_us(device, ctx, [&] { CLI_CUDA(launch_copy_kernel(dst.data(), src.data(), bytes, stream())); }, 5, 2));
    return result;
  }
#endif
  // CPU: the same OpenMP threads the kernels use, each copying its own slice
  std::memset(src.data(), 1, bytes);
  std::memset(dst.data(), 0, bytes);
  Context ctx;
  result.memcpy_gbs = gbs(time_us(device, ctx, [&] {
    const auto n = static_cast<int64_t>(bytes), chunk = int64_t{1} << 20;
#pragma omp parallel for schedule(static)
    for (int64_t off = 0; off < n; off += chunk)
      std::memcpy(static_cast<char*>(dst.data()) + off, static_cast<const char*>(src.data()) + off,
                  static_cast<size_t>(std::min(chunk, n - off)));
  }, 7, 2));
  return result;
}

double host_us_per_call(Device device, const std::function<void()>& fn, int calls) {
  for (int i = 0; i < 20; ++i) fn();
  synchronize(device);
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) fn();
  const double us = us_since(start) / calls;
  synchronize(device);
  return us;
}

}  // namespace cpattn::cli
