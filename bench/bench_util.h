// Small helpers every scenario benchmark in bench/ uses: timing, quantiles, rounding, a
// one-line description of the machine and its load for the reports, and dying cleanly.
#pragma once

#include <fmt/core.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string_view>

#include "daxfs/status.h"

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

// Runs the tool's `cleanup` (loop devices, images) at exit and on SIGINT, SIGTERM and SIGHUP,
// after which the signal kills the process as usual.
inline void (*g_cleanup)() = nullptr;
inline void CleanUpThenDie(int sig) {
  if (g_cleanup != nullptr) g_cleanup();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
inline void CleanUpAtExitAndOnSignals(void (*cleanup)()) {
  g_cleanup = cleanup;
  std::atexit(cleanup);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, CleanUpThenDie);
}

// "<tool>: message" on stderr, exit 1 (the cleanup runs at exit).
[[noreturn]] inline void Fatal(const std::string& message) {
  fmt::print(stderr, "{}: {}\n", program_invocation_short_name, message);
  std::exit(1);
}
inline void CheckOk(const daxfs::Status& s, std::string_view what) {
  if (!s.ok()) Fatal(fmt::format("daxfs {}: {}", what, s.ToString()));
}
template <typename T>
T CheckOk(daxfs::Result<T> r, std::string_view what) {
  if (!r.ok()) Fatal(fmt::format("daxfs {}: {}", what, r.status().ToString()));
  return std::move(*r);
}

}  // namespace bench_util
