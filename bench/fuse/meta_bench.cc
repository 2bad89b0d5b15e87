// The metadata workload of the FUSE benchmarks (bench/fuse/run.sh): create, stat and unlink N
// files in a directory with T threads, several passes, medians in operations per second.
// Plain syscalls against any directory; knows nothing of daxfs or FUSE.
#include <fcntl.h>
#include <fmt/core.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <barrier>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

struct Options {
  std::string dir;
  uint64_t files = 100000;
  int threads = 1;
  uint64_t batch = 0;  // files alive at once; 0 = all of them
  int passes = 3;
};

[[noreturn]] void Usage() {
  fmt::print(stderr,
             "usage: meta_bench DIR [--files N] [--threads T] [--batch B] [--passes P]\n"
             "       meta_bench --machine   (one line: CPUs, memory, kernel, load average)\n"
             "  Creates (open O_CREAT|O_EXCL, close), stats and unlinks N files (default 100000)\n"
             "  in DIR, split over T threads (default 1) each in its own subdirectory, B files\n"
             "  alive at once (default all N: create all, stat all, unlink all), P passes\n"
             "  (default 3). Prints the median, min and max of each phase in operations/s.\n");
  std::exit(2);
}

uint64_t Number(const char* s) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v == 0) Usage();
  return v;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--files") {
      o.files = Number(value());
    } else if (a == "--threads") {
      o.threads = int(Number(value()));
    } else if (a == "--batch") {
      o.batch = Number(value());
    } else if (a == "--passes") {
      o.passes = int(Number(value()));
    } else if (a.rfind("--", 0) == 0 || !o.dir.empty()) {
      Usage();
    } else {
      o.dir = a;
    }
  }
  if (o.dir.empty()) Usage();
  if (o.batch == 0 || o.batch > o.files) o.batch = o.files;
  return o;
}

// Where the pass's files live, removed on exit and on SIGINT/SIGTERM/SIGHUP (best effort).
std::string g_work;
void RemoveWork() {
  if (g_work.empty()) return;
  nftw(
      g_work.c_str(), [](const char* p, const struct stat*, int, FTW*) { return remove(p), 0; }, 16,
      FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

enum Phase { kCreate, kStat, kUnlink, kPhases };
constexpr const char* kPhaseNames[kPhases] = {"create", "stat", "unlink"};

// One pass: every thread works through its share of the files in batches; the three phases of a
// batch start together on every thread (a barrier) and each phase's time is wall-clock time from
// its start on all threads to its end on the last one. Returns operations/s per phase.
std::vector<double> RunPass(const Options& o, int pass) {
  const std::string root = fmt::format("{}/pass{}", g_work, pass);
  if (mkdir(root.c_str(), 0755) != 0) bench_util::Fatal("mkdir " + root + ": " + strerror(errno));
  const uint64_t per_thread = o.files / uint64_t(o.threads);
  const uint64_t batch_per_thread = std::max<uint64_t>(1, o.batch / uint64_t(o.threads));
  const uint64_t batches = (per_thread + batch_per_thread - 1) / batch_per_thread;
  std::vector<double> seconds(kPhases, 0.0);
  bench_util::Clock::time_point phase_start;
  std::barrier sync(o.threads);
  // The completion of each barrier marks a phase boundary; thread 0 keeps time between them.
  auto worker = [&](int t) {
    const std::string dir = fmt::format("{}/t{}", root, t);
    if (mkdir(dir.c_str(), 0755) != 0) bench_util::Fatal("mkdir " + dir + ": " + strerror(errno));
    std::string path;
    for (uint64_t b = 0; b < batches; ++b) {
      const uint64_t first = b * batch_per_thread;
      const uint64_t last = std::min(per_thread, first + batch_per_thread);
      for (int ph = 0; ph < kPhases; ++ph) {
        sync.arrive_and_wait();
        if (t == 0) phase_start = bench_util::Clock::now();
        sync.arrive_and_wait();
        for (uint64_t i = first; i < last; ++i) {
          path = fmt::format("{}/f{:07}", dir, i);
          if (ph == kCreate) {
            int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0) bench_util::Fatal("create " + path + ": " + strerror(errno));
            close(fd);
          } else if (ph == kStat) {
            struct stat st;
            if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
              bench_util::Fatal("stat " + path + ": " + strerror(errno));
            }
          } else if (unlink(path.c_str()) != 0) {
            bench_util::Fatal("unlink " + path + ": " + strerror(errno));
          }
        }
        sync.arrive_and_wait();
        if (t == 0) seconds[ph] += bench_util::Seconds(phase_start, bench_util::Clock::now());
      }
    }
    rmdir(dir.c_str());
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < o.threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& th : pool) th.join();
  rmdir(root.c_str());
  std::vector<double> rates;
  const double ops = double(per_thread * uint64_t(o.threads));
  for (double s : seconds) rates.push_back(ops / s);
  return rates;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--machine") {
    fmt::print("{}; load average {}\n", bench_util::Machine(), bench_util::LoadAverage());
    return 0;
  }
  Options o = Parse(argc, argv);
  g_work = fmt::format("{}/meta_bench.{}", o.dir, getpid());
  if (mkdir(g_work.c_str(), 0755) != 0) {
    bench_util::Fatal("mkdir " + g_work + ": " + strerror(errno));
  }
  bench_util::CleanUpAtExitAndOnSignals([] {
    RemoveWork();
    rmdir(g_work.c_str());
  });
  fmt::print("# meta_bench {}: {} files, {} thread(s), {} alive at once, {} pass(es)\n", o.dir,
             o.files / uint64_t(o.threads) * uint64_t(o.threads), o.threads, o.batch, o.passes);
  std::vector<std::vector<double>> rates(kPhases);
  for (int p = 0; p < o.passes; ++p) {
    std::vector<double> r = RunPass(o, p);
    for (int ph = 0; ph < kPhases; ++ph) rates[ph].push_back(r[ph]);
  }
  for (int ph = 0; ph < kPhases; ++ph) {
    fmt::print("{} {:.0f} ops/s (min {:.0f}, max {:.0f})\n", kPhaseNames[ph],
               bench_util::Median(rates[ph]), bench_util::Quantile(rates[ph], 0),
               bench_util::Quantile(rates[ph], 1));
  }
  return 0;
}
