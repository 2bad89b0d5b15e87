// The cost of metadata twins and the scrub media-read rate, in one run:
//  1. create+unlink of many files and allocating 4 KiB writes (each durable on return and group
//     commit), random 4 KiB reads, on a filesystem formatted with twins (default) vs
//     --no-metadata-dup.
//  2. DaxFs::Scrub's data-phase read rate vs memcpy of the same number of bytes.
//  3. The foreground slowdown while an in-process DaxFs::Scrub runs on another thread, limited
//     to --max-rate MiB/s and unlimited: random 4 KiB reads and durable 4 KiB overwrites on the
//     scrub image, alone vs alongside the scrub (restarted until the foreground finishes).
// Interleaved rounds, medians; ratios from numbers measured in the same run.
//   metadup_bench [--dir /dev/shm] [--files 20000] [--writes 20000] [--scrub-mib 512] [--rounds 3]
//                 [--fg-ops 20000] [--max-rate 256]
#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "daxfs/dax.h"
#include "daxfs/filesystem.h"
#include "daxfs/scrub.h"
#include "device/device.h"

namespace {

using bench_util::CheckOk;
using bench_util::Clock;
using bench_util::Median;
using bench_util::Seconds;
using daxfs::Ino;

constexpr uint64_t kBlock = 4096;

char g_image[256] = "";
void CleanUp() {
  if (g_image[0]) {
    unlink(g_image);
    g_image[0] = '\0';
  }
}

std::string MakeImage(const std::string& dir, uint64_t size, bool dup) {
  CleanUp();
  std::string image = fmt::format("{}/metadup_bench-{}.img", dir, getpid());
  unlink(image.c_str());
  CheckOk(daxfs::device::CreateDeviceFile(image, size), "create image");
  std::snprintf(g_image, sizeof g_image, "%s", image.c_str());
  daxfs::FormatOptions fo;
  fo.metadata_dup = dup;
  CheckOk(daxfs::Filesystem::Format(image, fo), "format");
  return image;
}

std::unique_ptr<daxfs::Filesystem> Mount(const std::string& image, daxfs::Durability d) {
  daxfs::MountOptions mo;
  mo.durability = d;
  mo.group_commit_ops = 1024;
  return CheckOk(daxfs::Filesystem::Open(image, mo), "open");
}

// Seconds for creating `n` empty files and then unlinking them all.
double CreateUnlink(const std::string& dir, uint64_t size, bool dup, daxfs::Durability d,
                    uint64_t n) {
  std::string image = MakeImage(dir, size, dup);
  auto fs = Mount(image, d);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i)
    CheckOk(fs->Create(daxfs::kRootIno, fmt::format("f{}", i), 0644), "create");
  for (uint64_t i = 0; i < n; ++i)
    CheckOk(fs->Unlink(daxfs::kRootIno, fmt::format("f{}", i)), "unlink");
  CheckOk(fs->Sync(), "sync");
  double s = Seconds(t0, Clock::now());
  CheckOk(fs->Unmount(), "unmount");
  CleanUp();
  return s;
}

// Seconds for `n` allocating 4 KiB writes at random block offsets into 16 sparse files
// (durability `d`), and for `n` random 4 KiB reads of the written blocks afterwards.
struct WriteRead {
  double write = 0, read = 0;
};
WriteRead Writes(const std::string& dir, uint64_t size, bool dup, daxfs::Durability d, uint64_t n,
                 uint64_t seed) {
  std::string image = MakeImage(dir, size, dup);
  auto fs = Mount(image, d);
  constexpr int kFiles = 16;
  std::vector<Ino> inos;
  for (int i = 0; i < kFiles; ++i) {
    inos.push_back(CheckOk(fs->Create(daxfs::kRootIno, fmt::format("w{}", i), 0644), "create").ino);
  }
  CheckOk(fs->Sync(), "sync");
  std::mt19937_64 rng(seed);
  const uint64_t span_blocks = (4ull << 30) / kBlock;
  std::vector<std::pair<Ino, uint64_t>> done;
  done.reserve(n);
  std::vector<uint8_t> buf(kBlock, 0x5a);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    Ino ino = inos[rng() % kFiles];
    uint64_t off = (rng() % span_blocks) * kBlock;
    std::memcpy(buf.data(), &i, sizeof i);
    CheckOk(fs->Write(ino, off, buf), "write");
    done.emplace_back(ino, off);
  }
  CheckOk(fs->Sync(), "sync");
  WriteRead r;
  r.write = Seconds(t0, Clock::now());
  std::shuffle(done.begin(), done.end(), rng);
  uint64_t sum = 0;
  t0 = Clock::now();
  for (auto& [ino, off] : done) {
    CheckOk(fs->Read(ino, off, buf), "read");
    sum += buf[0];
  }
  r.read = Seconds(t0, Clock::now());
  if (sum == 1) fmt::print("");  // keep the reads
  CheckOk(fs->Unmount(), "unmount");
  CleanUp();
  return r;
}

void Print(const char* name, const std::vector<double>& on, const std::vector<double>& off,
           uint64_t ops) {
  if (on.empty() || off.empty()) {
    for (double v : on) fmt::print("{:<34} twins {:.3f} s\n", name, v);
    for (double v : off) fmt::print("{:<34} no twins {:.3f} s\n", name, v);
    return;
  }
  double a = Median(on), b = Median(off);
  fmt::print("{:<34} {:>9.3f} s {:>9.3f} s {:>7.3f}x  ({:.2f} vs {:.2f} us/op; runs on:", name, a,
             b, a / b, a / ops * 1e6, b / ops * 1e6);
  for (double v : on) fmt::print(" {:.3f}", v);
  fmt::print(" off:");
  for (double v : off) fmt::print(" {:.3f}", v);
  fmt::print(")\n");
}

// Seconds for `n` random 4 KiB reads and for `n` durable random 4 KiB overwrites of the files
// `inos` (1 MiB each) while `scrub_rate` runs: -1 none, 0 unlimited, else bytes/s. Also the bytes
// the scrub's data phases read meanwhile.
struct Foreground {
  double read = 0, write = 0, scrub_bytes = 0, scrub_seconds = 0;
};
Foreground ForegroundRun(daxfs::DaxFs* dax, const std::vector<Ino>& inos, int64_t scrub_rate,
                         bool data_phase_only, uint64_t n, uint64_t seed) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> scrub_bytes{0};
  std::thread scrubber;
  auto start = Clock::now();
  if (scrub_rate >= 0) {
    scrubber = std::thread([&] {
      while (!stop.load()) {
        daxfs::ScrubOptions so;
        so.max_rate = static_cast<uint64_t>(scrub_rate);
        so.stop = &stop;
        if (data_phase_only) so.resume = {.phase = daxfs::ScrubPhase::kData, .block = 0};
        daxfs::ScrubReport rep = CheckOk(dax->Scrub(so), "scrub");
        scrub_bytes += rep.metadata.bytes + rep.data.bytes;
      }
    });
  }
  daxfs::Filesystem& fs = dax->fs();
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> buf(kBlock, 0x77);
  const uint64_t blocks = (1 << 20) / kBlock;
  uint64_t sum = 0;
  Foreground f;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    CheckOk(fs.Read(inos[rng() % inos.size()], (rng() % blocks) * kBlock, buf), "read");
    sum += buf[0];
  }
  auto t1 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    std::memcpy(buf.data(), &i, sizeof i);
    CheckOk(fs.Write(inos[rng() % inos.size()], (rng() % blocks) * kBlock, buf), "write");
  }
  auto t2 = Clock::now();
  f.read = Seconds(t0, t1);
  f.write = Seconds(t1, t2);
  stop = true;
  if (scrubber.joinable()) scrubber.join();
  f.scrub_bytes = static_cast<double>(scrub_bytes.load());
  f.scrub_seconds = Seconds(start, Clock::now());
  if (sum == 1) fmt::print("");  // keep the reads
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"metadata twins cost and scrub read rate"};
  std::string dir = "/dev/shm";
  uint64_t files = 20000, writes = 20000, scrub_mib = 512;
  int rounds = 3;
  uint64_t fg_ops = 20000, max_rate_mib = 256;
  std::string scrub_from = "data";
  std::string only, variant = "both";
  app.add_option("--dir", dir);
  app.add_option("--variant", variant, "both, twins or no-twins (for profiling one of them)");
  app.add_option("--only", only,
                 "run only these workloads (comma-separated: cu-durable, cu-group, wr-durable, "
                 "wr-group, scrub); reads run with wr-group");
  app.add_option("--files", files);
  app.add_option("--writes", writes);
  app.add_option("--scrub-mib", scrub_mib);
  app.add_option("--rounds", rounds);
  app.add_option("--fg-ops", fg_ops, "foreground reads and writes per measurement (part 3)");
  app.add_option("--max-rate", max_rate_mib, "the limited scrub's --max-rate, MiB/s (part 3)");
  app.add_option("--scrub-from", scrub_from,
                 "part 3: 'data' restarts the scrub at its data phase (the media reads --max-rate "
                 "limits), 'start' runs whole scrubs (metadata, index, data) back to back");
  CLI11_PARSE(app, argc, argv);
  bench_util::CleanUpAtExitAndOnSignals(CleanUp);
  auto want = [&](const char* name) {
    return only.empty() || ("," + only + ",").find(std::string(",") + name + ",") != std::string::npos;
  };
  fmt::print("machine: {}\nload average at start: {}\n", bench_util::Machine(),
             bench_util::LoadAverage());

  const uint64_t size = 1ull << 30;
  std::vector<double> cu_d[2], cu_g[2], wr_d[2], wr[2], rd[2];
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      bool dup = ((r + k) % 2) == 0;  // alternate which goes first
      int i = dup ? 0 : 1;
      if ((variant == "twins" && !dup) || (variant == "no-twins" && dup)) continue;
      if (want("cu-durable"))
        cu_d[i].push_back(CreateUnlink(dir, size, dup, daxfs::Durability::kOnReturn, files));
      if (want("cu-group"))
        cu_g[i].push_back(CreateUnlink(dir, size, dup, daxfs::Durability::kGroupCommit, files));
      if (want("wr-durable"))
        wr_d[i].push_back(Writes(dir, size, dup, daxfs::Durability::kOnReturn, writes, 42 + r).write);
      if (want("wr-group")) {
        WriteRead w = Writes(dir, size, dup, daxfs::Durability::kGroupCommit, writes, 42 + r);
        wr[i].push_back(w.write);
        rd[i].push_back(w.read);
      }
    }
  }
  fmt::print("\n1. twins (metadata_dup) vs --no-metadata-dup, median of {} interleaved rounds\n",
             rounds);
  fmt::print("{:<34} {:>11} {:>11} {:>8}\n", "workload", "twins", "no twins", "ratio");
  Print(fmt::format("create+unlink {} files, durable", files).c_str(), cu_d[0], cu_d[1], 2 * files);
  Print(fmt::format("create+unlink {} files, group", files).c_str(), cu_g[0], cu_g[1], 2 * files);
  Print(fmt::format("{} alloc 4 KiB writes, durable", writes).c_str(), wr_d[0], wr_d[1], writes);
  Print(fmt::format("{} alloc 4 KiB writes, group", writes).c_str(), wr[0], wr[1], writes);
  Print(fmt::format("{} random 4 KiB reads", writes).c_str(), rd[0], rd[1], writes);

  if (!want("scrub")) {
    fmt::print("load average at end: {}\n", bench_util::LoadAverage());
    return 0;
  }
  // 2. Scrub: a filesystem holding scrub_mib MiB of data in 1 MiB files.
  std::string image = MakeImage(dir, scrub_mib * (1ull << 20) * 2 + (256ull << 20), true);
  std::vector<Ino> scrub_inos;
  {
    auto fs = Mount(image, daxfs::Durability::kGroupCommit);
    std::vector<uint8_t> buf(1 << 20, 0x33);
    for (uint64_t i = 0; i < scrub_mib; ++i) {
      Ino ino = CheckOk(fs->Create(daxfs::kRootIno, fmt::format("s{}", i), 0644), "create").ino;
      CheckOk(fs->Write(ino, 0, buf), "write");
      scrub_inos.push_back(ino);
    }
    CheckOk(fs->Unmount(), "unmount");
  }
  auto dax = CheckOk(daxfs::DaxFs::Open(image), "dax open");
  std::vector<double> scrub_rate, copy_rate;
  uint64_t bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    daxfs::ScrubReport rep = CheckOk(dax->Scrub({}), "scrub");
    bytes = rep.data.bytes;
    scrub_rate.push_back(static_cast<double>(rep.data.bytes) / rep.data.seconds);
    std::vector<uint8_t> src(bytes, 1), dst(bytes, 0);
    std::memset(src.data(), r + 1, bytes);
    std::memset(dst.data(), 0, bytes);
    auto t0 = Clock::now();
    std::memcpy(dst.data(), src.data(), bytes);
    double s = Seconds(t0, Clock::now());
    if (dst[bytes / 2] != r + 1) bench_util::Fatal("memcpy");
    copy_rate.push_back(static_cast<double>(bytes) / s);
  }
  CheckOk(dax->Unmount(), "unmount");
  dax.reset();
  double sr = Median(scrub_rate), cr = Median(copy_rate);
  fmt::print(
      "\n2. scrub data phase vs memcpy of the same {} MiB, median of {} interleaved rounds\n",
      bytes >> 20, rounds);
  fmt::print("scrub data phase {:.2f} GiB/s, memcpy {:.2f} GiB/s, ratio {:.3f}x  (runs scrub:",
             sr / (1 << 30), cr / (1 << 30), sr / cr);
  for (double v : scrub_rate) fmt::print(" {:.2f}", v / (1 << 30));
  fmt::print(" memcpy:");
  for (double v : copy_rate) fmt::print(" {:.2f}", v / (1 << 30));
  fmt::print(" GiB/s)\n");

  // 3. The foreground alongside a scrub, on the same image, durable on return.
  {
    daxfs::DaxOptions dopt;
    dopt.mount.durability = daxfs::Durability::kOnReturn;
    auto fg = CheckOk(daxfs::DaxFs::Open(image, dopt), "dax open");
    const int64_t modes[3] = {-1, static_cast<int64_t>(max_rate_mib << 20), 0};
    const char* names[3] = {"alone", "", "unlimited scrub"};
    std::string limited = fmt::format("scrub --max-rate {} MiB/s", max_rate_mib);
    names[1] = limited.c_str();
    std::vector<double> rd_s[3], wr_s[3], rate[3];
    {  // warm-up, not counted: every data page mapped once (page faults)
      std::vector<uint8_t> whole(1 << 20);
      for (Ino ino : scrub_inos) CheckOk(fg->fs().Read(ino, 0, whole), "read");
      ForegroundRun(fg.get(), scrub_inos, -1, false, fg_ops, 1);
    }
    for (int r = 0; r < rounds; ++r) {
      for (int k = 0; k < 3; ++k) {
        int m = (r + k) % 3;  // rotate the order between rounds
        Foreground f =
            ForegroundRun(fg.get(), scrub_inos, modes[m], scrub_from == "data", fg_ops, 7 + r);
        rd_s[m].push_back(f.read);
        wr_s[m].push_back(f.write);
        rate[m].push_back(f.scrub_bytes / f.scrub_seconds);
      }
    }
    CheckOk(fg->Unmount(), "unmount");
    fmt::print(
        "\n3. foreground alongside an in-process scrub (other thread), {} random 4 KiB reads then "
        "{} durable 4 KiB overwrites on the {} MiB image, median of {} rounds; scrub from: {}\n",
        fg_ops, fg_ops, scrub_mib, rounds, scrub_from);
    fmt::print("{:<30} {:>12} {:>9} {:>13} {:>9} {:>14}\n", "", "read us/op", "slowdown",
               "write us/op", "slowdown", "scrub MiB/s");
    double rd0 = Median(rd_s[0]), wr0 = Median(wr_s[0]);
    for (int m = 0; m < 3; ++m) {
      double rd = Median(rd_s[m]), wr = Median(wr_s[m]);
      fmt::print("{:<30} {:>12.2f} {:>8.3f}x {:>13.2f} {:>8.3f}x {:>14.0f}  (runs read:", names[m],
                 rd / fg_ops * 1e6, rd / rd0, wr / fg_ops * 1e6, wr / wr0,
                 Median(rate[m]) / (1 << 20));
      for (double v : rd_s[m]) fmt::print(" {:.3f}", v);
      fmt::print(" write:");
      for (double v : wr_s[m]) fmt::print(" {:.3f}", v);
      fmt::print(" s)\n");
    }
  }
  CleanUp();
  fmt::print("load average at end: {}\n", bench_util::LoadAverage());
  return 0;
}
