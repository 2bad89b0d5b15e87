// A byte-addressable device: one contiguous mapping plus the primitives that make stores durable.
// Uses only the base layer; knows nothing about superblocks, trees or files.
//
// Durability model (the same as libpmem2's): a store becomes durable only after Flush() of a range
// that contains it followed by Drain(). Persist(range) is Flush + Drain. Stores may also become
// durable earlier, at any time, in 64-byte lines (cache eviction): crash tests model exactly that.
// On emulated pmem, Flush only records its range and Drain issues one msync covering every range
// flushed since the last Drain (a persist point costs one system call, not one per range).
#pragma once

#include <cstddef>
#include <cstdint>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::device {

inline constexpr size_t kCacheLine = 64;

// A range of bad device bytes (poison).
struct BadRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const BadRange&) const = default;
};

class Device {
 public:
  virtual ~Device() = default;
  Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // The whole device is mapped at base()..base()+size(); loads and stores go straight to it.
  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }

  // True for real persistent memory (a DAX file or device, made durable by cache flushes);
  // false for emulated pmem (a regular or /dev/shm file, made durable by msync).
  virtual bool IsPmem() const = 0;
  // A one-line description: path and kind, for messages and `daxfs info`.
  virtual std::string Describe() const = 0;
  // The open file descriptor behind the mapping (kept for the device's lifetime, so that ranges
  // can be mapped again from it with MAP_FIXED), or -1 for devices not backed by a file.
  virtual int Fd() const { return -1; }

  // Starts making [offset, offset + length) durable. Not durable until Drain().
  virtual Status Flush(uint64_t offset, uint64_t length) = 0;
  // Waits until every range flushed so far is durable. Each call is one "persist point".
  virtual Status Drain() = 0;
  Status Persist(uint64_t offset, uint64_t length) {
    RETURN_IF_ERROR(Flush(offset, length));
    return Drain();
  }
  // Copies [from, +length) to [to, +length) (device offsets; the ranges must not overlap) and
  // starts making the copy durable as Flush(to, length) would: durable at the next Drain(). For
  // copies that are not read back soon (second copies): non-temporal stores, which do not pull
  // the destination into the cache (libpmem2's non-temporal memcpy on real pmem). EINVAL for a
  // range outside the device or overlapping ranges.
  virtual Status CopyAndFlush(uint64_t to, uint64_t from, uint64_t length);

  // ---- Poison (bad device bytes; docs/failure.md "Sources"). Real pmem reports its bad blocks
  // through libpmem2's bad-block API; an emulated device keeps a list beside its file
  // ("<path>.badblocks", one "offset length" line per range, bytes); memory devices keep it in
  // memory. The engine never loads from a bad range: node reads and file reads check IsBad.
  // Every bad range known, sorted and merged.
  std::vector<BadRange> BadRanges() const;
  // Whether any byte of [offset, +length) is bad. One relaxed atomic load when none is.
  bool IsBad(uint64_t offset, uint64_t length) const;
  // Marks [offset, +length) bad, like `ndctl inject-error`: emulated and memory devices add it
  // to their list (a file device persistently, in "<path>.badblocks"); real pmem: EOPNOTSUPP
  // (use ndctl inject-error). EINVAL for an empty range or one past the device end.
  virtual Status InjectPoison(uint64_t offset, uint64_t length);

  // Bytes of the device as a pointer, with bounds checked by the caller.
  uint8_t* At(uint64_t offset) const { return base_ + offset; }
  bool Contains(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }

 protected:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;

  // The bad ranges (sorted, merged), for BadRanges/IsBad; subclasses fill it at open.
  void AddBadRange(uint64_t offset, uint64_t length);
  // InjectPoison's argument check: EINVAL for an empty range or one past the device end.
  Status CheckPoisonRange(uint64_t offset, uint64_t length) const;
  mutable std::mutex bad_mu_;
  std::vector<BadRange> bad_;
  std::atomic<size_t> bad_count_{0};
};

struct OpenOptions {
  // Refuse to open unless the file is real persistent memory.
  bool require_pmem = false;
  // Map read-only (PROT_READ); Flush/Drain then fail with EROFS.
  bool read_only = false;
};

// Opens a device from a path: a file on a DAX filesystem, /dev/daxX.Y or /dev/pmemN is mapped
// through libpmem2 and made durable with its persist function; anything else (a regular file, a
// /dev/shm file) is mapped with mmap(MAP_SHARED) and made durable with msync, one per Drain. The
// file is locked exclusively (flock); a second opener gets EBUSY "device is in use". Errors name
// the path.
Result<std::unique_ptr<Device>> OpenDevice(const std::string& path, const OpenOptions& options = {});

// Creates (or truncates) a regular file of `size` bytes for use as an emulated device. Fails with
// EEXIST if the file exists and `overwrite` is false. Size must be a positive multiple of 4096.
Status CreateDeviceFile(const std::string& path, uint64_t size, bool overwrite = false);

// A device in anonymous memory (for tests and fuzzing): starts zeroed, or with a copy of `image`.
// Flush/Drain do nothing (memory is its own durability domain).
std::unique_ptr<Device> NewMemoryDevice(uint64_t size);
std::unique_ptr<Device> NewMemoryDevice(const std::string& image);

}  // namespace daxfs::device
