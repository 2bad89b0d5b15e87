// Filesystem scenarios: the same workloads on daxfs and, in the same run, on XFS
// (mkfs.xfs -m reflink=1,rmapbt=1 on a loop device over a /dev/shm image, through ordinary
// buffered syscalls; skipped with the reason when that cannot be set up, e.g. without root),
// plus plain memcpy into a raw mapping of a /dev/shm file as the physical limit. Prints ops/s
// (MiB/s for sequential), the ratio daxfs/baseline and the target. Knows daxfs only through the
// public API (include/daxfs/) and device.h (to create the emulated device file).
//   fs_bench [--size 1G] [--ops 200000] [--durable-ops 20000] [--files 100000]
//            [--durable-files 20000] [--reps 3] [--dir /dev/shm] [--only daxfs|xfs]
//            [--workloads seq,pread,pwrite,pwrite-durable,create,create-durable] [--seed 42]
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daxfs/filesystem.h"
#include "daxfs/status.h"
#include "device/device.h"
#include "bench_util.h"
#include "loopfs.h"

namespace {

using daxfs::bench::CleanUpLoop;
using daxfs::bench::Errno;
using daxfs::bench::g_loop;
using daxfs::bench::MountLoop;
using daxfs::bench::SetField;
using Clock = std::chrono::steady_clock;
using bench_util::CheckOk;
using bench_util::Fatal;
using bench_util::RoundUp;
using bench_util::LoadAverage;
using bench_util::Machine;
using daxfs::Ino;
using daxfs::Result;
using daxfs::Status;

constexpr uint64_t kSmall = 4096;         // random I/O and small-file size
constexpr uint64_t kLarge = 1ULL << 20;   // sequential I/O size
constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint32_t kGroupCommitOps = 4096;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `word`, preceded by a space unless it starts `so_far`.
std::string Joined(const std::string& so_far, std::string_view word) {
  std::string out = so_far.empty() ? "" : " ";
  out.append(word);
  return out;
}

// ---- Cleanup of everything the run made outside the process: the XFS loop mount (loopfs.h)
// and the files below. Fixed buffers and only async-signal-safe calls, so that SIGINT/SIGTERM
// can clean up too. Each field is cleared once undone.

struct Leftovers {
  char daxfs_image[256] = "";
  char raw_file[256] = "";
  char raw_fresh_file[256] = "";
};
Leftovers g_left;

void CleanUp() {
  CleanUpLoop();
  for (char* f : {g_left.daxfs_image, g_left.raw_file, g_left.raw_fresh_file}) {
    if (f[0]) {
      unlink(f);
      f[0] = '\0';
    }
  }
}

// ---- What a workload runs against: daxfs through its API, or a mounted directory through
// syscalls. One data file ("data") and one directory of small files ("files").

enum class PerOp { kNone, kFsync, kFdatasync };  // what makes each operation durable

class Side {
 public:
  virtual ~Side() = default;
  // Per-operation durability from now on (daxfs: remount kOnReturn/kGroupCommit).
  virtual Status SetPerOp(PerOp mode) = 0;
  // Removes the data file (if any) and makes that durable (untimed preparation).
  virtual Status RemoveData() = 0;
  virtual Status CreateData() = 0;
  virtual Status OpenData() = 0;
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Status WriteAt(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Status SyncData() = 0;
  virtual Status MakeFilesDir() = 0;
  virtual Status RemoveFilesDir() = 0;
  virtual Status CreateSmall(const std::string& name, std::span<const uint8_t> data) = 0;
  virtual Status RemoveSmall(const std::string& name) = 0;
  virtual Status SyncAll() = 0;
};

class DaxfsSide : public Side {
 public:
  explicit DaxfsSide(std::string image) : image_(std::move(image)) {}
  ~DaxfsSide() override {
    if (fs_) fs_->Unmount().IgnoreError();
  }

  Status Mount(PerOp mode) {
    daxfs::MountOptions o;
    o.durability = mode == PerOp::kNone ? daxfs::Durability::kGroupCommit : daxfs::Durability::kOnReturn;
    o.group_commit_ops = kGroupCommitOps;
    auto fs = daxfs::Filesystem::Open(image_, o);
    if (!fs.ok()) return fs.status();
    fs_ = std::move(*fs);
    mode_ = mode;
    return Status::Ok();
  }
  daxfs::Filesystem* fs() { return fs_.get(); }
  Ino data_ino() const { return data_; }
  Status Unmount() {
    Status s = fs_->Unmount();
    fs_.reset();
    return s;
  }

  Status SetPerOp(PerOp mode) override {
    bool durable = mode != PerOp::kNone, now = mode_ != PerOp::kNone;
    if (durable == now) return Status::Ok();
    RETURN_IF_ERROR(fs_->Unmount());
    fs_.reset();
    return Mount(mode);
  }
  Status RemoveData() override {
    Status s = fs_->Unlink(daxfs::kRootIno, "data");
    if (!s.ok() && !s.IsNotFound()) return s;
    data_ = 0;
    return fs_->Sync();
  }
  Status CreateData() override {
    auto a = fs_->Create(daxfs::kRootIno, "data", 0644);
    if (!a.ok()) return a.status();
    data_ = a->ino;
    return Status::Ok();
  }
  Status OpenData() override {
    auto a = fs_->Lookup(daxfs::kRootIno, "data");
    if (!a.ok()) return a.status();
    data_ = a->ino;
    return Status::Ok();
  }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    auto n = fs_->Read(data_, offset, out);
    if (!n.ok()) return n.status();
    return *n == out.size() ? Status::Ok() : Status::IoError("short read");
  }
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    auto n = fs_->Write(data_, offset, data);
    return n.ok() ? Status::Ok() : n.status();
  }
  Status SyncData() override { return fs_->Fsync(data_); }
  Status MakeFilesDir() override {
    auto a = fs_->Mkdir(daxfs::kRootIno, "files", 0755);
    if (!a.ok()) return a.status();
    dir_ = a->ino;
    return fs_->Sync();
  }
  Status RemoveFilesDir() override {
    RETURN_IF_ERROR(fs_->Rmdir(daxfs::kRootIno, "files"));
    return fs_->Sync();
  }
  Status CreateSmall(const std::string& name, std::span<const uint8_t> data) override {
    auto a = fs_->Create(dir_, name, 0644);
    if (!a.ok()) return a.status();
    auto n = fs_->Write(a->ino, 0, data);
    return n.ok() ? Status::Ok() : n.status();
  }
  Status RemoveSmall(const std::string& name) override { return fs_->Unlink(dir_, name); }
  Status SyncAll() override { return fs_->Sync(); }

 private:
  std::string image_;
  std::unique_ptr<daxfs::Filesystem> fs_;
  PerOp mode_ = PerOp::kNone;
  Ino data_ = 0;
  Ino dir_ = 0;
};

class PosixSide : public Side {
 public:
  explicit PosixSide(std::string root) : root_(std::move(root)) {}
  ~PosixSide() override { CloseAll(); }

  void CloseAll() {
    for (int* fd : {&data_fd_, &dir_fd_, &root_fd_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }
  Status Open() {
    root_fd_ = open(root_.c_str(), O_RDONLY | O_DIRECTORY);
    return root_fd_ >= 0 ? Status::Ok() : Errno("open " + root_);
  }

  Status SetPerOp(PerOp mode) override {
    mode_ = mode;
    return Status::Ok();
  }
  Status RemoveData() override {
    if (data_fd_ >= 0) close(data_fd_);
    data_fd_ = -1;
    if (unlinkat(root_fd_, "data", 0) != 0 && errno != ENOENT) return Errno("unlink data");
    return SyncAll();
  }
  Status CreateData() override {
    data_fd_ = openat(root_fd_, "data", O_RDWR | O_CREAT | O_TRUNC, 0644);
    return data_fd_ >= 0 ? Status::Ok() : Errno("create data");
  }
  Status OpenData() override {
    if (data_fd_ >= 0) return Status::Ok();
    data_fd_ = openat(root_fd_, "data", O_RDWR);
    return data_fd_ >= 0 ? Status::Ok() : Errno("open data");
  }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    ssize_t n = pread(data_fd_, out.data(), out.size(), static_cast<off_t>(offset));
    if (n < 0) return Errno("pread");
    return static_cast<size_t>(n) == out.size() ? Status::Ok() : Status::IoError("short read");
  }
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    ssize_t n = pwrite(data_fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) return Errno("pwrite");
    if (static_cast<size_t>(n) != data.size()) return Status::IoError("short write");
    return SyncPerOp(data_fd_);
  }
  Status SyncData() override { return fsync(data_fd_) == 0 ? Status::Ok() : Errno("fsync data"); }
  Status MakeFilesDir() override {
    if (mkdirat(root_fd_, "files", 0755) != 0) return Errno("mkdir files");
    dir_fd_ = openat(root_fd_, "files", O_RDONLY | O_DIRECTORY);
    if (dir_fd_ < 0) return Errno("open files");
    return SyncAll();
  }
  Status RemoveFilesDir() override {
    close(dir_fd_);
    dir_fd_ = -1;
    if (unlinkat(root_fd_, "files", AT_REMOVEDIR) != 0) return Errno("rmdir files");
    return SyncAll();
  }
  Status CreateSmall(const std::string& name, std::span<const uint8_t> data) override {
    int fd = openat(dir_fd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return Errno("create " + name);
    ssize_t n = write(fd, data.data(), data.size());
    Status s = n < 0 ? Errno("write " + name)
               : static_cast<size_t>(n) != data.size() ? Status::IoError("short write")
                                                       : SyncPerOp(fd);
    if (close(fd) != 0 && s.ok()) s = Errno("close " + name);
    return s;
  }
  Status RemoveSmall(const std::string& name) override {
    if (unlinkat(dir_fd_, name.c_str(), 0) != 0) return Errno("unlink " + name);
    return SyncPerOp(dir_fd_);
  }
  Status SyncAll() override { return syncfs(root_fd_) == 0 ? Status::Ok() : Errno("syncfs"); }

 private:
  Status SyncPerOp(int fd) {
    if (mode_ == PerOp::kFsync && fsync(fd) != 0) return Errno("fsync");
    if (mode_ == PerOp::kFdatasync && fdatasync(fd) != 0) return Errno("fdatasync");
    return Status::Ok();
  }

  std::string root_;
  int root_fd_ = -1;
  int data_fd_ = -1;
  int dir_fd_ = -1;
  PerOp mode_ = PerOp::kNone;
};

// ---- Workloads. Every 4 KiB block of the data file starts with its block number, so reads
// check what they got.

void Stamp(uint8_t* buf, uint64_t bytes, uint64_t first_block) {
  for (uint64_t b = 0; b < bytes / kSmall; ++b) {
    uint64_t v = first_block + b;
    std::memcpy(buf + b * kSmall, &v, sizeof v);
  }
}

Status CheckStamp(const uint8_t* buf, uint64_t bytes, uint64_t first_block) {
  for (uint64_t b = 0; b < bytes / kSmall; ++b) {
    uint64_t v;
    std::memcpy(&v, buf + b * kSmall, sizeof v);
    if (v != first_block + b) {
      return Status::Corruption(fmt::format("block {} reads stamp {}", first_block + b, v));
    }
  }
  return Status::Ok();
}

struct Buffers {
  std::vector<uint8_t> large = std::vector<uint8_t>(kLarge, 0xa5);
  std::vector<uint8_t> small = std::vector<uint8_t>(kSmall, 0x5a);
};

// Each returns operations per second (MiB/s for the sequential ones).

Result<double> SeqWrite(Side& s, uint64_t size, Buffers& b) {
  RETURN_IF_ERROR(s.RemoveData());
  auto t0 = Clock::now();
  RETURN_IF_ERROR(s.CreateData());
  for (uint64_t off = 0; off < size; off += kLarge) {
    Stamp(b.large.data(), kLarge, off / kSmall);
    RETURN_IF_ERROR(s.WriteAt(off, b.large));
  }
  RETURN_IF_ERROR(s.SyncData());
  return static_cast<double>(size) / kMiB / Seconds(t0, Clock::now());
}

Result<double> SeqRead(Side& s, uint64_t size, Buffers& b) {
  RETURN_IF_ERROR(s.OpenData());
  auto t0 = Clock::now();
  for (uint64_t off = 0; off < size; off += kLarge) {
    RETURN_IF_ERROR(s.ReadAt(off, b.large));
    RETURN_IF_ERROR(CheckStamp(b.large.data(), kLarge, off / kSmall));
  }
  return static_cast<double>(size) / kMiB / Seconds(t0, Clock::now());
}

Result<double> RandRead(Side& s, const std::vector<uint64_t>& blocks, Buffers& b) {
  RETURN_IF_ERROR(s.OpenData());
  RETURN_IF_ERROR(s.SyncAll());  // untimed: no write-back left over from the previous workload
  auto t0 = Clock::now();
  for (uint64_t blk : blocks) {
    RETURN_IF_ERROR(s.ReadAt(blk * kSmall, b.small));
    RETURN_IF_ERROR(CheckStamp(b.small.data(), kSmall, blk));
  }
  return blocks.size() / Seconds(t0, Clock::now());
}

// The same reads split between `threads` threads (each its own buffer), all started together;
// ops/s of all of them.
Result<double> RandReadThreads(Side& s, const std::vector<uint64_t>& blocks, int threads) {
  RETURN_IF_ERROR(s.OpenData());
  RETURN_IF_ERROR(s.SyncAll());
  std::vector<Status> got(threads);
  std::vector<std::thread> pool;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  const size_t per = blocks.size() / threads;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<uint8_t> buf(kSmall);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      for (size_t i = t * per; i < (t + 1) * per; ++i) {
        Status r = s.ReadAt(blocks[i] * kSmall, buf);
        if (r.ok()) r = CheckStamp(buf.data(), kSmall, blocks[i]);
        if (!r.ok()) {
          got[t] = r;
          return;
        }
      }
    });
  }
  while (ready.load() < threads) {
  }
  auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& th : pool) th.join();
  auto t1 = Clock::now();
  for (const Status& g : got) RETURN_IF_ERROR(g);
  return per * threads / Seconds(t0, t1);
}

// `count` writes from the sequence, then one sync (included).
Result<double> RandWrite(Side& s, const std::vector<uint64_t>& blocks, size_t count, Buffers& b) {
  RETURN_IF_ERROR(s.OpenData());
  RETURN_IF_ERROR(s.SyncAll());  // untimed: no write-back left over from the previous workload
  count = std::min(count, blocks.size());
  auto t0 = Clock::now();
  for (size_t i = 0; i < count; ++i) {
    Stamp(b.small.data(), kSmall, blocks[i]);
    RETURN_IF_ERROR(s.WriteAt(blocks[i] * kSmall, b.small));
  }
  RETURN_IF_ERROR(s.SyncData());
  return count / Seconds(t0, Clock::now());
}

struct CreateUnlink {
  double create = 0, unlink = 0;
};

// Create + 4 KiB write + close of each name, one sync (included); then unlink of each, one sync.
Result<CreateUnlink> CreateThenUnlink(Side& s, const std::vector<std::string>& names, Buffers& b) {
  RETURN_IF_ERROR(s.MakeFilesDir());
  CreateUnlink r;
  auto t0 = Clock::now();
  for (const std::string& n : names) RETURN_IF_ERROR(s.CreateSmall(n, b.small));
  RETURN_IF_ERROR(s.SyncAll());
  auto t1 = Clock::now();
  for (const std::string& n : names) RETURN_IF_ERROR(s.RemoveSmall(n));
  RETURN_IF_ERROR(s.SyncAll());
  auto t2 = Clock::now();
  RETURN_IF_ERROR(s.RemoveFilesDir());
  r.create = names.size() / Seconds(t0, t1);
  r.unlink = names.size() / Seconds(t1, t2);
  return r;
}

// The physical limit: plain memcpy between the same user buffers and a MAP_SHARED mapping of a
// same-size file in the same tmpfs. Pre-touched: every page was written once before timing.
// Fresh: each RemoveData maps a newly allocated file whose pages were never touched, which is
// what daxfs meets when it writes blocks of its device for the first time (tmpfs clears a
// page, and the kernel maps it, on its first access).
class RawSide : public Side {
 public:
  RawSide(std::string path, uint64_t size, bool fresh, char* leftover, size_t leftover_size)
      : path_(std::move(path)), size_(size), fresh_(fresh), leftover_(leftover), leftover_size_(leftover_size) {}
  ~RawSide() override { Unmap(); }

  Status Map() {
    Unmap();
    RETURN_IF_ERROR(daxfs::device::CreateDeviceFile(path_, size_, /*overwrite=*/true));
    SetField(leftover_, leftover_size_, path_);
    int fd = open(path_.c_str(), O_RDWR);
    if (fd < 0) return Errno("open " + path_);
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return Errno("mmap " + path_);
    base_ = static_cast<uint8_t*>(p);
    if (!fresh_) {
      for (uint64_t off = 0; off < size_; off += kSmall) base_[off] = 0;
    }
    return Status::Ok();
  }

  Status SetPerOp(PerOp mode) override { return Status::Ok(); }
  Status RemoveData() override { return fresh_ ? Map() : Status::Ok(); }
  Status CreateData() override { return Status::Ok(); }
  Status OpenData() override { return Status::Ok(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > size_ || out.size() > size_ - offset) return Status::IoError("short read");
    std::memcpy(out.data(), base_ + offset, out.size());
    return Status::Ok();
  }
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset > size_ || data.size() > size_ - offset) return Status::NoSpace("past the mapping");
    std::memcpy(base_ + offset, data.data(), data.size());
    return Status::Ok();
  }
  Status SyncData() override { return Status::Ok(); }
  Status MakeFilesDir() override { return Status::NotSupported("memcpy has no files"); }
  Status RemoveFilesDir() override { return Status::NotSupported("memcpy has no files"); }
  Status CreateSmall(const std::string&, std::span<const uint8_t>) override {
    return Status::NotSupported("memcpy has no files");
  }
  Status RemoveSmall(const std::string&) override { return Status::NotSupported("memcpy has no files"); }
  Status SyncAll() override { return Status::Ok(); }

 private:
  void Unmap() {
    if (base_) munmap(base_, size_);
    base_ = nullptr;
  }

  std::string path_;
  uint64_t size_;
  bool fresh_;
  char* leftover_;
  size_t leftover_size_;
  uint8_t* base_ = nullptr;
};

// The same limit over the very memory daxfs uses: memcpy into or out of the device pages that
// hold daxfs's data file, through a second mapping of the image at the device offsets Bmap
// reports. Only for the sequential workloads, right after daxfs wrote the file: its writes store
// the bytes the file already holds (same stamps), so the mounted filesystem sees no change.
class DevicePagesSide : public Side {
 public:
  DevicePagesSide(DaxfsSide* dax, std::string image) : dax_(dax), image_(std::move(image)) {}
  ~DevicePagesSide() override {
    if (base_) munmap(base_, size_);
  }

  Status Map() {
    int fd = open(image_.c_str(), O_RDWR);
    if (fd < 0) return Errno("open " + image_);
    struct stat st{};
    if (fstat(fd, &st) != 0) {
      close(fd);
      return Errno("stat " + image_);
    }
    size_ = static_cast<uint64_t>(st.st_size);
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return Errno("mmap " + image_);
    base_ = static_cast<uint8_t*>(p);
    return Status::Ok();
  }

  Status SetPerOp(PerOp mode) override { return Status::Ok(); }
  Status RemoveData() override { return Status::Ok(); }
  Status CreateData() override { return OpenData(); }
  Status OpenData() override {
    auto e = dax_->fs()->Bmap(dax_->data_ino());
    if (!e.ok()) return e.status();
    extents_ = std::move(*e);
    for (const daxfs::FileExtent& x : extents_) {
      if (x.unwritten || !Contains(x.device_offset, x.length)) return Status::Invalid("unusable extent");
    }
    return Status::Ok();
  }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    return Copy(offset, out.size(), [&](uint8_t* dev, uint64_t done, uint64_t n) {
      std::memcpy(out.data() + done, dev, n);
    });
  }
  Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    return Copy(offset, data.size(), [&](uint8_t* dev, uint64_t done, uint64_t n) {
      std::memcpy(dev, data.data() + done, n);
    });
  }
  Status SyncData() override { return Status::Ok(); }
  Status MakeFilesDir() override { return Status::NotSupported("memcpy has no files"); }
  Status RemoveFilesDir() override { return Status::NotSupported("memcpy has no files"); }
  Status CreateSmall(const std::string&, std::span<const uint8_t>) override {
    return Status::NotSupported("memcpy has no files");
  }
  Status RemoveSmall(const std::string&) override { return Status::NotSupported("memcpy has no files"); }
  Status SyncAll() override { return Status::Ok(); }

 private:
  bool Contains(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }
  // Calls fn(device pointer, bytes done, bytes) for each extent piece of [offset, +length).
  template <typename Fn>
  Status Copy(uint64_t offset, uint64_t length, Fn fn) {
    auto it = std::upper_bound(extents_.begin(), extents_.end(), offset,
                               [](uint64_t o, const daxfs::FileExtent& x) { return o < x.file_offset; });
    if (it == extents_.begin()) return Status::IoError("offset before the first extent");
    --it;
    for (uint64_t done = 0; done < length; ++it) {
      uint64_t pos = offset + done;
      if (it == extents_.end() || pos < it->file_offset || pos >= it->file_offset + it->length) {
        return Status::IoError(fmt::format("file offset {} is not mapped", pos));
      }
      uint64_t n = std::min(length - done, it->file_offset + it->length - pos);
      fn(base_ + it->device_offset + (pos - it->file_offset), done, n);
      done += n;
    }
    return Status::Ok();
  }

  DaxfsSide* dax_;
  std::string image_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::vector<daxfs::FileExtent> extents_;
};

// ---- Results table.

struct Row {
  std::string workload;
  std::string unit;  // "ops/s" or "MiB/s"
  std::optional<double> daxfs;
  std::string baseline_name;
  std::optional<double> baseline;
  std::optional<double> target;  // minimum ratio daxfs/baseline
};

std::string Num(std::optional<double> v) {
  if (!v) return "-";
  return *v >= 100 ? fmt::format("{:.0f}", *v) : fmt::format("{:.1f}", *v);
}

void PrintTable(const std::vector<Row>& rows) {
  fmt::print("\n| workload | unit | daxfs | baseline | baseline value | ratio | target | met |\n");
  fmt::print("|---|---|---:|---|---:|---:|---:|---|\n");
  for (const Row& r : rows) {
    if (!r.daxfs && !r.baseline) continue;  // neither side ran (--only, or a skipped baseline)
    std::optional<double> ratio;
    if (r.daxfs && r.baseline && *r.baseline > 0) ratio = *r.daxfs / *r.baseline;
    std::string target = r.target ? fmt::format(">= {:g}x", *r.target) : "-";
    std::string met = !r.target || !ratio ? "-" : *ratio >= *r.target ? "met" : "NOT met";
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} |\n", r.workload, r.unit, Num(r.daxfs),
               r.baseline_name, Num(r.baseline), ratio ? fmt::format("{:.2f}x", *ratio) : "-",
               target, met);
  }
}

// ---- Options and the run.

uint64_t ParseSize(const std::string& s) {
  size_t pos = 0;
  uint64_t v = std::stoull(s, &pos);
  std::string suffix = s.substr(pos);
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.pop_back();
  if (suffix.size() > 1 && suffix.back() == 'i') suffix.pop_back();
  if (suffix.empty()) return v;
  if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'k': case 'K': return v << 10;
      case 'm': case 'M': return v << 20;
      case 'g': case 'G': return v << 30;
      case 't': case 'T': return v << 40;
    }
  }
  throw std::invalid_argument("bad size suffix");
}

struct Options {
  uint64_t size = 1ULL << 30;
  size_t ops = 200000;
  size_t durable_ops = 20000;
  size_t files = 100000;
  size_t durable_files = 20000;
  size_t reps = 3;
  std::string dir = "/dev/shm";
  std::string only;
  std::vector<std::string> workloads = {"seq", "pread", "pwrite", "pwrite-durable", "create",
                                        "create-durable"};
  uint64_t seed = 42;

  bool Wants(const std::string& w) const {
    return std::find(workloads.begin(), workloads.end(), w) != workloads.end();
  }
};

// One side of a comparison. A failing daxfs ends the run; a failing baseline reports and drops
// out of the workload.
struct Contender {
  std::string name;
  Side* side = nullptr;
  bool fatal = false;
};

// Runs `fn` on each contender `warmup` times untimed, then `reps` times, alternating (so that
// noise from other processes on the machine hits all alike), and returns the median per
// contender (nullopt: absent or failed).
std::vector<std::optional<double>> Measure(const std::string& what, size_t reps,
                                           const std::vector<Contender>& cs,
                                           const std::function<Result<double>(Side&)>& fn,
                                           size_t warmup = 0) {
  std::vector<std::optional<double>> out(cs.size());
  if (std::none_of(cs.begin(), cs.end(), [](const Contender& c) { return c.side != nullptr; })) {
    return out;
  }
  std::vector<std::vector<double>> got(cs.size());
  std::vector<bool> failed(cs.size(), false);
  for (size_t r = 0; r < warmup + reps; ++r) {
    for (size_t i = 0; i < cs.size(); ++i) {
      if (!cs[i].side || failed[i]) continue;
      auto v = fn(*cs[i].side);
      if (v.ok()) {
        if (r >= warmup) got[i].push_back(*v);
        continue;
      }
      if (cs[i].fatal) Fatal(fmt::format("{} {}: {}", cs[i].name, what, v.status().ToString()));
      fmt::print("{} {} failed: {}\n", cs[i].name, what, v.status().ToString());
      failed[i] = true;
    }
  }
  // One line per workload: each contender's median, then every repetition in run order.
  std::string line = fmt::format("  {:<38}", what);
  for (size_t i = 0; i < cs.size(); ++i) {
    if (!got[i].empty() && !failed[i]) out[i] = Median(got[i]);
    if (!cs[i].side) continue;
    std::string each;
    for (double v : got[i]) each += Joined(each, Num(v));
    line += fmt::format(" | {} {} ({})", cs[i].name, Num(out[i]), each);
  }
  fmt::print("{}\n", line);
  std::fflush(stdout);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string size_text = "1G";
  CLI::App app{"daxfs filesystem scenarios vs XFS"};
  app.add_option("--size", size_text, "data file size (K/M/G suffixes)")->capture_default_str();
  app.add_option("--ops", opt.ops, "random 4 KiB reads and non-durable writes")->capture_default_str();
  app.add_option("--durable-ops", opt.durable_ops, "random 4 KiB writes durable each")->capture_default_str();
  app.add_option("--files", opt.files, "files created then unlinked")->capture_default_str();
  app.add_option("--durable-files", opt.durable_files, "files created/unlinked durable each")
      ->capture_default_str();
  app.add_option("--reps", opt.reps, "repetitions (median reported)")->capture_default_str();
  app.add_option("--dir", opt.dir, "where the images go (tmpfs)")->capture_default_str();
  app.add_option("--only", opt.only, "run one side only")->check(CLI::IsMember({"daxfs", "xfs"}));
  app.add_option("--workloads", opt.workloads, "comma-separated list")
      ->delimiter(',')
      ->check(CLI::IsMember({"seq", "pread", "pwrite", "pwrite-durable", "create", "create-durable"}))
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "seed of the random offsets")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    opt.size = ParseSize(size_text);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fs_bench: bad --size {}\n", size_text);
    return 2;
  }
  if (opt.size < kLarge || opt.size % kLarge != 0 || opt.reps == 0) {
    fmt::print(stderr, "fs_bench: --size must be a positive multiple of 1 MiB, --reps >= 1\n");
    return 2;
  }

  std::string command;
  for (int i = 0; i < argc; ++i) command += Joined(command, argv[i]);
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  fmt::print("command: {}\nmachine: {}\ndate:    {} (load average {})\n", command, Machine(), date,
             LoadAverage());

  bench_util::CleanUpAtExitAndOnSignals(CleanUp);

  // Space: the daxfs image (allocated up front), two memcpy files of the data file's size, and
  // the XFS image (sparse, grows as used).
  uint64_t daxfs_size =
      RoundUp(std::max<uint64_t>(3ULL << 30, 2 * opt.size + 2 * opt.files * kSmall + (256 << 20)), 64 << 20);
  uint64_t xfs_size = RoundUp(2 * opt.size + 4 * opt.files * kSmall + (512 << 20), 64 << 20);
  uint64_t xfs_used = opt.size + 2 * opt.files * kSmall + (256 << 20);
  struct statvfs vfs{};
  if (statvfs(opt.dir.c_str(), &vfs) != 0) Fatal(fmt::format("statvfs {}: {}", opt.dir, std::strerror(errno)));
  uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  bool run_daxfs = opt.only != "xfs", run_xfs = opt.only != "daxfs";
  uint64_t need_daxfs = run_daxfs ? daxfs_size + 2 * opt.size : 0;
  auto gib = [](uint64_t b) { return b / double(1ULL << 30); };
  fmt::print("space:   {} has {:.1f} GiB free; daxfs image {:.2f} GiB + 2 memcpy files of {:.2f} GiB"
             " + XFS image {:.2f} GiB (sparse, ~{:.2f} GiB used)\n",
             opt.dir, gib(avail), gib(daxfs_size), gib(opt.size), gib(xfs_size), gib(xfs_used));
  if (avail < need_daxfs) {
    Fatal(fmt::format("{} is too small: daxfs and memcpy files need {:.2f} GiB, {:.2f} GiB free",
                      opt.dir, gib(need_daxfs), gib(avail)));
  }
  fmt::print("sizes:   file {} MiB, {} random ops ({} durable), {} files ({} durable), {} reps,"
             " seed {}, daxfs group_commit_ops {}\n",
             opt.size / kMiB, opt.ops, opt.durable_ops, opt.files, opt.durable_files, opt.reps,
             opt.seed, kGroupCommitOps);

  // daxfs and the memcpy baselines.
  std::unique_ptr<DaxfsSide> dax;
  std::unique_ptr<RawSide> raw, raw_fresh;
  std::unique_ptr<DevicePagesSide> pages;
  if (run_daxfs) {
    std::string image = fmt::format("{}/fs_bench-daxfs-{}.img", opt.dir, getpid());
    CheckOk(daxfs::device::CreateDeviceFile(image, daxfs_size), "create image");
    SetField(g_left.daxfs_image, sizeof g_left.daxfs_image, image);
    CheckOk(daxfs::Filesystem::Format(image, {}), "format");
    dax = std::make_unique<DaxfsSide>(image);
    CheckOk(dax->Mount(PerOp::kNone), "mount");
    raw = std::make_unique<RawSide>(fmt::format("{}/fs_bench-raw-{}.img", opt.dir, getpid()),
                                    opt.size, false, g_left.raw_file, sizeof g_left.raw_file);
    CheckOk(raw->Map(), "memcpy file");
    if (opt.Wants("seq")) {
      raw_fresh = std::make_unique<RawSide>(fmt::format("{}/fs_bench-raw-fresh-{}.img", opt.dir, getpid()),
                                            opt.size, true, g_left.raw_fresh_file,
                                            sizeof g_left.raw_fresh_file);
      CheckOk(raw_fresh->Map(), "memcpy file");
      pages = std::make_unique<DevicePagesSide>(dax.get(), image);
      CheckOk(pages->Map(), "second mapping of the image");
    }
  }

  // XFS.
  std::unique_ptr<PosixSide> xfs;
  if (run_xfs) {
    Result<std::string> mnt = Status::Error(ENOSPC, fmt::format("not enough space in {}", opt.dir));
    if (avail >= need_daxfs + xfs_used) mnt = MountLoop("fs_bench", opt.dir, "xfs", xfs_size);
    if (!mnt.ok()) {
      fmt::print("XFS part skipped: {}\n", mnt.status().ToString());
      CleanUpLoop();
    } else {
      xfs = std::make_unique<PosixSide>(*mnt);
      Status s = xfs->Open();
      if (!s.ok()) {
        fmt::print("XFS part skipped: {}\n", s.ToString());
        xfs.reset();
        CleanUpLoop();
      } else {
        fmt::print("XFS:     mkfs.xfs -f -m reflink=1,rmapbt=1 on {} over {}, mounted at {}\n",
                   g_loop.loop_dev, g_loop.image, *mnt);
      }
    }
  } else {
    fmt::print("XFS part skipped: --only daxfs\n");
  }
  if (!dax && !xfs) Fatal("nothing to run");
  fmt::print("\n");

  Contender d{"daxfs", dax.get(), true};
  Contender x{"XFS", xfs.get(), false};
  Contender m{"memcpy", raw.get(), true};
  Contender mf{"memcpy-fresh", raw_fresh.get(), true};
  Contender mp{"memcpy-devpages", pages.get(), true};
  std::vector<Row> rows;
  Buffers buf;
  std::string mib = fmt::format("{} MiB", opt.size / kMiB);

  // The data file: 1 MiB sequential writes of a fresh file (sync included), then reads.
  if (opt.Wants("seq")) {
    fmt::print("sequential, 1 MiB I/O, {} file:\n", mib);
    // One untimed round first: on this VM the first use of memory the guest has not touched
    // yet is several times slower for everyone (memcpy included), which says nothing about
    // the filesystems.
    // memcpy-devpages must follow daxfs in each round (it rewrites the file daxfs just wrote).
    auto w = Measure("write (fresh file, fsync at end)", opt.reps, {d, mp, x, m, mf},
                     [&](Side& s) { return SeqWrite(s, opt.size, buf); }, /*warmup=*/1);
    auto r = Measure("read", opt.reps, {d, mp, x, m}, [&](Side& s) { return SeqRead(s, opt.size, buf); });
    rows.push_back({"1 MiB seq write, fresh " + mib + " file, fsync at end", "MiB/s", w[0], "XFS", w[2], std::nullopt});
    rows.push_back({"1 MiB seq read, " + mib + " file", "MiB/s", r[0], "XFS", r[2], std::nullopt});
    rows.push_back({"seq write bandwidth (daxfs Write, 1 MiB buffers)", "MiB/s", w[0],
                    "memcpy into a /dev/shm file, pages touched before", w[3], 0.8});
    rows.push_back({"seq write bandwidth (daxfs Write, 1 MiB buffers)", "MiB/s", w[0],
                    "memcpy into the same device pages", w[1], std::nullopt});
    rows.push_back({"seq write bandwidth (daxfs Write, 1 MiB buffers)", "MiB/s", w[0],
                    "memcpy into a /dev/shm file, pages never touched", w[4], std::nullopt});
    rows.push_back({"seq read bandwidth (daxfs Read, 1 MiB buffers)", "MiB/s", r[0],
                    "memcpy from a /dev/shm file", r[3], 0.8});
    rows.push_back({"seq read bandwidth (daxfs Read, 1 MiB buffers)", "MiB/s", r[0],
                    "memcpy from the same device pages", r[1], std::nullopt});
    pages.reset();
    raw_fresh.reset();
    unlink(g_left.raw_fresh_file);
    g_left.raw_fresh_file[0] = '\0';
  } else {
    fmt::print("preparing the {} data file (untimed)\n", mib);
    Measure("prepare (seq write)", 1, {d, x, m}, [&](Side& s) { return SeqWrite(s, opt.size, buf); });
  }

  std::mt19937_64 rng(opt.seed);
  std::vector<uint64_t> blocks(std::max(opt.ops, opt.durable_ops));
  for (uint64_t& b : blocks) b = rng() % (opt.size / kSmall);

  if (opt.Wants("pread") || opt.Wants("pwrite") || opt.Wants("pwrite-durable")) {
    fmt::print("random 4 KiB, aligned, seed {}:\n", opt.seed);
  }
  if (opt.Wants("pread")) {
    std::vector<uint64_t> reads(blocks.begin(), blocks.begin() + opt.ops);
    auto p = Measure("pread", opt.reps, {d, x, m}, [&](Side& s) { return RandRead(s, reads, buf); });
    rows.push_back({"4 KiB random pread", "ops/s", p[0], "XFS", p[1], 3.0});
    rows.push_back({"4 KiB random pread", "ops/s", p[0], "memcpy 4 KiB from the mapping", p[2], std::nullopt});
    // Parallel readers: the same reads on 1 and on 2 threads, each side against itself.
    auto one = Measure("pread, 1 thread", opt.reps, {d, x},
                       [&](Side& s) { return RandReadThreads(s, reads, 1); });
    auto two = Measure("pread, 2 threads", opt.reps, {d, x},
                       [&](Side& s) { return RandReadThreads(s, reads, 2); });
    rows.push_back({"4 KiB random pread, 2 threads", "ops/s", two[0], "daxfs, 1 thread", one[0], 1.8});
    rows.push_back({"4 KiB random pread, 2 threads (XFS)", "ops/s", two[1], "XFS, 1 thread", one[1], std::nullopt});
  }
  if (opt.Wants("pwrite")) {
    auto p = Measure("pwrite, fsync at end", opt.reps, {d, x},
                     [&](Side& s) { return RandWrite(s, blocks, opt.ops, buf); });
    rows.push_back({"4 KiB random pwrite, not durable per write (daxfs kGroupCommit), fsync at end",
                    "ops/s", p[0], "XFS buffered", p[1], 2.0});
  }
  if (opt.Wants("pwrite-durable")) {
    auto durable = [&](PerOp mode) {
      return [&, mode](Side& s) -> Result<double> {
        RETURN_IF_ERROR(s.SetPerOp(mode));
        auto v = RandWrite(s, blocks, opt.durable_ops, buf);
        RETURN_IF_ERROR(s.SetPerOp(PerOp::kNone));
        return v;
      };
    };
    auto f = Measure("pwrite durable each (XFS: fsync)", opt.reps, {d, x}, durable(PerOp::kFsync));
    auto fd = Measure("pwrite durable each (XFS: fdatasync)", opt.reps, {x}, durable(PerOp::kFdatasync));
    rows.push_back({"4 KiB random pwrite, durable per write (daxfs kOnReturn)", "ops/s", f[0],
                    "XFS pwrite + fsync", f[1], 20.0});
    rows.push_back({"4 KiB random pwrite, durable per write (daxfs kOnReturn)", "ops/s", f[0],
                    "XFS pwrite + fdatasync", fd[0], std::nullopt});
  }

  auto create_unlink = [&](size_t n, PerOp mode, const std::string& what) {
    std::vector<std::string> names(n);
    for (size_t i = 0; i < n; ++i) names[i] = fmt::format("f{:07}", i);
    // Each rep measures both; the unlink figure waits in `unlinks` for the second Measure.
    std::vector<std::vector<double>> unlinks(2);
    auto run = [&](Side& s) -> Result<double> {
      RETURN_IF_ERROR(s.SetPerOp(mode));
      ASSIGN_OR_RETURN(CreateUnlink r, CreateThenUnlink(s, names, buf));
      RETURN_IF_ERROR(s.SetPerOp(PerOp::kNone));
      unlinks[&s == d.side ? 0 : 1].push_back(r.unlink);
      return r.create;
    };
    auto c = Measure(what + ": create", opt.reps, {d, x}, run);
    std::vector<std::optional<double>> u(2);
    std::string line = fmt::format("  {:<38}", what + ": unlink");
    for (size_t i = 0; i < 2; ++i) {
      if (c[i] && !unlinks[i].empty()) u[i] = Median(unlinks[i]);
      std::string each;
      for (double v : unlinks[i]) each += Joined(each, Num(v));
      if (!each.empty()) line += fmt::format(" | {} {} ({})", i == 0 ? "daxfs" : "XFS", Num(u[i]), each);
    }
    fmt::print("{}\n", line);
    return std::pair(c, u);
  };
  if (opt.Wants("create")) {
    fmt::print("small files in one directory, {} files:\n", opt.files);
    auto [c, u] = create_unlink(opt.files, PerOp::kNone, "sync at end");
    rows.push_back({fmt::format("create + 4 KiB write + close x{}, sync at end (daxfs kGroupCommit)", opt.files),
                    "ops/s", c[0], "XFS", c[1], 2.0});
    rows.push_back({fmt::format("unlink x{}, sync at end (daxfs kGroupCommit)", opt.files), "ops/s", u[0],
                    "XFS", u[1], 2.0});
  }
  if (opt.Wants("create-durable")) {
    fmt::print("small files in one directory, {} files, durable each:\n", opt.durable_files);
    auto [c, u] = create_unlink(opt.durable_files, PerOp::kFsync, "durable each");
    rows.push_back({fmt::format("create + 4 KiB write + close x{}, durable each (daxfs kOnReturn)",
                                opt.durable_files),
                    "ops/s", c[0], "XFS + fsync(file)", c[1], std::nullopt});
    rows.push_back({fmt::format("unlink x{}, durable each (daxfs kOnReturn)", opt.durable_files), "ops/s",
                    u[0], "XFS + fsync(dir)", u[1], std::nullopt});
  }

  // The figures are printed even when the check fails (the run then exits with status 1).
  bool consistent = true;
  if (dax) {
    auto check = dax->fs()->Check();
    CheckOk(check.ok() ? Status::Ok() : check.status(), "check");
    consistent = check->ok();
    if (consistent) {
      fmt::print("daxfs check: consistent ({} inodes, {} extents)\n", check->inodes_checked,
                 check->extents_checked);
    } else {
      fmt::print("daxfs check: {} problems, the first: {}\n", check->problems.size(),
                 check->problems.front());
    }
    CheckOk(dax->Unmount(), "unmount");
    dax.reset();
  }
  xfs.reset();  // closes its descriptors so that the unmount below succeeds
  raw.reset();
  fmt::print("load average at the end: {}\n", LoadAverage());
  PrintTable(rows);
  CleanUp();
  return consistent ? 0 : 1;
}
