// DAX mappings and failure routing, in one run; every ratio is between numbers measured
// in that run:
//  1. Mapped bandwidth: a file mapped through DaxFs::Map, read and written with memcpy in chunks
//     (writes with and without Mapping::Persist), vs raw memcpy over a hand-made MAP_SHARED
//     mapping of the very device ranges behind the file, vs XFS (reflink, rmapbt) on a loop
//     device over /dev/shm, file mmap'd MAP_SHARED, page cache warm (skipped with a message
//     when not root or a tool is missing).
//  2. The owner-tracking designs side by side (none, fs-rmap, page-rmap, extent-space), each in
//     its own DaxFs mount of a copy of the same image: map+unmap throughput, tracking memory per
//     mapped page, FindVictims latency (median, p99), for many small mappings, a few huge ones,
//     and blocks shared by many mapped files; one real NotifyFailure per design at the end.
//  3. Victims on a file of ~1M one-block extents: fs-rmap vs the no-rmap full scan (FindVictims
//     and Fsmap), a few ranges mapped.
// Uses the public API (daxfs/dax.h) plus fs/face.h for FsmapByFullScan; knows nothing else of the
// engine.
//   dax_bench [--parts 1,2,3] [--reps 5] [--dir /dev/shm] [--size 1G] [--chunk 2M] [--no-xfs]
//             [--small-maps 10000] [--huge-maps 4] [--huge-size 256M] [--owners 100,10000]
//             [--queries 1000] [--extents 1000000] [--p3-maps 8] [--p3-queries 1000]
//             [--scan-queries 5] [--seed 42]
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "daxfs/dax.h"
#include "daxfs/filesystem.h"
#include "daxfs/status.h"
#include "device/device.h"
#include "fs/face.h"
#include "loopfs.h"

namespace {

using daxfs::DaxFs;
using daxfs::Ino;
using daxfs::Mapping;
using daxfs::MapProt;
using daxfs::Result;
using daxfs::Status;
using daxfs::Tracking;
using daxfs::Victim;
using daxfs::bench::CleanUpLoop;
using daxfs::bench::Errno;
using daxfs::bench::g_loop;
using daxfs::bench::MountLoop;
using daxfs::bench::SetField;
using Clock = std::chrono::steady_clock;
using bench_util::CheckOk;
using bench_util::Fatal;
using bench_util::LoadAverage;
using bench_util::Machine;
using bench_util::Median;
using bench_util::Quantile;
using bench_util::RoundUp;
using bench_util::Seconds;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kMiB = 1ULL << 20;

uint64_t ParseSize(const std::string& s) {
  size_t pos = 0;
  uint64_t v = std::stoull(s, &pos);
  std::string suffix = s.substr(pos);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();
  if (suffix.size() > 1 && suffix.back() == 'i') suffix.pop_back();
  if (suffix.empty()) return v;
  if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        return v << 10;
      case 'm':
      case 'M':
        return v << 20;
      case 'g':
      case 'G':
        return v << 30;
    }
  }
  throw std::invalid_argument("bad size suffix in " + s);
}

// ---- Cleanup of the images the run made (fixed buffers, signal-safe calls) and of the XFS
// loop mount (loopfs.h).

constexpr int kMaxImages = 8;
char g_images[kMaxImages][256];

void ForgetImage(const std::string& path) {
  for (auto& slot : g_images) {
    if (path == slot) slot[0] = '\0';
  }
}

void RemoveImage(const std::string& path) {
  unlink(path.c_str());
  unlink((path + ".badblocks").c_str());
  ForgetImage(path);
}

void CleanUp() {
  CleanUpLoop();
  for (auto& slot : g_images) {
    if (slot[0]) {
      unlink(slot);
      slot[0] = '\0';
    }
  }
}

// Records `path` for cleanup (before it exists, so that an interrupt removes it too).
void TrackImage(const std::string& path) {
  for (auto& slot : g_images) {
    if (!slot[0]) {
      SetField(slot, sizeof slot, path);
      return;
    }
  }
  Fatal("too many images");
}

// A sparse image file: tmpfs allocates its pages as the filesystem first touches them, so
// copies and the aged image cost only the bytes in use.
std::string MakeSparseImage(const std::string& dir, const std::string& name, uint64_t size) {
  std::string path = fmt::format("{}/dax_bench-{}-{}.img", dir, name, getpid());
  TrackImage(path);
  unlink(path.c_str());
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  if (fd < 0) Fatal(Errno("create " + path).ToString());
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) Fatal(Errno("truncate " + path).ToString());
  close(fd);
  return path;
}

// Copies `from` into a new sparse file, skipping all-zero 1 MiB pieces.
std::string CopyImage(const std::string& from, const std::string& dir, const std::string& name) {
  struct stat st {};
  if (stat(from.c_str(), &st) != 0) Fatal(Errno("stat " + from).ToString());
  std::string to = MakeSparseImage(dir, name, static_cast<uint64_t>(st.st_size));
  int in = open(from.c_str(), O_RDONLY), out = open(to.c_str(), O_WRONLY);
  if (in < 0 || out < 0) Fatal(Errno("open images to copy").ToString());
  std::vector<uint8_t> buf(kMiB), zero(kMiB, 0);
  for (off_t off = 0;;) {
    ssize_t n = pread(in, buf.data(), buf.size(), off);
    if (n < 0) Fatal(Errno("read " + from).ToString());
    if (n == 0) break;
    if (std::memcmp(buf.data(), zero.data(), static_cast<size_t>(n)) != 0 &&
        pwrite(out, buf.data(), static_cast<size_t>(n), off) != n) {
      Fatal(Errno("write " + to).ToString());
    }
    off += n;
  }
  close(in);
  close(out);
  return to;
}

daxfs::DaxOptions DaxOptionsFor(Tracking design, std::vector<Tracking> shadows = {}) {
  daxfs::DaxOptions o;
  o.mount.durability = daxfs::Durability::kGroupCommit;
  o.mount.group_commit_ops = 4096;
  o.tracking = design;
  o.shadow_tracking = std::move(shadows);
  o.scan_bad_blocks = false;
  o.handle_signals = false;
  return o;
}

// Every 4 KiB block starts with its file block number, so reads check what they got.
void Stamp(uint8_t* buf, uint64_t bytes, uint64_t first_block) {
  for (uint64_t b = 0; b < bytes / kBlock; ++b) {
    uint64_t v = first_block + b;
    std::memcpy(buf + b * kBlock, &v, sizeof v);
  }
}

// Writes [0, size) of `ino` in 8 MiB stamped writes.
void DaxfsFill(daxfs::Filesystem& fs, Ino ino, uint64_t size) {
  std::vector<uint8_t> buf(8 * kMiB, 0x5a);
  for (uint64_t off = 0; off < size; off += buf.size()) {
    uint64_t n = std::min<uint64_t>(buf.size(), size - off);
    Stamp(buf.data(), n, off / kBlock);
    CheckOk(fs.Write(ino, off, std::span<const uint8_t>(buf.data(), n)), "write");
  }
}

// The device byte behind file offset `off` (which must be mapped).
uint64_t DeviceOffsetOf(const std::vector<daxfs::FileExtent>& extents, uint64_t off) {
  auto it =
      std::upper_bound(extents.begin(), extents.end(), off,
                       [](uint64_t o, const daxfs::FileExtent& e) { return o < e.file_offset; });
  if (it == extents.begin()) Fatal(fmt::format("file offset {} is not mapped", off));
  --it;
  if (off >= it->file_offset + it->length) Fatal(fmt::format("file offset {} is not mapped", off));
  return it->device_offset + (off - it->file_offset);
}

// ---- Summary rows (printed as one markdown table at the end).

struct Row {
  std::string measure;
  std::string value;
  std::string baseline;  // name and value
  std::string ratio;
  std::string target;
  std::string met;
};
std::vector<Row> g_rows;

std::string Met(bool ok) { return ok ? "met" : "NOT met"; }

// ===================================================================================== Part 1

// Memcpy loops over a mapped file, in `chunk` pieces: each returns MiB/s.
struct Loops {
  uint64_t size = 0;
  uint64_t chunk = 0;
  std::vector<uint8_t> buf;

  double Read(const uint8_t* base) {
    uint64_t bad = 0;
    auto t0 = Clock::now();
    for (uint64_t off = 0; off < size; off += chunk) {
      std::memcpy(buf.data(), base + off, chunk);
      uint64_t v;
      std::memcpy(&v, buf.data(), sizeof v);
      bad += v != off / kBlock;
    }
    double s = Seconds(t0, Clock::now());
    if (bad) Fatal(fmt::format("{} chunks read a wrong stamp", bad));
    return static_cast<double>(size) / kMiB / s;
  }
  // Stores the bytes the file already holds (same stamps); `persist(offset, length)` after each
  // chunk when given.
  double Write(uint8_t* base, const std::function<Status(uint64_t, uint64_t)>& persist) {
    auto t0 = Clock::now();
    for (uint64_t off = 0; off < size; off += chunk) {
      Stamp(buf.data(), chunk, off / kBlock);
      std::memcpy(base + off, buf.data(), chunk);
      if (persist) CheckOk(persist(off, chunk), "persist");
    }
    return static_cast<double>(size) / kMiB / Seconds(t0, Clock::now());
  }
};

// The physical limit: the device ranges behind the file mapped by hand (MAP_SHARED, MAP_FIXED
// per extent into one reserved range, as the engine does) from a second descriptor of the image.
class RawMapping {
 public:
  ~RawMapping() { Unmap(); }
  Status Map(const std::string& image, const std::vector<daxfs::FileExtent>& extents,
             uint64_t size) {
    int fd = open(image.c_str(), O_RDWR);
    if (fd < 0) return Errno("open " + image);
    void* r = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) {
      close(fd);
      return Errno("reserve");
    }
    base_ = static_cast<uint8_t*>(r);
    size_ = size;
    for (const daxfs::FileExtent& e : extents) {
      if (e.file_offset >= size) continue;
      uint64_t n = std::min(e.length, size - e.file_offset);
      if (mmap(base_ + e.file_offset, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
               static_cast<off_t>(e.device_offset)) == MAP_FAILED) {
        Status s = Errno("mmap extent");
        close(fd);
        return s;
      }
    }
    close(fd);
    return Status::Ok();
  }
  void Unmap() {
    if (base_) munmap(base_, size_);
    base_ = nullptr;
  }
  uint8_t* data() const { return base_; }

 private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

// Sums a /proc/self/smaps field (kB) over the VMAs inside [base, +len): how the kernel maps the
// pages (e.g. FilePmdMapped, Rss).
uint64_t SmapsKb(const void* base, uint64_t len, const std::string& field) {
  auto lo = reinterpret_cast<uintptr_t>(base), hi = lo + len;
  std::ifstream in("/proc/self/smaps");
  bool inside = false;
  uint64_t kb = 0;
  for (std::string line; std::getline(in, line);) {
    uintptr_t a = 0, b = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &a, &b) == 2 && line.find('-') < 17) {
      inside = a >= lo && b <= hi;
      continue;
    }
    if (inside && line.rfind(field + ":", 0) == 0) kb += std::stoull(line.substr(field.size() + 1));
  }
  return kb;
}

Status Msync(uint8_t* base, uint64_t off, uint64_t len) {
  return msync(base + off, len, MS_SYNC) == 0 ? Status::Ok() : Errno("msync");
}

// XFS with reflink and rmapbt on a loop device: the same file written with pwrite, fsync'd, then
// mmap'd MAP_SHARED (its pages stay in the page cache: warm).
struct XfsFile {
  std::string mnt;
  int fd = -1;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  ~XfsFile() { Close(); }
  void Close() {
    if (base) munmap(base, size);
    base = nullptr;
    if (fd >= 0) close(fd);
    fd = -1;
  }
  Status Open(const std::string& dir, uint64_t file_size) {
    size = file_size;
    ASSIGN_OR_RETURN(mnt,
                     MountLoop("dax_bench", dir, "xfs", RoundUp(2 * size + 512 * kMiB, 64 * kMiB)));
    std::string path = mnt + "/data";
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return Errno("create " + path);
    std::vector<uint8_t> buf(8 * kMiB, 0x5a);
    for (uint64_t off = 0; off < size; off += buf.size()) {
      uint64_t n = std::min<uint64_t>(buf.size(), size - off);
      Stamp(buf.data(), n, off / kBlock);
      if (pwrite(fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
        return Errno("pwrite");
    }
    if (fsync(fd) != 0) return Errno("fsync");
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Errno("mmap");
    base = static_cast<uint8_t*>(p);
    return Status::Ok();
  }
};

struct Series {
  std::string name;
  std::vector<double> v;
  double median() const { return Median(v); }
  std::string Text() const {
    std::string s;
    for (double x : v) s += fmt::format("{}{:.0f}", s.empty() ? "" : " ", x);
    return fmt::format("{:.0f} ({})", median(), s);
  }
};

void PartBandwidth(const std::string& dir, uint64_t size, uint64_t chunk, int reps, bool want_xfs) {
  fmt::print(
      "\n== 1. Mapped bandwidth: a {} MiB file, memcpy in {} KiB chunks; median of {} "
      "repetitions, contenders alternating within each\n",
      size / kMiB, chunk >> 10, reps);
  std::string image = fmt::format("{}/dax_bench-bw-{}.img", dir, getpid());
  TrackImage(image);
  unlink(image.c_str());
  CheckOk(daxfs::device::CreateDeviceFile(image, RoundUp(size + size / 4 + 512 * kMiB, 64 * kMiB)),
          "create image");
  CheckOk(daxfs::Filesystem::Format(image, {}), "format");
  auto dax = CheckOk(DaxFs::Open(image, DaxOptionsFor(Tracking::kFsRmap)), "open");
  Ino ino = CheckOk(dax->fs().Create(daxfs::kRootIno, "data", 0644), "create").ino;
  DaxfsFill(dax->fs(), ino, size);
  CheckOk(dax->fs().Sync(), "sync");
  auto extents = CheckOk(dax->fs().Bmap(ino), "bmap");
  auto ro = CheckOk(dax->Map(ino, 0, size, MapProt::kRead), "map read-only");
  auto rw = CheckOk(dax->Map(ino, 0, size, MapProt::kReadWrite), "map read-write");
  RawMapping raw;
  CheckOk(raw.Map(image, extents, size), "raw mapping of the device ranges");
  fmt::print("daxfs: {} extent(s) behind the file; fs-rmap tracking; device {} (preallocated)\n",
             extents.size(), image);

  std::unique_ptr<XfsFile> xfs;
  if (!want_xfs) {
    fmt::print("XFS part skipped: --no-xfs\n");
  } else {
    xfs = std::make_unique<XfsFile>();
    Status s = xfs->Open(dir, size);
    if (!s.ok()) {
      fmt::print("XFS part skipped: {}\n", s.ToString());
      xfs.reset();
      CleanUpLoop();
    } else {
      fmt::print(
          "XFS: mkfs.xfs -f -m reflink=1,rmapbt=1 on {} over {} (sparse), file written with "
          "pwrite + fsync, then mmap MAP_SHARED; its pages stay in the page cache (warm)\n",
          g_loop.loop_dev, g_loop.image);
    }
  }

  Loops loops{size, chunk, std::vector<uint8_t>(chunk)};
  // One untimed pass of each first: the page tables of every mapping are then filled.
  loops.Read(ro->data());
  loops.Write(rw->data(), {});
  loops.Read(raw.data());
  loops.Write(raw.data(), {});
  if (xfs) {
    loops.Read(xfs->base);
    loops.Write(xfs->base, {});
    msync(xfs->base, size, MS_SYNC);
  }

  auto pmd = [&](const void* p) {
    return fmt::format(
        "Rss {} MiB, of it PMD-mapped (2 MiB pages) {} MiB", SmapsKb(p, size, "Rss") >> 10,
        (SmapsKb(p, size, "FilePmdMapped") + SmapsKb(p, size, "ShmemPmdMapped")) >> 10);
  };
  fmt::print("page tables after the untimed pass: daxfs read-only mapping: {}; raw: {}{}\n",
             pmd(ro->data()), pmd(raw.data()), xfs ? "; XFS: " + pmd(xfs->base) : "");

  Series d_read{"daxfs"}, r_read{"raw"}, x_read{"XFS"};
  Series d_write{"daxfs"}, r_write{"raw"}, x_write{"XFS"};
  Series d_wp{"daxfs"}, r_wp{"raw"}, x_wp{"XFS"};
  Series d_cold{"daxfs"}, r_cold{"raw"}, x_cold{"XFS"};
  Mapping* rwm = rw.get();
  for (int r = 0; r < reps; ++r) {
    d_read.v.push_back(loops.Read(ro->data()));
    r_read.v.push_back(loops.Read(raw.data()));
    if (xfs) x_read.v.push_back(loops.Read(xfs->base));

    d_write.v.push_back(loops.Write(rw->data(), {}));
    r_write.v.push_back(loops.Write(raw.data(), {}));
    if (xfs) x_write.v.push_back(loops.Write(xfs->base, {}));
    if (xfs) msync(xfs->base, size, MS_SYNC);  // untimed: no dirty pages carried into the next

    d_wp.v.push_back(
        loops.Write(rw->data(), [&](uint64_t o, uint64_t n) { return rwm->Persist(o, n); }));
    r_wp.v.push_back(
        loops.Write(raw.data(), [&](uint64_t o, uint64_t n) { return Msync(raw.data(), o, n); }));
    if (xfs) {
      x_wp.v.push_back(
          loops.Write(xfs->base, [&](uint64_t o, uint64_t n) { return Msync(xfs->base, o, n); }));
    }

    // First read after mapping: Map (or mmap) + one read pass (every page faults in) + unmap.
    {
      auto t0 = Clock::now();
      auto m = CheckOk(dax->Map(ino, 0, size, MapProt::kRead), "map");
      loops.Read(m->data());
      m.reset();
      d_cold.v.push_back(static_cast<double>(size) / kMiB / Seconds(t0, Clock::now()));
    }
    {
      auto t0 = Clock::now();
      RawMapping fresh;
      CheckOk(fresh.Map(image, extents, size), "raw mapping");
      loops.Read(fresh.data());
      fresh.Unmap();
      r_cold.v.push_back(static_cast<double>(size) / kMiB / Seconds(t0, Clock::now()));
    }
    if (xfs) {
      auto t0 = Clock::now();
      void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, xfs->fd, 0);
      if (p == MAP_FAILED) Fatal(Errno("mmap XFS file").ToString());
      loops.Read(static_cast<uint8_t*>(p));
      munmap(p, size);
      x_cold.v.push_back(static_cast<double>(size) / kMiB / Seconds(t0, Clock::now()));
    }
  }

  struct Line {
    std::string what;
    Series* d;
    Series* r;
    Series* x;
  };
  std::vector<Line> lines = {
      {"seq read (memcpy out)", &d_read, &r_read, &x_read},
      {"seq write (memcpy in), no persist", &d_write, &r_write, &x_write},
      {"seq write + persist each chunk", &d_wp, &r_wp, &x_wp},
      {"map + first read (faults) + unmap", &d_cold, &r_cold, &x_cold},
  };
  fmt::print("MiB/s, median (each repetition):\n");
  for (const Line& l : lines) {
    fmt::print("  {:<36} | daxfs {} | raw {} | XFS {}\n", l.what, l.d->Text(), l.r->Text(),
               l.x->v.empty() ? "-" : l.x->Text());
  }
  fmt::print(
      "persist: daxfs Mapping::Persist (the device's flush + drain: msync(MS_SYNC) of the "
      "range on emulated pmem); raw and XFS: msync(MS_SYNC) of the same range\n");
  for (const Line& l : lines) {
    double d = l.d->median(), rr = l.r->median();
    bool has_target = l.what.find("map +") == std::string::npos;
    g_rows.push_back({"bandwidth: " + l.what, fmt::format("{:.0f} MiB/s", d),
                      fmt::format("raw memcpy, same device ranges: {:.0f}", rr),
                      fmt::format("{:.2f}x", d / rr), has_target ? ">= 0.9x" : "-",
                      has_target ? Met(d / rr >= 0.9) : "-"});
    if (!l.x->v.empty()) {
      double x = l.x->median();
      g_rows.push_back({"bandwidth: " + l.what, fmt::format("{:.0f} MiB/s", d),
                        fmt::format("XFS mmap, page cache warm: {:.0f}", x),
                        fmt::format("{:.2f}x", d / x), "-", "-"});
    }
  }
  fmt::print("daxfs/raw:");
  for (const Line& l : lines) fmt::print("  {} {:.2f}x;", l.what, l.d->median() / l.r->median());
  fmt::print("\n");

  ro.reset();
  rw.reset();
  raw.Unmap();
  CheckOk(dax->Unmount(), "unmount");
  dax.reset();
  xfs.reset();
  CleanUpLoop();
  RemoveImage(image);
}

// ===================================================================================== Part 2

const std::vector<Tracking> kDesigns = {Tracking::kNone, Tracking::kFsRmap, Tracking::kPageRmap,
                                        Tracking::kExtentSpace};

// One workload: a list of (file, offset, length) to map, read-only, and the device blocks whose
// failure is asked about.
struct Workload {
  std::string name;
  std::string what;
  struct MapSpec {
    std::string path;
    uint64_t offset = 0, length = 0;
  };
  std::vector<MapSpec> maps;
  std::vector<uint64_t> queries;  // device offsets of 4 KiB blocks
  uint64_t victims_each = 0;      // victims every query must find (mappings of the block)
  uint64_t pages() const {
    uint64_t p = 0;
    for (const MapSpec& m : maps) p += m.length / kBlock;
    return p;
  }
};

struct Mount {
  Tracking design;
  std::string label;  // the design's name; "none-again" for the A/A control
  std::string image;
  std::unique_ptr<DaxFs> dax;
  std::map<std::string, Ino> inos;  // path -> inode, resolved once
  Ino Resolve(const std::string& path) {
    auto it = inos.find(path);
    if (it != inos.end()) return it->second;
    Ino ino = CheckOk(dax->fs().Resolve(path), "resolve " + path).ino;
    inos.emplace(path, ino);
    return ino;
  }
};

// Maps every spec of `w` (handler: counts notices into `heard` when given).
std::vector<std::unique_ptr<Mapping>> MapAll(Mount& m, const Workload& w,
                                             std::atomic<uint64_t>* heard = nullptr) {
  std::vector<std::unique_ptr<Mapping>> out;
  out.reserve(w.maps.size());
  daxfs::MappingHandler handler;
  if (heard) handler = [heard](const daxfs::MappingNotice&) { heard->fetch_add(1); };
  for (const auto& s : w.maps) {
    out.push_back(
        CheckOk(m.dax->Map(m.Resolve(s.path), s.offset, s.length, MapProt::kRead, handler),
                "map " + s.path));
  }
  return out;
}

// What a victim list says independently of the mount (mapping ids and addresses differ).
using VictimKey = std::vector<std::tuple<Ino, uint64_t, uint64_t, uint64_t>>;
VictimKey KeyOf(const std::vector<Victim>& v) {
  VictimKey k;
  for (const Victim& x : v) k.emplace_back(x.ino, x.file_offset, x.device_offset, x.length);
  std::sort(k.begin(), k.end());
  return k;
}

struct Cell {  // one (workload, design)
  std::vector<double> map_s, unmap_s;
  uint64_t bytes_empty = 0, bytes_live = 0;
  std::vector<double> lat_us;
  uint64_t victims_total = 0;
  uint64_t wrong_counts = 0;
  std::vector<VictimKey> keys;  // of the first queries
  uint64_t cycles = 0;          // map+unmap cycles measured, over all repetitions
  bool ran = false;
};

// Builds the image shared by every design: /small (one-block extents at every other block),
// /huge (one big file), /o<N>/f<i> (one block shared by N files).
struct Part2Layout {
  std::vector<uint64_t> small_dev;  // device offsets of /small's blocks
  std::vector<daxfs::FileExtent> huge_extents;
  std::map<uint64_t, uint64_t> shared_dev;  // owners -> device offset of the shared block
};

Part2Layout BuildPart2Image(const std::string& image, uint64_t small_maps, uint64_t huge_size,
                            const std::vector<uint64_t>& owners) {
  CheckOk(daxfs::Filesystem::Format(image, {}), "format");
  auto dax = CheckOk(DaxFs::Open(image, DaxOptionsFor(Tracking::kNone)), "open");
  daxfs::Filesystem& fs = dax->fs();
  Part2Layout out;
  auto t0 = Clock::now();
  Ino small = CheckOk(fs.Create(daxfs::kRootIno, "small", 0644), "create").ino;
  CheckOk(fs.Truncate(small, 2 * small_maps * kBlock), "truncate");
  std::vector<uint8_t> buf(kBlock, 0x5a);
  for (uint64_t i = 0; i < small_maps; ++i) {
    Stamp(buf.data(), kBlock, 2 * i);
    CheckOk(fs.Write(small, 2 * i * kBlock, buf), "write");
  }
  Ino huge = CheckOk(fs.Create(daxfs::kRootIno, "huge", 0644), "create").ino;
  DaxfsFill(fs, huge, huge_size);
  for (uint64_t n : owners) {
    Ino dir = CheckOk(fs.Mkdir(daxfs::kRootIno, fmt::format("o{}", n), 0755), "mkdir").ino;
    Ino src = CheckOk(fs.Create(dir, "f0", 0644), "create").ino;
    Stamp(buf.data(), kBlock, 0);
    CheckOk(fs.Write(src, 0, buf), "write");
    for (uint64_t i = 1; i < n; ++i) {
      Ino dst = CheckOk(fs.Create(dir, fmt::format("f{}", i), 0644), "create").ino;
      CheckOk(fs.Clone(src, dst), "clone");
    }
    auto e = CheckOk(fs.Bmap(src), "bmap");
    if (e.size() != 1 || (n > 1 && !e[0].shared))
      Fatal(fmt::format("o{}/f0 is not one shared block", n));
    out.shared_dev[n] = e[0].device_offset;
    auto owners_found = CheckOk(
        fs.Fsmap(e[0].device_offset, e[0].device_offset + kBlock, std::nullopt, 0), "fsmap");
    if (owners_found.size() != n)
      Fatal(fmt::format("the o{} block has {} owners", n, owners_found.size()));
  }
  CheckOk(fs.Sync(), "sync");
  auto se = CheckOk(fs.Bmap(small), "bmap");
  if (se.size() != small_maps)
    Fatal(fmt::format("/small has {} extents, expected {}", se.size(), small_maps));
  for (const auto& e : se) out.small_dev.push_back(e.device_offset);
  out.huge_extents = CheckOk(fs.Bmap(huge), "bmap");
  auto check = CheckOk(fs.Check(), "check");
  if (!check.ok()) Fatal("check of the part-2 image: " + check.problems.front());
  fmt::print(
      "image built in {:.1f} s: /small {} one-block extents, /huge {} MiB in {} extent(s), "
      "shared blocks with {} owners; check: consistent ({} inodes, {} extents)\n",
      Seconds(t0, Clock::now()), se.size(), huge_size / kMiB, out.huge_extents.size(),
      [&] {
        std::string s;
        for (uint64_t n : owners) s += fmt::format("{}{}", s.empty() ? "" : ", ", n);
        return s;
      }(),
      check.inodes_checked, check.extents_checked);
  CheckOk(dax->Unmount(), "unmount");
  return out;
}

// vm.max_map_count: every mapping is at least one VMA. Raises it when root and needed.
bool EnsureMapCount(uint64_t mappings) {
  uint64_t need = 2 * mappings + 4096;
  uint64_t have = 0;
  {
    std::ifstream in("/proc/sys/vm/max_map_count");
    in >> have;
  }
  if (have >= need) {
    fmt::print("vm.max_map_count {} (at least one VMA per mapping; {} mappings live at most)\n",
               have, mappings);
    return true;
  }
  if (geteuid() == 0) {
    std::ofstream out("/proc/sys/vm/max_map_count");
    out << need;
    out.close();
    if (out) {
      fmt::print("vm.max_map_count raised from {} to {} (at most {} mappings live)\n", have, need,
                 mappings);
      return true;
    }
  }
  fmt::print("vm.max_map_count is {} and cannot be raised (not root): {} mappings may not fit\n",
             have, mappings);
  return have >= mappings + 1024;
}

void PartDesigns(const std::string& dir, int reps, uint64_t small_maps, uint64_t huge_maps,
                 uint64_t huge_size, std::vector<uint64_t> owners, size_t queries, uint64_t seed) {
  std::sort(owners.begin(), owners.end());
  fmt::print(
      "\n== 2. Owner tracking designs side by side: each in its own DaxFs mount of a copy of "
      "the same image; read-only mappings, pages not touched; map+unmap median of {} "
      "repetitions (each: >= 30,000 mappings per design, or 1 s, in up to 10 rounds in which the "
      "designs take turns)\n",
      reps);
  uint64_t most = std::max<uint64_t>({small_maps, huge_maps, owners.empty() ? 0 : owners.back()});
  if (!EnsureMapCount(most)) Fatal("lower --small-maps / --owners to fit vm.max_map_count");
  uint64_t image_size = RoundUp(huge_size + huge_size / 4 + 2 * small_maps * kBlock +
                                    (owners.empty() ? 0 : owners.back()) * 2 * kBlock + 512 * kMiB,
                                64 * kMiB);
  std::string base = MakeSparseImage(dir, "designs", image_size);
  Part2Layout layout = BuildPart2Image(base, small_maps, huge_size, owners);

  // The workloads and their queries (the same in every mount: the images are copies).
  std::mt19937_64 rng(seed);
  std::vector<Workload> works;
  {
    Workload w{"small",
               fmt::format("(a) {} one-page mappings of /small, one extent each", small_maps)};
    for (uint64_t i = 0; i < small_maps; ++i) w.maps.push_back({"/small", 2 * i * kBlock, kBlock});
    for (size_t q = 0; q < queries; ++q) w.queries.push_back(layout.small_dev[rng() % small_maps]);
    w.victims_each = 1;
    works.push_back(std::move(w));
  }
  {
    Workload w{"huge", fmt::format("(b) {} mappings of all of /huge ({} MiB each)", huge_maps,
                                   huge_size / kMiB)};
    for (uint64_t i = 0; i < huge_maps; ++i) w.maps.push_back({"/huge", 0, huge_size});
    for (size_t q = 0; q < queries; ++q) {
      w.queries.push_back(
          DeviceOffsetOf(layout.huge_extents, (rng() % (huge_size / kBlock)) * kBlock));
    }
    w.victims_each = huge_maps;
    works.push_back(std::move(w));
  }
  for (uint64_t n : owners) {
    Workload w{fmt::format("shared{}", n),
               fmt::format("(c) one block shared by {} files, each mapped", n)};
    for (uint64_t i = 0; i < n; ++i) w.maps.push_back({fmt::format("/o{}/f{}", n, i), 0, kBlock});
    w.queries.assign(queries, layout.shared_dev[n]);  // one block: the same query each time
    w.victims_each = n;
    works.push_back(std::move(w));
  }

  // One mount per design, each of its own copy of the image.
  std::vector<Mount> mounts;
  // Plus a second mount without tracking: an A/A control whose ratio to the first shows how much
  // of a difference this measurement makes on its own (none and fs-rmap do the same work when
  // mapping: fs-rmap's Join and Leave are empty).
  std::vector<std::pair<Tracking, std::string>> designs;
  for (Tracking t : kDesigns) designs.emplace_back(t, daxfs::TrackingName(t));
  designs.emplace_back(Tracking::kNone, "none-again");
  for (const auto& [t, label] : designs) {
    Mount m{t, label, CopyImage(base, dir, label)};
    auto d = DaxFs::Open(m.image, DaxOptionsFor(t));
    if (!d.ok()) {
      fmt::print("design {} skipped: {}\n", label, d.status().ToString());
      RemoveImage(m.image);
      continue;
    }
    m.dax = std::move(*d);
    mounts.push_back(std::move(m));
  }
  RemoveImage(base);
  std::map<std::pair<std::string, std::string>, Cell> cells;  // (workload, mount label)

  // Map+unmap throughput, designs alternating within each repetition.
  // One untimed round first (first use of the tables' memory, resolving the paths). A
  // repetition gives each design ceil(kMinMaps / mappings) map+unmap cycles, in kRounds rounds in
  // which the designs take turns (the first one rotating), so that noise from other processes and
  // the cache damage one design does to the next hit all alike; a design stops early once it has
  // spent kBudget seconds (page-rmap on huge mappings). Reported: the mean per cycle.
  constexpr uint64_t kMinMaps = 30000;
  constexpr uint64_t kRounds = 10;
  constexpr double kBudget = 1.0;
  for (int r = -1; r < reps; ++r) {
    for (const Workload& w : works) {
      for (Mount& m : mounts) {
        for (const auto& s : w.maps) m.Resolve(s.path);  // untimed
      }
      uint64_t target = r < 0 ? 1 : (kMinMaps + w.maps.size() - 1) / w.maps.size();
      uint64_t per_round = (target + kRounds - 1) / kRounds;
      std::vector<double> map_s(mounts.size(), 0), unmap_s(mounts.size(), 0);
      std::vector<uint64_t> done(mounts.size(), 0);
      for (uint64_t round = 0; round < kRounds; ++round) {
        for (size_t k = 0; k < mounts.size(); ++k) {
          size_t i = (k + round + static_cast<size_t>(r + 1)) % mounts.size();
          for (uint64_t c = 0; c < per_round && done[i] < target; ++c) {
            if (done[i] > 0 && map_s[i] + unmap_s[i] > kBudget) break;
            auto t0 = Clock::now();
            auto maps = MapAll(mounts[i], w);
            auto t1 = Clock::now();
            maps.clear();
            auto t2 = Clock::now();
            map_s[i] += Seconds(t0, t1);
            unmap_s[i] += Seconds(t1, t2);
            ++done[i];
          }
        }
      }
      if (r < 0) continue;
      for (size_t i = 0; i < mounts.size(); ++i) {
        Cell& c = cells[{w.name, mounts[i].label}];
        c.map_s.push_back(map_s[i] / static_cast<double>(done[i]));
        c.unmap_s.push_back(unmap_s[i] / static_cast<double>(done[i]));
        c.cycles += done[i];
        c.ran = true;
      }
    }
  }

  // Memory and failure-to-victims latency, all of a workload's mappings live.
  constexpr size_t kKeyed = 20;
  for (const Workload& w : works) {
    for (Mount& m : mounts) {
      Cell& c = cells[{w.name, m.label}];
      c.bytes_empty = m.dax->TrackingBytes(m.design);
      auto maps = MapAll(m, w);
      c.bytes_live = m.dax->TrackingBytes(m.design);
      auto begin = Clock::now();
      for (size_t q = 0; q < w.queries.size(); ++q) {
        auto t0 = Clock::now();
        auto v = CheckOk(m.dax->FindVictims(m.design, w.queries[q], kBlock), "find victims");
        auto t1 = Clock::now();
        c.lat_us.push_back(Seconds(t0, t1) * 1e6);
        uint64_t pages = 0;
        for (const Victim& x : v) pages += x.length / kBlock;
        c.victims_total += v.size();
        uint64_t expect = m.design == Tracking::kNone ? 0 : w.victims_each;
        if (v.size() != expect || pages != expect) ++c.wrong_counts;
        if (q < kKeyed) c.keys.push_back(KeyOf(v));
        if (q >= kKeyed && Seconds(begin, t1) > 5.0) break;  // a time budget per cell
      }
      maps.clear();
    }
  }

  // Print: per workload, per design.
  for (const Workload& w : works) {
    fmt::print("\n{} ({} mappings, {} pages mapped):\n", w.what, w.maps.size(), w.pages());
    fmt::print(
        "  {:<13} {:>13} {:>11} {:>11} {:>9} {:>14} {:>13} {:>10} {:>10} {:>8} {:>10} {:>7}\n",
        "design", "maps+unmaps/s", "map us", "unmap us", "x none", "tracking B", "B/page",
        "median us", "p99 us", "queries", "victims/q", "cycles");
    const Cell* none = nullptr;
    if (cells.count({w.name, "none"})) none = &cells[{w.name, "none"}];
    const Cell* fsr = cells.count({w.name, "fs-rmap"}) ? &cells[{w.name, "fs-rmap"}] : nullptr;
    for (Mount& m : mounts) {
      Cell& c = cells[{w.name, m.label}];
      if (!c.ran) continue;
      double n = static_cast<double>(w.maps.size());
      std::vector<double> total;
      for (size_t i = 0; i < c.map_s.size(); ++i) total.push_back(c.map_s[i] + c.unmap_s[i]);
      double tot = Median(total);
      // The cost relative to none: the median of the per-repetition ratios (paired: the two
      // were measured in the same rounds).
      std::vector<double> none_total, ratios;
      if (none) {
        for (size_t i = 0; i < none->map_s.size(); ++i) {
          none_total.push_back(none->map_s[i] + none->unmap_s[i]);
          ratios.push_back(total[i] / none_total.back());
        }
      }
      double rel = none ? Median(ratios) : 0;
      double per_page = static_cast<double>(c.bytes_live - std::min(c.bytes_live, c.bytes_empty)) /
                        static_cast<double>(w.pages());
      fmt::print(
          "  {:<13} {:>13.0f} {:>11.2f} {:>11.2f} {:>9} {:>14} {:>13.2f} {:>10.2f} {:>10.2f} {:>8} "
          "{:>10.1f} {:>7}{}\n",
          m.label, n / tot, Median(c.map_s) / n * 1e6, Median(c.unmap_s) / n * 1e6,
          none ? fmt::format("{:.3f}", rel) : "-", c.bytes_live, per_page, Median(c.lat_us),
          Quantile(c.lat_us, 0.99), c.lat_us.size(),
          static_cast<double>(c.victims_total) / static_cast<double>(c.lat_us.size()), c.cycles,
          c.wrong_counts ? fmt::format("  WRONG victim count in {} queries", c.wrong_counts) : "");
      bool same = true;
      if (fsr && m.design != Tracking::kNone && m.design != Tracking::kFsRmap)
        same = c.keys == fsr->keys;
      if (!same)
        fmt::print("  !! {} named other victims than fs-rmap in the first queries\n",
                   daxfs::TrackingName(m.design));

      std::string tag = fmt::format("{} [{}]", w.what, m.label);
      if (m.label == "none-again" && none) {
        g_rows.push_back({"map+unmap cost: " + tag + " (A/A control: the same work as none)",
                          fmt::format("{:.0f} maps+unmaps/s", n / tot),
                          fmt::format("none (no tracking): {:.0f}", n / Median(none_total)),
                          fmt::format("{:.3f}x cost", rel), "-", "-"});
      }
      if (m.design != Tracking::kNone && none) {
        bool fs = m.design == Tracking::kFsRmap;
        g_rows.push_back({"map+unmap cost: " + tag, fmt::format("{:.0f} maps+unmaps/s", n / tot),
                          fmt::format("none (no tracking): {:.0f}", n / Median(none_total)),
                          fmt::format("{:.3f}x cost", rel), fs ? "<= 1.05x" : "-",
                          fs ? Met(rel <= 1.05) : "-"});
      }
      if (m.design != Tracking::kNone) {
        bool fs = m.design == Tracking::kFsRmap;
        g_rows.push_back({"tracking memory: " + tag,
                          fmt::format("{:.2f} B/page ({} B)", per_page, c.bytes_live), "-", "-",
                          fs ? "0" : "-", fs ? Met(c.bytes_live == 0) : "-"});
        bool latency_target = fs && w.name == "shared100";
        std::string vs_fs = fsr && !fs ? fmt::format("fs-rmap: {:.2f}", Median(fsr->lat_us)) : "-";
        g_rows.push_back(
            {"FindVictims 4 KiB: " + tag,
             fmt::format("median {:.2f} us, p99 {:.2f} us", Median(c.lat_us),
                         Quantile(c.lat_us, 0.99)),
             vs_fs,
             fsr && !fs ? fmt::format("{:.2f}x", Median(c.lat_us) / Median(fsr->lat_us)) : "-",
             latency_target ? "median <= 50 us" : "-",
             latency_target ? Met(Median(c.lat_us) <= 50) : "-"});
      }
    }
  }

  // One real failure per design: the block shared by the smallest owner count, all mapped.
  if (!owners.empty()) {
    const Workload& w = *std::find_if(works.begin(), works.end(), [&](const Workload& x) {
      return x.name == fmt::format("shared{}", owners.front());
    });
    uint64_t block = layout.shared_dev[owners.front()];
    fmt::print(
        "\nOne real NotifyFailure per design: device block {} ({} owners, each mapped), "
        "flags simulated:\n",
        block, owners.front());
    for (Mount& m : mounts) {
      std::atomic<uint64_t> heard{0};
      auto maps = MapAll(m, w, &heard);
      auto victims = CheckOk(m.dax->FindVictims(m.design, block, kBlock), "find victims");
      auto t0 = Clock::now();
      auto report =
          CheckOk(m.dax->NotifyFailure(block, kBlock, daxfs::kFailureSimulated), "notify failure");
      double us = Seconds(t0, Clock::now()) * 1e6;
      bool ok = report.notices.size() == victims.size() && heard.load() == report.notices.size() &&
                report.media.owners.size() == owners.front();
      std::string fs_part;
      for (const std::string& a : report.actions) {
        if (a.find("could not record") != std::string::npos) fs_part = "  (" + a + ")";
      }
      fmt::print(
          "  {:<13} victims {:>6}  notices {:>6}  handlers run {:>6}  owners recorded lost {:>6}  "
          "NotifyFailure {:>10.1f} us  {}{}\n",
          m.label, victims.size(), report.notices.size(), heard.load(), report.media.owners.size(),
          us, ok ? "ok (notices = victims = handlers run; every owner recorded)" : "MISMATCH",
          fs_part);
      maps.clear();
    }
  }
  for (Mount& m : mounts) {
    CheckOk(m.dax->Unmount(), "unmount");
    m.dax.reset();
    RemoveImage(m.image);
  }
}

// ===================================================================================== Part 3

void PartManyExtents(const std::string& dir, uint64_t records, int maps, size_t queries,
                     size_t scan_queries, uint64_t seed) {
  struct statvfs sv {};
  uint64_t avail = statvfs(dir.c_str(), &sv) == 0 ? sv.f_bavail * sv.f_frsize : 0;
  uint64_t requested = records;
  while (records > 1000 && records * kBlock * 3 / 2 > avail / 2) records = records * 3 / 4;
  fmt::print(
      "\n== 3. Victims on one file of {} one-block extents (at every other block): fs-rmap "
      "vs the no-rmap full scan, in one mount (full-scan as a shadow design)\n",
      records);
  if (records != requested) {
    fmt::print("NOTE: scaled down from {} extents: {} has only {} MiB free\n", requested, dir,
               avail >> 20);
  }
  std::string image =
      MakeSparseImage(dir, "aged", RoundUp(records * kBlock * 3 / 2 + 1024 * kMiB, 64 * kMiB));
  CheckOk(daxfs::Filesystem::Format(image, {}), "format");
  auto dax =
      CheckOk(DaxFs::Open(image, DaxOptionsFor(Tracking::kFsRmap, {Tracking::kFullScan})), "open");
  daxfs::Filesystem& fs = dax->fs();
  auto t0 = Clock::now();
  Ino ino = CheckOk(fs.Create(daxfs::kRootIno, "aged", 0644), "create").ino;
  CheckOk(fs.Truncate(ino, 2 * records * kBlock), "truncate");
  std::vector<uint8_t> buf(kBlock, 0x5a);
  for (uint64_t i = 0; i < records; ++i) {
    Stamp(buf.data(), kBlock, 2 * i);
    CheckOk(fs.Write(ino, 2 * i * kBlock, buf), "write");
  }
  CheckOk(fs.Sync(), "sync");
  double aged_s = Seconds(t0, Clock::now());
  auto extents = CheckOk(fs.Bmap(ino), "bmap");
  fmt::print("aged in {:.1f} s: {} extents by Bmap\n", aged_s, extents.size());

  // A few mapped ranges of 1 MiB (128 extents each) at random places; queries: random data
  // blocks inside them.
  std::mt19937_64 rng(seed);
  constexpr uint64_t kSpan = 256 * kBlock;
  uint64_t spans = 2 * records * kBlock / kSpan;
  std::vector<std::unique_ptr<Mapping>> live;
  std::vector<uint64_t> starts;
  for (int i = 0; i < maps && spans > 0; ++i) {
    uint64_t off = (rng() % spans) * kSpan;
    starts.push_back(off);
    live.push_back(CheckOk(dax->Map(ino, off, kSpan, MapProt::kRead), "map"));
  }
  std::vector<uint64_t> qs;
  for (size_t q = 0; q < queries; ++q) {
    uint64_t off = starts[q % starts.size()] + 2 * (rng() % (kSpan / kBlock / 2)) * kBlock;
    qs.push_back(DeviceOffsetOf(extents, off));
  }
  auto* impl = static_cast<daxfs::fs::FsFace*>(&fs);
  struct Method {
    std::string name;
    std::function<size_t(uint64_t)> fn;
    size_t count;
    std::vector<double> us;
    uint64_t results = 0;
  };
  std::vector<Method> methods = {
      {"FindVictims fs-rmap",
       [&](uint64_t d) {
         return CheckOk(dax->FindVictims(Tracking::kFsRmap, d, kBlock), "victims").size();
       },
       qs.size()},
      {"FindVictims full-scan (no rmap)",
       [&](uint64_t d) {
         return CheckOk(dax->FindVictims(Tracking::kFullScan, d, kBlock), "victims").size();
       },
       scan_queries},
      {"Fsmap (rmap)",
       [&](uint64_t d) {
         return CheckOk(fs.Fsmap(d, d + kBlock, std::nullopt, 0), "fsmap").size();
       },
       qs.size()},
      {"FsmapByScan (no rmap)",
       [&](uint64_t d) {
         return CheckOk(impl->FsmapByFullScan(d, d + kBlock, std::nullopt, 0), "fsmap scan").size();
       },
       scan_queries},
  };
  for (Method& m : methods) {
    auto begin = Clock::now();
    for (size_t q = 0; q < std::min(m.count, qs.size()); ++q) {
      auto a = Clock::now();
      m.results += m.fn(qs[q]);
      auto b = Clock::now();
      m.us.push_back(Seconds(a, b) * 1e6);
      if (Seconds(begin, b) > 60) break;
    }
  }
  // The two designs must name the same victims.
  size_t agree = 0, compared = std::min(scan_queries, qs.size());
  for (size_t q = 0; q < compared; ++q) {
    auto a = CheckOk(dax->FindVictims(Tracking::kFsRmap, qs[q], kBlock), "victims");
    auto b = CheckOk(dax->FindVictims(Tracking::kFullScan, qs[q], kBlock), "victims");
    agree += a == b && a.size() == 1;
  }
  fmt::print("{:<34} {:>8} {:>12} {:>12} {:>12} {:>14}\n", "method", "queries", "median us",
             "p99 us", "results/q", "median/fs-rmap");
  double base = Median(methods[0].us);
  for (const Method& m : methods) {
    fmt::print("{:<34} {:>8} {:>12.2f} {:>12.2f} {:>12.2f} {:>14.1f}\n", m.name, m.us.size(),
               Median(m.us), Quantile(m.us, 0.99),
               static_cast<double>(m.results) / static_cast<double>(m.us.size()),
               Median(m.us) / base);
  }
  fmt::print("fs-rmap and full-scan named the same single victim in {} of {} queries{}\n", agree,
             compared, agree == compared ? "" : "  MISMATCH");
  g_rows.push_back({fmt::format("FindVictims 4 KiB, {} extents, {} mapped ranges [fs-rmap]",
                                extents.size(), live.size()),
                    fmt::format("median {:.2f} us, p99 {:.2f} us", Median(methods[0].us),
                                Quantile(methods[0].us, 0.99)),
                    fmt::format("full scan: {:.0f} us", Median(methods[1].us)),
                    fmt::format("{:.6f}x ({:.0f}x faster)", base / Median(methods[1].us),
                                Median(methods[1].us) / base),
                    "-", "-"});
  g_rows.push_back({fmt::format("Fsmap 4 KiB, {} extents [rmap]", extents.size()),
                    fmt::format("median {:.2f} us, p99 {:.2f} us", Median(methods[2].us),
                                Quantile(methods[2].us, 0.99)),
                    fmt::format("FsmapByScan: {:.0f} us", Median(methods[3].us)),
                    fmt::format("{:.0f}x faster", Median(methods[3].us) / Median(methods[2].us)),
                    "-", "-"});
  live.clear();
  CheckOk(dax->Unmount(), "unmount");
  dax.reset();
  RemoveImage(image);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"daxfs DAX mappings and failure routing benchmarks"};
  std::string dir = "/dev/shm", parts = "1,2,3", size_text = "1G", chunk_text = "2M",
              huge_text = "256M";
  int reps = 5, p3_maps = 8;
  bool no_xfs = false;
  uint64_t small_maps = 10000, huge_maps = 4, extents = 1000000, seed = 42;
  std::vector<uint64_t> owners = {100, 10000};
  size_t queries = 1000, p3_queries = 1000, scan_queries = 5;
  app.add_option("--dir", dir, "where the images go (tmpfs)")->capture_default_str();
  app.add_option("--parts", parts, "which parts to run, e.g. 2,3")->capture_default_str();
  app.add_option("--reps", reps, "repetitions (median reported), parts 1 and 2")
      ->capture_default_str();
  app.add_option("--size", size_text, "part 1: file size (K/M/G)")->capture_default_str();
  app.add_option("--chunk", chunk_text, "part 1: memcpy chunk")->capture_default_str();
  app.add_flag("--no-xfs", no_xfs, "part 1: skip XFS");
  app.add_option("--small-maps", small_maps, "part 2 (a): one-page mappings")
      ->capture_default_str();
  app.add_option("--huge-maps", huge_maps, "part 2 (b): mappings of the huge file")
      ->capture_default_str();
  app.add_option("--huge-size", huge_text, "part 2 (b): size of each huge mapping")
      ->capture_default_str();
  app.add_option("--owners", owners, "part 2 (c): owner counts of shared blocks")->delimiter(',');
  app.add_option("--queries", queries, "part 2: FindVictims queries per workload and design")
      ->capture_default_str();
  app.add_option("--extents", extents, "part 3: one-block extents of the aged file")
      ->capture_default_str();
  app.add_option("--p3-maps", p3_maps, "part 3: mapped 1 MiB ranges")->capture_default_str();
  app.add_option("--p3-queries", p3_queries, "part 3: fs-rmap queries")->capture_default_str();
  app.add_option("--scan-queries", scan_queries, "part 3: full-scan queries")
      ->capture_default_str();
  app.add_option("--seed", seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  uint64_t size = 0, chunk = 0, huge_size = 0;
  try {
    size = ParseSize(size_text);
    chunk = ParseSize(chunk_text);
    huge_size = ParseSize(huge_text);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dax_bench: {}\n", e.what());
    return 2;
  }
  if (chunk == 0 || chunk % kBlock || size == 0 || size % chunk || huge_size == 0 ||
      huge_size % kBlock || reps < 1 || small_maps == 0 || huge_maps == 0 || queries == 0 ||
      p3_maps < 1 || p3_queries == 0) {
    fmt::print(stderr,
               "dax_bench: --size must be a multiple of --chunk (a multiple of 4 KiB), --huge-size "
               "of 4 KiB; counts >= 1\n");
    return 2;
  }

  std::string command;
  for (int i = 0; i < argc; ++i)
    command += fmt::format("{}{}", command.empty() ? "" : " ", argv[i]);
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  fmt::print("command: {}\nmachine: {}\ndate:    {} (load average {})\n", command, Machine(), date,
             LoadAverage());

  bench_util::CleanUpAtExitAndOnSignals(CleanUp);
  auto start = Clock::now();
  if (parts.find('1') != std::string::npos) PartBandwidth(dir, size, chunk, reps, !no_xfs);
  if (parts.find('2') != std::string::npos) {
    PartDesigns(dir, reps, small_maps, huge_maps, huge_size, owners, queries, seed);
  }
  if (parts.find('3') != std::string::npos)
    PartManyExtents(dir, extents, p3_maps, p3_queries, scan_queries, seed);

  fmt::print("\nload average at the end: {}; whole run {:.0f} s\n", LoadAverage(),
             Seconds(start, Clock::now()));
  fmt::print(
      "\n| measure | value | baseline (same run) | ratio | target | met "
      "|\n|---|---|---|---|---|---|\n");
  for (const Row& r : g_rows) {
    fmt::print("| {} | {} | {} | {} | {} | {} |\n", r.measure, r.value, r.baseline, r.ratio,
               r.target, r.met);
  }
  CleanUp();
  return 0;
}
