// The crash-simulating test device: working memory plus a durable shadow updated only by
// Flush + Drain, and the power-cut images between them. Knows nothing of formats or the engine.
#include "device/crash_device.h"

#include <cstring>
#include <string>
#include <utility>

#include "base/random.h"

namespace daxfs::device {
namespace {

constexpr uint64_t kPage = 4096;

uint64_t RoundUpToPage(uint64_t size) { return (size + kPage - 1) / kPage * kPage; }

// Calls fn(offset) for each 64-byte line that differs between `a` and `b` (`size` is a multiple
// of 4096). Whole pages are compared first: most of a device is usually identical.
template <typename Fn>
void ForEachDifferingLine(const uint8_t* a, const uint8_t* b, uint64_t size, Fn&& fn) {
  for (uint64_t page = 0; page < size; page += kPage) {
    if (std::memcmp(a + page, b + page, kPage) == 0) continue;
    for (uint64_t line = page; line < page + kPage; line += kCacheLine) {
      if (std::memcmp(a + line, b + line, kCacheLine) != 0) fn(line);
    }
  }
}

std::string Failed() { return "crash device: the device has failed"; }

}  // namespace

CrashDevice::CrashDevice(uint64_t size) {
  size_ = RoundUpToPage(size);
  working_ = std::make_unique<uint8_t[]>(size_);  // value-initialised: zeroed
  durable_ = std::make_unique<uint8_t[]>(size_);
  base_ = working_.get();
}

CrashDevice::CrashDevice(const std::string& image) : CrashDevice(image.size()) {
  std::memcpy(working_.get(), image.data(), image.size());
  std::memcpy(durable_.get(), image.data(), image.size());
}

CrashDevice::~CrashDevice() = default;

std::string CrashDevice::Describe() const {
  return "crash device (" + std::to_string(size_) + " bytes, " + std::to_string(persist_count_) +
         " persist points)";
}

Status CrashDevice::Flush(uint64_t offset, uint64_t length) {
  if (failed_) return Status::IoError(Failed());
  if (!Contains(offset, length)) {
    return Status::Invalid("crash device: flush of [" + std::to_string(offset) + ", +" +
                           std::to_string(length) + ") is outside the device");
  }
  if (length == 0) return Status::Ok();
  for (uint64_t line = offset / kCacheLine; line <= (offset + length - 1) / kCacheLine; ++line) {
    flushed_lines_.push_back(line);
  }
  return Status::Ok();
}

// The hook runs first, with nothing changed yet. If it calls Fail() (a test cutting power at this
// point), the drain does not happen: no line becomes durable and the point is not counted.
Status CrashDevice::Drain() {
  if (failed_) return Status::IoError(Failed());
  if (hook_) hook_(persist_count_);
  if (failed_) return Status::IoError(Failed());
  for (uint64_t line : flushed_lines_) {
    uint64_t offset = line * kCacheLine;
    std::memcpy(durable_.get() + offset, working_.get() + offset, kCacheLine);
  }
  flushed_lines_.clear();
  ++persist_count_;
  return Status::Ok();
}

std::string CrashDevice::CrashImage(uint64_t seed) const {
  std::string image = DurableImage();
  if (seed == 0) return image;
  base::Random random(seed);
  ForEachDifferingLine(working_.get(), durable_.get(), size_, [&](uint64_t offset) {
    bool kept = random.Next() >> 63;
    if (kept) std::memcpy(image.data() + offset, working_.get() + offset, kCacheLine);
  });
  return image;
}

std::string CrashDevice::DurableImage() const {
  return std::string(reinterpret_cast<const char*>(durable_.get()), size_);
}

std::string CrashDevice::WorkingImage() const {
  return std::string(reinterpret_cast<const char*>(working_.get()), size_);
}

std::vector<uint64_t> CrashDevice::UnpersistedLines() const {
  std::vector<uint64_t> offsets;
  ForEachDifferingLine(working_.get(), durable_.get(), size_,
                       [&](uint64_t offset) { offsets.push_back(offset); });
  return offsets;
}

}  // namespace daxfs::device
