// Small helpers every scenario benchmark in bench/ uses: timing, quantiles, rounding, and a
// one-line description of the machine and its load for the reports.
#pragma once

#include <fmt/core.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace bench_util {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The q-quantile (0..1) of `v`, nearest rank; 0 for an empty vector.
inline double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}
inline double Median(std::vector<double> v) { return Quantile(std::move(v), 0.5); }

inline uint64_t RoundUp(uint64_t v, uint64_t unit) { return (v + unit - 1) / unit * unit; }

// "/proc/loadavg"'s three load averages.
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  in >> a >> b >> c;
  return fmt::format("{:.2f} {:.2f} {:.2f}", a, b, c);
}

// CPUs, CPU model, memory and kernel.
inline std::string Machine() {
  utsname u{};
  uname(&u);
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  long mem_gib = sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) >> 30;
  return fmt::format("{} cpus ({}), {} GiB RAM, {} {} {} {}", sysconf(_SC_NPROCESSORS_ONLN), cpu,
                     mem_gib, u.sysname, u.release, u.version, u.machine);
}

}  // namespace bench_util
