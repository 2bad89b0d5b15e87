// Reflink, owner lookup and the cost of the rmap, in one run:
//  1. Clone (FICLONE) of a file of N single-block extents: daxfs vs XFS and btrfs (loop devices
//     over /dev/shm images; skipped with a message when not root or a tool is missing).
//  2. Owner lookup of random 4 KiB device ranges on a filesystem aged to many rmap records:
//     daxfs Fsmap (rmap) vs the no-rmap full scan (fs::FsFace::FsmapByFullScan) vs XFS
//     FS_IOC_GETFSMAP.
//  3. Cost of keeping the rmap: random 4 KiB writes into sparse files, rmap on vs off.
// Ratios are computed from numbers measured in the same run.
//   reflink_bench [--dir /dev/shm] [--max-extents 100000] [--records 1000000] [--queries 10000]
//                 [--scan-queries 20] [--ops 100000] [--reps 3] [--parts 1,2,3] [--no-xfs-fsmap]
//                 [--seed 42]
#include <fcntl.h>
#include <fmt/core.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/fsmap.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "daxfs/filesystem.h"
#include "daxfs/status.h"
#include "device/device.h"
#include "fs/face.h"
#include "loopfs.h"

namespace {

using daxfs::bench::CleanUpLoop;
using daxfs::bench::Errno;
using daxfs::bench::FindBinary;
using daxfs::bench::MountLoop;
using daxfs::bench::SetField;
using Clock = std::chrono::steady_clock;
using bench_util::CheckOk;
using bench_util::Fatal;
using bench_util::Median;
using bench_util::Quantile;
using bench_util::Seconds;
using daxfs::Ino;
using daxfs::Result;
using daxfs::Status;

constexpr uint64_t kBlock = 4096;

// ---- Cleanup of what the run made outside the process: the loop mount (loopfs.h) and the
// daxfs image (a fixed buffer, signal-safe calls).
char g_daxfs_image[256] = "";

void CleanUpDaxfs() {
  if (g_daxfs_image[0]) {
    unlink(g_daxfs_image);
    g_daxfs_image[0] = '\0';
  }
}

void CleanUp() {
  CleanUpLoop();
  CleanUpDaxfs();
}

// ---- daxfs on a fresh image file.
struct Daxfs {
  std::unique_ptr<daxfs::Filesystem> fs;
  daxfs::fs::FsFace* impl() { return static_cast<daxfs::fs::FsFace*>(fs.get()); }
};

Daxfs MakeDaxfs(const std::string& dir, uint64_t size, const daxfs::FormatOptions& fo,
                daxfs::Durability durability) {
  CleanUpDaxfs();
  std::string image = fmt::format("{}/reflink_bench-daxfs-{}.img", dir, getpid());
  unlink(image.c_str());
  CheckOk(daxfs::device::CreateDeviceFile(image, size), "create image");
  SetField(g_daxfs_image, sizeof g_daxfs_image, image);
  CheckOk(daxfs::Filesystem::Format(image, fo), "format");
  daxfs::MountOptions mo;
  mo.durability = durability;
  mo.group_commit_ops = 4096;
  Daxfs d;
  d.fs = CheckOk(daxfs::Filesystem::Open(image, mo), "open");
  return d;
}

void CloseDaxfs(Daxfs& d) {
  if (d.fs) CheckOk(d.fs->Unmount(), "unmount");
  d.fs.reset();
  CleanUpDaxfs();
}

// Writes one 4 KiB block at every other block: n extents of one block each.
Ino DaxfsBuildFile(daxfs::Filesystem* fs, const std::string& name, uint64_t n) {
  Ino ino = CheckOk(fs->Create(daxfs::kRootIno, name, 0644), "create").ino;
  CheckOk(fs->Truncate(ino, 2 * n * kBlock), "truncate");  // as on XFS (PosixBuildFile)
  std::vector<uint8_t> buf(kBlock, 0x5a);
  for (uint64_t i = 0; i < n; ++i) {
    std::memcpy(buf.data(), &i, sizeof i);
    CheckOk(fs->Write(ino, 2 * i * kBlock, buf), "write");
  }
  CheckOk(fs->Sync(), "sync");
  return ino;
}

// The file is first extended to its final size so that XFS makes no speculative preallocation
// past EOF (which would turn the holes into unwritten extents).
Status PosixBuildFile(int fd, uint64_t n) {
  if (ftruncate(fd, static_cast<off_t>(2 * n * kBlock)) != 0) return Errno("ftruncate");
  std::vector<uint8_t> buf(kBlock, 0x5a);
  for (uint64_t i = 0; i < n; ++i) {
    std::memcpy(buf.data(), &i, sizeof i);
    if (pwrite(fd, buf.data(), kBlock, static_cast<off_t>(2 * i * kBlock)) !=
        static_cast<ssize_t>(kBlock)) {
      return Errno("pwrite");
    }
  }
  if (fsync(fd) != 0) return Errno("fsync");
  return Status::Ok();
}

// Extent count via FIEMAP; also the lowest and highest physical byte of the mapped data.
struct FiemapInfo {
  uint64_t extents = 0, unwritten = 0, lo = UINT64_MAX, hi = 0;
};
Result<FiemapInfo> Fiemap(int fd) {
  constexpr unsigned kBatch = 4096;
  std::vector<uint8_t> mem(sizeof(fiemap) + kBatch * sizeof(fiemap_extent));
  auto* fm = reinterpret_cast<fiemap*>(mem.data());
  FiemapInfo info;
  uint64_t start = 0;
  for (;;) {
    std::memset(mem.data(), 0, mem.size());
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = kBatch;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) return Errno("FIEMAP");
    if (fm->fm_mapped_extents == 0) break;
    bool last = false;
    for (unsigned i = 0; i < fm->fm_mapped_extents; ++i) {
      const fiemap_extent& e = fm->fm_extents[i];
      ++info.extents;
      if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) ++info.unwritten;
      info.lo = std::min<uint64_t>(info.lo, e.fe_physical);
      info.hi = std::max<uint64_t>(info.hi, e.fe_physical + e.fe_length);
      start = e.fe_logical + e.fe_length;
      if (e.fe_flags & FIEMAP_EXTENT_LAST) last = true;
    }
    if (last) break;
  }
  return info;
}

// ---- Part 1: clone.
struct CloneRow {
  uint64_t n = 0;
  double daxfs_s = 0;
  std::optional<double> xfs_s, btrfs_s;
  uint64_t xfs_extents = 0, btrfs_extents = 0;
};

// Times FICLONE + fsync(dst) of a file of n one-block extents on a mounted filesystem (median of
// `reps`); `extents` gets FIEMAP's count for the source.
Result<double> PosixClone(const std::string& mnt, uint64_t n, int reps, uint64_t* extents) {
  std::string src = fmt::format("{}/src{}", mnt, n);
  int fd = open(src.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Errno("create " + src);
  Status s = PosixBuildFile(fd, n);
  if (!s.ok()) {
    close(fd);
    return s;
  }
  auto fi = Fiemap(fd);
  if (!fi.ok()) {
    close(fd);
    return fi.status();
  }
  *extents = fi->extents;
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    std::string dst = fmt::format("{}/dst{}-{}", mnt, n, r);
    int dfd = open(dst.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (dfd < 0) {
      close(fd);
      return Errno("create " + dst);
    }
    fsync(dfd);
    auto t0 = Clock::now();
    int rc = ioctl(dfd, FICLONE, fd);
    int rc2 = rc == 0 ? fsync(dfd) : 0;
    auto t1 = Clock::now();
    Status st = rc != 0 ? Errno("FICLONE") : rc2 != 0 ? Errno("fsync dst") : Status::Ok();
    close(dfd);
    if (!st.ok()) {
      close(fd);
      return st;
    }
    times.push_back(Seconds(t0, t1));
  }
  close(fd);
  return Median(times);
}

void PartClone(const std::string& dir, const std::vector<uint64_t>& sizes, int reps) {
  fmt::print(
      "\n== 1. Clone (FICLONE) of a file of N one-block extents; durable (daxfs: Clone + Sync;"
      " XFS/btrfs: ioctl(FICLONE) + fsync(dst)); median of {} clones\n",
      reps);
  std::vector<CloneRow> rows;
  uint64_t total = 0;
  for (uint64_t n : sizes) total += n;
  uint64_t image =
      std::max<uint64_t>(1ULL << 30, ((total * kBlock * 4) + (512ULL << 20)) & ~(kBlock - 1));
  {
    Daxfs d = MakeDaxfs(dir, image, {}, daxfs::Durability::kGroupCommit);
    for (uint64_t n : sizes) {
      CloneRow row;
      row.n = n;
      Ino src = DaxfsBuildFile(d.fs.get(), fmt::format("src{}", n), n);
      if (n <= 10000) {
        auto ext = CheckOk(d.fs->Bmap(src), "bmap");
        if (ext.size() != n)
          Fatal(fmt::format("daxfs src{} has {} extents, expected {}", n, ext.size(), n));
      }
      std::vector<double> times;
      for (int r = 0; r < reps; ++r) {
        Ino dst =
            CheckOk(d.fs->Create(daxfs::kRootIno, fmt::format("dst{}-{}", n, r), 0644), "create")
                .ino;
        CheckOk(d.fs->Sync(), "sync");
        auto t0 = Clock::now();
        CheckOk(d.fs->Clone(src, dst), "clone");
        CheckOk(d.fs->Sync(), "sync");
        auto t1 = Clock::now();
        times.push_back(Seconds(t0, t1));
        if (n <= 10000 && r == 0) {
          auto ext = CheckOk(d.fs->Bmap(dst), "bmap");
          if (ext.size() != n || !ext.front().shared)
            Fatal(fmt::format("clone dst{} has {} extents", n, ext.size()));
        }
      }
      row.daxfs_s = Median(times);
      rows.push_back(row);
    }
    CloseDaxfs(d);
  }
  for (const char* fstype : {"xfs", "btrfs"}) {
    auto mnt = MountLoop("reflink_bench", dir, fstype, image);
    if (!mnt.ok()) {
      fmt::print("{} part skipped: {}\n", fstype == std::string("xfs") ? "XFS" : "btrfs",
                 mnt.status().ToString());
      CleanUpLoop();
      continue;
    }
    for (CloneRow& row : rows) {
      uint64_t extents = 0;
      auto t = PosixClone(*mnt, row.n, reps, &extents);
      if (!t.ok()) {
        fmt::print("{} part skipped at N={}: {}\n", fstype, row.n, t.status().ToString());
        break;
      }
      if (fstype == std::string("xfs")) {
        row.xfs_s = *t;
        row.xfs_extents = extents;
      } else {
        row.btrfs_s = *t;
        row.btrfs_extents = extents;
      }
    }
    CleanUpLoop();
  }
  fmt::print("{:>8} | {:>11} {:>9} | {:>11} {:>9} {:>9} {:>11} | {:>11} {:>9} {:>11}\n", "N",
             "daxfs ms", "us/ext", "XFS ms", "us/ext", "ext(FIE)", "daxfs/XFS", "btrfs ms",
             "us/ext", "daxfs/btrfs");
  auto opt = [](std::optional<double> v, double scale) {
    return v ? fmt::format("{:.3f}", *v * scale) : std::string("-");
  };
  for (const CloneRow& r : rows) {
    double n = static_cast<double>(r.n);
    fmt::print("{:>8} | {:>11.3f} {:>9.3f} | {:>11} {:>9} {:>9} {:>11} | {:>11} {:>9} {:>11}\n",
               r.n, r.daxfs_s * 1e3, r.daxfs_s * 1e6 / n, opt(r.xfs_s, 1e3), opt(r.xfs_s, 1e6 / n),
               r.xfs_s ? std::to_string(r.xfs_extents) : "-",
               r.xfs_s ? fmt::format("{:.3f}", r.daxfs_s / *r.xfs_s) : "-", opt(r.btrfs_s, 1e3),
               opt(r.btrfs_s, 1e6 / n),
               r.btrfs_s ? fmt::format("{:.3f}", r.daxfs_s / *r.btrfs_s) : "-");
  }
  fmt::print(
      "target: daxfs <= 0.5 x btrfs at N=100000; daxfs/XFS and daxfs/btrfs <= 1 at every N\n");
}

// ---- Part 2: owner lookup.
struct LookupStats {
  double median_us = 0, p99_us = 0;
  size_t queries = 0;
  double records_per_query = 0;
};

template <typename Fn>
LookupStats TimeQueries(const std::vector<uint64_t>& starts, Fn&& query, double budget_s) {
  std::vector<double> us;
  uint64_t recs = 0;
  auto begin = Clock::now();
  for (uint64_t s : starts) {
    auto t0 = Clock::now();
    recs += query(s);
    auto t1 = Clock::now();
    us.push_back(Seconds(t0, t1) * 1e6);
    if (Seconds(begin, t1) > budget_s) break;
  }
  LookupStats st;
  st.median_us = Median(us);
  st.p99_us = Quantile(us, 0.99);
  st.queries = us.size();
  st.records_per_query =
      us.empty() ? 0 : static_cast<double>(recs) / static_cast<double>(us.size());
  return st;
}

std::vector<uint64_t> RandomStarts(uint64_t lo, uint64_t hi, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(lo / kBlock, (hi - kBlock) / kBlock);
  std::vector<uint64_t> v(count);
  for (auto& x : v) x = pick(rng) * kBlock;
  return v;
}

Result<LookupStats> XfsGetfsmap(const std::string& dir, uint64_t records, uint64_t image,
                                size_t queries, uint64_t seed) {
  ASSIGN_OR_RETURN(std::string mnt, MountLoop("reflink_bench", dir, "xfs", image));
  std::string path = mnt + "/aged";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Errno("create " + path);
  Status s = PosixBuildFile(fd, records);
  auto fi = s.ok() ? Fiemap(fd) : Result<FiemapInfo>(s);
  if (fi.ok()) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  if (!fi.ok()) return fi.status();
  fmt::print("XFS aged file: {} extents by FIEMAP ({} unwritten), data in device bytes [{}, {})\n",
             fi->extents, fi->unwritten, fi->lo, fi->hi);
  int mfd = open(mnt.c_str(), O_RDONLY | O_DIRECTORY);
  if (mfd < 0) return Errno("open " + mnt);
  struct stat mst {};
  if (fstat(mfd, &mst) != 0) {
    close(mfd);
    return Errno("fstat " + mnt);
  }
  // The kernel's new_encode_dev() of the data device: keys name it, or the range is widened.
  uint32_t maj = major(mst.st_dev), min = minor(mst.st_dev);
  uint32_t kdev = (min & 0xff) | (maj << 8) | ((min & ~0xffU) << 12);
  constexpr unsigned kMax = 16;
  std::vector<uint8_t> mem(sizeof(fsmap_head) + kMax * sizeof(fsmap));
  auto* head = reinterpret_cast<fsmap_head*>(mem.data());
  bool failed = false;
  int err = 0;
  auto starts = RandomStarts(fi->lo, fi->hi, queries, seed);
  LookupStats st = TimeQueries(
      starts,
      [&](uint64_t start) -> uint64_t {
        std::memset(mem.data(), 0, sizeof(fsmap_head));
        head->fmh_count = kMax;
        head->fmh_keys[0].fmr_device = kdev;
        head->fmh_keys[0].fmr_physical = start;
        head->fmh_keys[1].fmr_device = kdev;
        head->fmh_keys[1].fmr_physical = start + kBlock - 1;
        head->fmh_keys[1].fmr_owner = UINT64_MAX;
        head->fmh_keys[1].fmr_offset = UINT64_MAX;
        head->fmh_keys[1].fmr_flags = UINT32_MAX;
        if (ioctl(mfd, FS_IOC_GETFSMAP, head) != 0) {
          if (!failed) err = errno;
          failed = true;
          return 0;
        }
        return head->fmh_entries;
      },
      60.0);
  close(mfd);
  if (failed) return Status::Error(err, std::string("FS_IOC_GETFSMAP: ") + std::strerror(err));
  return st;
}

void PartLookup(const std::string& dir, uint64_t records, size_t queries, size_t scan_queries,
                bool xfs, uint64_t seed) {
  struct statvfs sv {};
  uint64_t avail = statvfs(dir.c_str(), &sv) == 0 ? sv.f_bavail * sv.f_frsize : 0;
  uint64_t requested = records;
  // Data (4 KiB a record) plus metadata; keep to half of what is free in `dir`.
  while (records > 1000 && records * kBlock * 3 / 2 > avail / 2) records = records * 3 / 4;
  fmt::print(
      "\n== 2. Owner lookup of random 4 KiB device ranges on a filesystem aged to {} rmap "
      "records (one file, one-block extents at every other block)\n",
      records);
  if (records != requested) {
    fmt::print("NOTE: scaled down from {} records: {} has only {} MiB free\n", requested, dir,
               avail >> 20);
  }
  uint64_t image = (records * kBlock * 3 / 2 + (1ULL << 30)) & ~(kBlock - 1);
  Daxfs d = MakeDaxfs(dir, image, {}, daxfs::Durability::kGroupCommit);
  auto t0 = Clock::now();
  Ino ino = DaxfsBuildFile(d.fs.get(), "aged", records);
  auto t1 = Clock::now();
  auto ext = CheckOk(d.fs->Bmap(ino), "bmap");
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& e : ext) {
    lo = std::min(lo, e.device_offset);
    hi = std::max(hi, e.device_offset + e.length);
  }
  auto whole = CheckOk(d.fs->Fsmap(0, UINT64_MAX, std::nullopt, 0), "fsmap all");
  fmt::print(
      "daxfs aged in {:.1f} s: {} extents by Bmap, {} fsmap records in all, data in device "
      "bytes [{}, {})\n",
      Seconds(t0, t1), ext.size(), whole.size(), lo, hi);
  whole.clear();
  whole.shrink_to_fit();
  auto starts = RandomStarts(lo, hi, queries, seed);
  LookupStats rmap = TimeQueries(
      starts,
      [&](uint64_t s) {
        return CheckOk(d.fs->Fsmap(s, s + kBlock, std::nullopt, 0), "fsmap").size();
      },
      60.0);
  std::vector<uint64_t> scan_starts(starts.begin(),
                                    starts.begin() + std::min(scan_queries, starts.size()));
  LookupStats scan = TimeQueries(
      scan_starts,
      [&](uint64_t s) {
        return CheckOk(d.impl()->FsmapByFullScan(s, s + kBlock, std::nullopt, 0), "fsmap scan")
            .size();
      },
      30.0);
  CloseDaxfs(d);
  std::optional<LookupStats> x;
  if (!xfs) {
    fmt::print("XFS part skipped: --no-xfs-fsmap\n");
  } else {
    auto r = XfsGetfsmap(dir, records, image, queries, seed);
    CleanUpLoop();
    if (r.ok()) {
      x = *r;
    } else {
      fmt::print("XFS part skipped: {}\n", r.status().ToString());
    }
  }
  fmt::print("btrfs part skipped: LOGICAL_INO is not implemented in this tool{}\n",
             FindBinary("mkfs.btrfs").empty() ? " (and mkfs.btrfs is not installed here)" : "");
  fmt::print("{:<34} {:>8} {:>12} {:>12} {:>12} {:>14}\n", "method", "queries", "median us",
             "p99 us", "recs/query", "median/rmap");
  auto row = [&](const char* name, const LookupStats& s) {
    fmt::print("{:<34} {:>8} {:>12.2f} {:>12.2f} {:>12.2f} {:>14.1f}\n", name, s.queries,
               s.median_us, s.p99_us, s.records_per_query, s.median_us / rmap.median_us);
  };
  row("daxfs Fsmap (rmap)", rmap);
  row("daxfs FsmapByScan (no-rmap scan)", scan);
  if (x) row("XFS FS_IOC_GETFSMAP (rmapbt)", *x);
  fmt::print("target: daxfs rmap median <= 5 us\n");
}

// ---- Part 3: cost of the rmap.
double RunWrites(const std::string& dir, bool rmap, uint64_t ops, uint64_t seed) {
  daxfs::FormatOptions fo;
  fo.rmap = rmap;
  fo.reflink = rmap;
  uint64_t image = (ops * kBlock * 2 + (1ULL << 30)) & ~(kBlock - 1);
  Daxfs d = MakeDaxfs(dir, image, fo, daxfs::Durability::kGroupCommit);
  constexpr int kFiles = 16;
  std::vector<Ino> files;
  for (int i = 0; i < kFiles; ++i) {
    files.push_back(
        CheckOk(d.fs->Create(daxfs::kRootIno, fmt::format("f{}", i), 0644), "create").ino);
  }
  CheckOk(d.fs->Sync(), "sync");
  std::mt19937_64 rng(seed);
  std::vector<std::pair<Ino, uint64_t>> plan(ops);
  for (auto& p : plan) p = {files[rng() % kFiles], (rng() % (1ULL << 20)) * kBlock};
  std::vector<uint8_t> buf(kBlock, 0x33);
  auto t0 = Clock::now();
  for (const auto& [ino, off] : plan) CheckOk(d.fs->Write(ino, off, buf), "write");
  CheckOk(d.fs->Sync(), "sync");
  auto t1 = Clock::now();
  CloseDaxfs(d);
  return Seconds(t0, t1);
}

void PartCost(const std::string& dir, uint64_t ops, int reps, uint64_t seed) {
  fmt::print(
      "\n== 3. Cost of the rmap: {} random 4 KiB writes into 16 sparse 4 GiB files "
      "(allocating), group commit, Sync at the end; median of {} alternating runs\n",
      ops, reps);
  std::vector<double> on, off;
  for (int r = 0; r < reps; ++r) {
    on.push_back(RunWrites(dir, true, ops, seed + r));
    off.push_back(RunWrites(dir, false, ops, seed + r));
  }
  double t_on = Median(on), t_off = Median(off);
  fmt::print("{:<36} {:>10} {:>12}\n", "format", "seconds", "writes/s");
  fmt::print("{:<36} {:>10.3f} {:>12.0f}\n", "rmap on, reflink on (default)", t_on, ops / t_on);
  fmt::print("{:<36} {:>10.3f} {:>12.0f}\n", "rmap off, reflink off", t_off, ops / t_off);
  fmt::print(
      "ratio time(rmap on)/time(rmap off) = {:.3f}   (per-run on: {}; off: {})\n", t_on / t_off,
      [&] {
        std::string s;
        for (double v : on) s += fmt::format("{:.3f} ", v);
        return s;
      }(),
      [&] {
        std::string s;
        for (double v : off) s += fmt::format("{:.3f} ", v);
        return s;
      }());
  fmt::print("target: <= 1.10\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"daxfs reflink, owner lookup and rmap cost benchmarks"};
  std::string dir = "/dev/shm";
  uint64_t max_extents = 100000, records = 1000000, ops = 100000, seed = 42;
  size_t queries = 10000, scan_queries = 20;
  int reps = 3;
  std::string parts = "1,2,3";
  bool no_xfs_fsmap = false;
  app.add_option("--dir", dir, "where the images go");
  app.add_option("--max-extents", max_extents,
                 "part 1: largest N (N = 1, 1000, 10000, 100000 up to it)");
  app.add_option("--records", records, "part 2: rmap records to age to");
  app.add_option("--queries", queries, "part 2: random lookups (rmap, XFS)");
  app.add_option("--scan-queries", scan_queries, "part 2: lookups by full scan");
  app.add_option("--ops", ops, "part 3: writes per run");
  app.add_option("--reps", reps, "parts 1 and 3: repetitions");
  app.add_option("--parts", parts, "which parts to run, e.g. 1,3");
  app.add_flag("--no-xfs-fsmap", no_xfs_fsmap, "part 2: skip the XFS GETFSMAP comparison");
  app.add_option("--seed", seed);
  CLI11_PARSE(app, argc, argv);

  bench_util::CleanUpAtExitAndOnSignals(CleanUp);

  if (parts.find('1') != std::string::npos) {
    std::vector<uint64_t> sizes;
    for (uint64_t n : {1ULL, 1000ULL, 10000ULL, 100000ULL}) {
      if (n <= max_extents) sizes.push_back(n);
    }
    if (sizes.empty() || sizes.back() != max_extents) sizes.push_back(max_extents);
    PartClone(dir, sizes, reps);
  }
  if (parts.find('2') != std::string::npos)
    PartLookup(dir, records, queries, scan_queries, !no_xfs_fsmap, seed);
  if (parts.find('3') != std::string::npos) PartCost(dir, ops, reps, seed);
  return 0;
}
