// Opens a device file under an flock: real pmem is mapped and flushed through libpmem2, anything
// else with mmap(MAP_SHARED) and msync. Also creates emulated device files.
// Knows only paths, file descriptors and mappings: nothing of superblocks, trees or the engine.
#include "device/device.h"

#include <fcntl.h>
#include <libpmem2.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "base/log.h"

namespace daxfs::device {
namespace {

constexpr uint64_t kSizeUnit = 4096;

Status ErrnoError(const std::string& path, int err) {
  return Status::Error(err, path + ": " + std::strerror(err));
}

Status CheckDeviceSize(const std::string& path, uint64_t size) {
  if (size > 0 && size % kSizeUnit == 0) return Status::Ok();
  return Status::Invalid(path + ": size " + std::to_string(size) +
                         " is not a positive multiple of " + std::to_string(kSizeUnit));
}

enum class FileKind { kRegular, kBlock, kChar };

Result<FileKind> KindOf(const std::string& path, const struct stat& st) {
  if (S_ISREG(st.st_mode)) return FileKind::kRegular;
  if (S_ISBLK(st.st_mode)) return FileKind::kBlock;
  if (S_ISCHR(st.st_mode)) return FileKind::kChar;
  if (S_ISDIR(st.st_mode)) return ErrnoError(path, EISDIR);
  return Status::Invalid(path + ": not a regular file, block device or DAX device");
}

// Appends libpmem2's last error text, when it left one.
std::string WithPmemReason(std::string message) {
  const char* reason = pmem2_errormsg();
  if (reason != nullptr && reason[0] != '\0') message += std::string(" (") + reason + ")";
  return message;
}

// Owners for libpmem2's C handles.
struct SourceDeleter {
  void operator()(pmem2_source* s) const { pmem2_source_delete(&s); }
};
struct ConfigDeleter {
  void operator()(pmem2_config* c) const { pmem2_config_delete(&c); }
};
using SourcePtr = std::unique_ptr<pmem2_source, SourceDeleter>;
using ConfigPtr = std::unique_ptr<pmem2_config, ConfigDeleter>;

SourcePtr SourceFromFd(int fd) {
  pmem2_source* source = nullptr;
  if (pmem2_source_from_fd(&source, fd) != 0) return nullptr;
  return SourcePtr(source);
}

// Maps the whole source with libpmem2, or returns nullptr (pmem2_errormsg() says why).
pmem2_map* NewPmemMap(const pmem2_source& source, bool read_only) {
  pmem2_config* raw_config = nullptr;
  if (pmem2_config_new(&raw_config) != 0) return nullptr;
  ConfigPtr config(raw_config);
  unsigned protection = PMEM2_PROT_READ | (read_only ? 0 : PMEM2_PROT_WRITE);
  if (pmem2_config_set_required_store_granularity(config.get(), PMEM2_GRANULARITY_PAGE) != 0 ||
      pmem2_config_set_protection(config.get(), protection) != 0) {
    return nullptr;
  }
  pmem2_map* map = nullptr;
  if (pmem2_map_new(&map, config.get(), &source) != 0) return nullptr;
  return map;
}

class FileDevice final : public Device {
 public:
  FileDevice(std::string path, int fd, bool read_only)
      : path_(std::move(path)), fd_(fd), read_only_(read_only) {}
  ~FileDevice() override;

  // Everything after open(2): lock, type check, size (read under the lock), mapping.
  Status Open(const OpenOptions& options);

  bool IsPmem() const override { return pmem_map_ != nullptr; }
  std::string Describe() const override;
  int Fd() const override { return fd_; }
  Status Flush(uint64_t offset, uint64_t length) override;
  Status Drain() override;
  Status CopyAndFlush(uint64_t to, uint64_t from, uint64_t length) override;
  Status InjectPoison(uint64_t offset, uint64_t length) override;

 private:
  Status Lock();
  // The bad list at open: libpmem2's bad blocks for real pmem, "<path>.badblocks" otherwise.
  Status LoadPmemBadBlocks(const pmem2_source& source);
  Status LoadBadBlockFile();
  Result<uint64_t> DeviceSize(FileKind kind, const struct stat& st, const pmem2_source* source);
  // Maps through libpmem2 and keeps the mapping only if it is real pmem (cache-line or byte
  // granularity). False if libpmem2 cannot map the file or it is page-granular.
  bool MapPmem(const pmem2_source& source);
  Status Map(FileKind kind, const pmem2_source* source, const OpenOptions& options);
  Status MapShared();

  std::string path_;
  int fd_;
  bool read_only_;
  bool locked_ = false;
  pmem2_map* pmem_map_ = nullptr;  // set only for real pmem; otherwise base_ is our own mmap
  pmem2_granularity granularity_ = PMEM2_GRANULARITY_PAGE;
  pmem2_flush_fn flush_fn_ = nullptr;
  pmem2_drain_fn drain_fn_ = nullptr;
  pmem2_memcpy_fn memcpy_fn_ = nullptr;
  // Emulated pmem: Flush only records its range; Drain makes the smallest range covering every
  // range flushed since the last Drain durable with one msync (on one mapping, msync costs a
  // system call whatever its length, so a commit pays one per persist point instead of one per
  // flushed run). Drain holds the mutex through the msync, so a Drain that finds nothing pending
  // returns only after the msync that took its ranges finished.
  std::mutex flush_mu_;
  uint64_t pending_begin_ = UINT64_MAX, pending_end_ = 0;
  Status SyncPending();
};

FileDevice::~FileDevice() {
  if (pmem_map_ != nullptr) {
    pmem2_map_delete(&pmem_map_);
  } else if (base_ != nullptr) {
    if (!read_only_) {
      std::lock_guard<std::mutex> g(flush_mu_);
      (void)SyncPending();  // ranges flushed and never drained: durable at close, as before
    }
    munmap(base_, size_);
  }
  if (locked_) flock(fd_, LOCK_UN);
  close(fd_);
}

Status FileDevice::Open(const OpenOptions& options) {
  RETURN_IF_ERROR(Lock());
  struct stat st;
  if (fstat(fd_, &st) != 0) return ErrnoError(path_, errno);
  ASSIGN_OR_RETURN(FileKind kind, KindOf(path_, st));
  SourcePtr source = SourceFromFd(fd_);
  if (source == nullptr) {
    base::Log(base::LogLevel::kDebug, "{}: libpmem2 cannot use it: {}", path_, pmem2_errormsg());
    if (kind == FileKind::kChar) {
      return Status::Invalid(WithPmemReason(path_ + ": not a DAX device"));
    }
  }
  ASSIGN_OR_RETURN(size_, DeviceSize(kind, st, source.get()));
  RETURN_IF_ERROR(CheckDeviceSize(path_, size_));
  RETURN_IF_ERROR(Map(kind, source.get(), options));
  if (pmem_map_ != nullptr) return LoadPmemBadBlocks(*source);
  return LoadBadBlockFile();
}

Status FileDevice::Lock() {
  if (flock(fd_, (read_only_ ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Busy(path_ + ": device is in use");
    return ErrnoError(path_, errno);
  }
  locked_ = true;
  return Status::Ok();
}

Result<uint64_t> FileDevice::DeviceSize(FileKind kind, const struct stat& st,
                                        const pmem2_source* source) {
  if (kind == FileKind::kRegular) return static_cast<uint64_t>(st.st_size);
  if (kind == FileKind::kBlock) {
    uint64_t size = 0;
    if (ioctl(fd_, BLKGETSIZE64, &size) != 0) return ErrnoError(path_, errno);
    return size;
  }
  size_t size = 0;
  if (pmem2_source_size(source, &size) != 0) {
    return Status::IoError(WithPmemReason(path_ + ": cannot read the DAX device size"));
  }
  return static_cast<uint64_t>(size);
}

bool FileDevice::MapPmem(const pmem2_source& source) {
  pmem2_map* map = NewPmemMap(source, read_only_);
  if (map == nullptr) {
    base::Log(base::LogLevel::kDebug, "{}: libpmem2 cannot map it: {}", path_, pmem2_errormsg());
    return false;
  }
  pmem2_granularity granularity = pmem2_map_get_store_granularity(map);
  if (granularity == PMEM2_GRANULARITY_PAGE) {
    pmem2_map_delete(&map);
    return false;
  }
  pmem_map_ = map;
  granularity_ = granularity;
  base_ = static_cast<uint8_t*>(pmem2_map_get_address(map));
  flush_fn_ = pmem2_get_flush_fn(map);
  drain_fn_ = pmem2_get_drain_fn(map);
  memcpy_fn_ = pmem2_get_memcpy_fn(map);
  return true;
}

Status FileDevice::Map(FileKind kind, const pmem2_source* source, const OpenOptions& options) {
  if (source != nullptr && MapPmem(*source)) return Status::Ok();
  if (kind == FileKind::kChar) {
    return Status::IoError(WithPmemReason(path_ + ": cannot map the DAX device"));
  }
  if (options.require_pmem) {
    return Status::NotSupported(path_ + ": not persistent memory (only page-granular msync)");
  }
  return MapShared();
}

Status FileDevice::MapShared() {
  int protection = PROT_READ | (read_only_ ? 0 : PROT_WRITE);
  void* address = mmap(nullptr, size_, protection, MAP_SHARED, fd_, 0);
  if (address == MAP_FAILED) return ErrnoError(path_, errno);
  base_ = static_cast<uint8_t*>(address);
  return Status::Ok();
}

std::string FileDevice::Describe() const {
  std::string kind = "emulated pmem, msync";
  if (granularity_ == PMEM2_GRANULARITY_CACHE_LINE) kind = "persistent memory, cache-line flush";
  if (granularity_ == PMEM2_GRANULARITY_BYTE) kind = "persistent memory, eADR";
  return path_ + " (" + kind + (read_only_ ? ", read-only)" : ")");
}

Status FileDevice::Flush(uint64_t offset, uint64_t length) {
  if (read_only_) return Status::ReadOnly(path_ + ": device is read-only");
  if (!Contains(offset, length)) {
    return Status::Invalid(path_ + ": flush of [" + std::to_string(offset) + ", +" +
                           std::to_string(length) + ") is outside the device");
  }
  if (length == 0) return Status::Ok();
  if (pmem_map_ != nullptr) {
    flush_fn_(base_ + offset, length);
    return Status::Ok();
  }
  std::lock_guard<std::mutex> g(flush_mu_);
  pending_begin_ = std::min(pending_begin_, offset);
  pending_end_ = std::max(pending_end_, offset + length);
  return Status::Ok();
}

// Called with flush_mu_ held.
Status FileDevice::SyncPending() {
  if (pending_end_ == 0) return Status::Ok();
  static const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t start = pending_begin_ / kPage * kPage;
  uint64_t end = pending_end_;
  pending_begin_ = UINT64_MAX;
  pending_end_ = 0;
  if (msync(base_ + start, end - start, MS_SYNC) != 0) {
    return Status::IoError(path_ + ": msync failed: " + std::strerror(errno));
  }
  return Status::Ok();
}

Status FileDevice::CopyAndFlush(uint64_t to, uint64_t from, uint64_t length) {
  if (read_only_) return Status::ReadOnly(path_ + ": device is read-only");
  if (pmem_map_ == nullptr) return Device::CopyAndFlush(to, from, length);
  if (!Contains(to, length) || !Contains(from, length) ||
      (to < from + length && from < to + length)) {
    return Status::Invalid(path_ + ": copy outside the device or overlapping");
  }
  // Non-temporal and flushed by libpmem2 itself; durable at the next drain.
  memcpy_fn_(base_ + to, base_ + from, length, PMEM2_F_MEM_NONTEMPORAL | PMEM2_F_MEM_NODRAIN);
  return Status::Ok();
}

Status FileDevice::Drain() {
  if (read_only_) return Status::ReadOnly(path_ + ": device is read-only");
  if (pmem_map_ != nullptr) {
    if (drain_fn_ != nullptr) drain_fn_();
    return Status::Ok();
  }
  std::lock_guard<std::mutex> g(flush_mu_);
  return SyncPending();
}

// Refuses anything but a regular file, and takes the lock so that a device in use is never
// truncated under its owner. Changes nothing.
Status LockNewFile(const std::string& path, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoError(path, errno);
  if (!S_ISREG(st.st_mode)) return Status::Invalid(path + ": not a regular file");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Busy(path + ": device is in use");
    return ErrnoError(path, errno);
  }
  return Status::Ok();
}

// Empties the file, sizes it, and reserves its space so that a full file system fails here
// rather than with SIGBUS on a later store.
Status SizeNewFile(const std::string& path, int fd, uint64_t size) {
  if (ftruncate(fd, 0) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return ErrnoError(path, errno);
  }
  int err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == EOPNOTSUPP || err == EINVAL) {
    base::Log(base::LogLevel::kDebug, "{}: no fallocate ({}), left sparse", path,
              std::strerror(err));
    return Status::Ok();
  }
  return err == 0 ? Status::Ok() : ErrnoError(path, err);
}

}  // namespace

Result<std::unique_ptr<Device>> OpenDevice(const std::string& path, const OpenOptions& options) {
  int fd = open(path.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, errno);
  auto device = std::make_unique<FileDevice>(path, fd, options.read_only);
  RETURN_IF_ERROR(device->Open(options));
  return std::unique_ptr<Device>(std::move(device));
}

Status CreateDeviceFile(const std::string& path, uint64_t size, bool overwrite) {
  RETURN_IF_ERROR(CheckDeviceSize(path, size));
  if (size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return Status::TooBig(path + ": size " + std::to_string(size) + " is too large");
  }
  // Not O_TRUNC: that would happen before the lock. SizeNewFile truncates once it is held.
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | (overwrite ? 0 : O_EXCL);
  int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) return ErrnoError(path, errno);
  Status status = LockNewFile(path, fd);
  if (status.ok()) {
    status = SizeNewFile(path, fd, size);
    if (!status.ok()) unlink(path.c_str());  // its old contents, if any, are gone already
  }
  close(fd);
  return status;
}

}  // namespace daxfs::device


// ---- Poison: the bad-range list every device keeps, its file beside an emulated device, and
// libpmem2's bad blocks for real pmem.
namespace daxfs::device {

std::vector<BadRange> Device::BadRanges() const {
  if (bad_count_.load(std::memory_order_acquire) == 0) return {};
  std::lock_guard<std::mutex> lock(bad_mu_);
  return bad_;
}

bool Device::IsBad(uint64_t offset, uint64_t length) const {
  if (bad_count_.load(std::memory_order_relaxed) == 0 || length == 0) return false;
  std::lock_guard<std::mutex> lock(bad_mu_);
  // The first range ending after `offset` overlaps iff it starts before the end.
  auto it = std::upper_bound(bad_.begin(), bad_.end(), offset, [](uint64_t o, const BadRange& r) {
    return o < r.offset + r.length;
  });
  return it != bad_.end() && it->offset < offset + std::min(length, UINT64_MAX - offset);
}

namespace {

// memcpy with non-temporal 16-byte stores where both ends allow it, then a store fence so the
// stores are ordered before whatever makes them durable.
void CopyNonTemporal(uint8_t* dst, const uint8_t* src, uint64_t length) {
#if defined(__SSE2__)
  if (reinterpret_cast<uintptr_t>(dst) % 16 == 0 && length % 64 == 0) {
    for (uint64_t i = 0; i < length; i += 64) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
      __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 32));
      __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 48), d);
    }
    _mm_sfence();
    return;
  }
#endif
  std::memcpy(dst, src, length);
}

}  // namespace

Status Device::CopyAndFlush(uint64_t to, uint64_t from, uint64_t length) {
  if (!Contains(to, length) || !Contains(from, length) ||
      (to < from + length && from < to + length)) {
    return Status::Invalid("copy of [" + std::to_string(from) + ", +" + std::to_string(length) +
                           ") to " + std::to_string(to) + ": outside the device or overlapping");
  }
  if (length == 0) return Status::Ok();
  CopyNonTemporal(base_ + to, base_ + from, length);
  return Flush(to, length);
}

Status Device::CheckPoisonRange(uint64_t offset, uint64_t length) const {
  if (length == 0) return Status::Invalid("inject poison: empty range");
  if (!Contains(offset, length)) {
    return Status::Invalid("inject poison: [" + std::to_string(offset) + ", +" +
                           std::to_string(length) + ") is past the end of the device (" +
                           std::to_string(size_) + " bytes)");
  }
  return Status::Ok();
}

Status Device::InjectPoison(uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(CheckPoisonRange(offset, length));
  AddBadRange(offset, length);
  return Status::Ok();
}

void Device::AddBadRange(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  std::lock_guard<std::mutex> lock(bad_mu_);
  uint64_t end = offset + length;
  // Merge with every range that overlaps or touches [offset, end).
  auto first = std::lower_bound(bad_.begin(), bad_.end(), offset, [](const BadRange& r, uint64_t o) {
    return r.offset + r.length < o;
  });
  auto last = first;
  while (last != bad_.end() && last->offset <= end) {
    offset = std::min(offset, last->offset);
    end = std::max(end, last->offset + last->length);
    ++last;
  }
  first = bad_.erase(first, last);
  bad_.insert(first, BadRange{offset, end - offset});
  bad_count_.store(bad_.size(), std::memory_order_release);
}

namespace {

// "<offset> <length>" per line, decimal bytes; blank lines and '#' comments are allowed.
Result<std::vector<BadRange>> ParseBadBlocks(const std::string& file, const std::string& text) {
  std::vector<BadRange> out;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    unsigned long long offset = 0, length = 0;
    char extra = 0;
    int n = std::sscanf(line.c_str(), " %llu %llu %c", &offset, &length, &extra);
    bool digits_only = line.find_first_not_of("0123456789 \t\r") == std::string::npos;
    if (n != 2 || !digits_only || length == 0) {
      return Status::Invalid(file + ":" + std::to_string(line_no) +
                             ": expected \"<offset> <length>\" (decimal bytes, length > 0), got \"" +
                             line + "\"");
    }
    out.push_back({offset, length});
  }
  return out;
}

std::string BadBlocksPath(const std::string& path) { return path + ".badblocks"; }

Result<std::optional<std::string>> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return ErrnoError(path, errno);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoError(path, err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return std::optional<std::string>(std::move(text));
}

// Writes `text` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
Status WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(tmp, errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoError(tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return ErrnoError(tmp, err);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoError(path, err);
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

}  // namespace

// Real pmem: the bad blocks libpmem2 reports for the source ("not supported": none known).
Status FileDevice::LoadPmemBadBlocks(const pmem2_source& source) {
  pmem2_badblock_context* ctx = nullptr;
  int err = pmem2_badblock_context_new(&ctx, &source);
  if (err != 0) {
    base::Log(base::LogLevel::kDebug, "{}: no bad-block information: {}", path_, pmem2_errormsg());
    return Status::Ok();
  }
  pmem2_badblock bb;
  while (pmem2_badblock_next(ctx, &bb) == 0) {
    uint64_t offset = bb.offset, length = bb.length;
    if (offset >= size_) continue;
    AddBadRange(offset, std::min<uint64_t>(length, size_ - offset));
  }
  pmem2_badblock_context_delete(&ctx);
  return Status::Ok();
}

Status FileDevice::LoadBadBlockFile() {
  std::string file = BadBlocksPath(path_);
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadWholeFile(file));
  if (!text) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<BadRange> ranges, ParseBadBlocks(file, *text));
  for (const BadRange& r : ranges) {
    if (r.offset >= size_) continue;  // a range past a shrunk device no longer matters
    AddBadRange(r.offset, std::min(r.length, size_ - r.offset));
  }
  return Status::Ok();
}

Status FileDevice::InjectPoison(uint64_t offset, uint64_t length) {
  if (pmem_map_ != nullptr) {
    return Status::NotSupported(path_ + ": real persistent memory: use ndctl inject-error");
  }
  RETURN_IF_ERROR(CheckPoisonRange(offset, length));
  std::vector<BadRange> ranges = BadRanges();
  // The list as it will be, written first: the file never lags behind what we report.
  {
    std::vector<BadRange> merged = ranges;
    merged.push_back({offset, length});
    std::sort(merged.begin(), merged.end(),
              [](const BadRange& a, const BadRange& b) { return a.offset < b.offset; });
    std::string text;
    for (const BadRange& r : merged) {
      text += std::to_string(r.offset) + " " + std::to_string(r.length) + "\n";
    }
    RETURN_IF_ERROR(WriteFileAtomically(BadBlocksPath(path_), text));
  }
  AddBadRange(offset, length);
  return Status::Ok();
}

}  // namespace daxfs::device
