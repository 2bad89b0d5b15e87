// A device in anonymous memory for tests and fuzzing: memory is its own durability domain, so
// Flush and Drain only check their arguments. The memory is a memfd, so that Fd() can map device
// ranges again (the DAX layer does, with MAP_FIXED). Knows nothing of files, pmem or formats.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/log.h"
#include "device/device.h"

namespace daxfs::device {
namespace {

constexpr uint64_t kSizeUnit = 4096;

uint64_t RoundUpToUnit(uint64_t size) { return (size + kSizeUnit - 1) / kSizeUnit * kSizeUnit; }

class MemoryDevice final : public Device {
 public:
  // `size` is rounded up to a multiple of 4096; the memory starts zeroed.
  explicit MemoryDevice(uint64_t size);
  ~MemoryDevice() override {
    munmap(base_, mapped_size_);
    close(fd_);
  }
  int Fd() const override { return fd_; }

  bool IsPmem() const override { return false; }
  std::string Describe() const override {
    return "memory device (" + std::to_string(size_) + " bytes)";
  }
  Status Flush(uint64_t offset, uint64_t length) override {
    if (Contains(offset, length)) return Status::Ok();
    return Status::Invalid("memory device: flush of [" + std::to_string(offset) + ", +" +
                           std::to_string(length) + ") is outside the device");
  }
  Status Drain() override { return Status::Ok(); }

 private:
  uint64_t mapped_size_;  // size_, but at least one page so that base() is never null
  int fd_ = -1;
};

// The factory cannot report errors: running out of memory or address space here is fatal, like new.
[[noreturn]] void Fatal(const char* what, uint64_t size) {
  base::Log(base::LogLevel::kError, "memory device of {} bytes: {}: {}", size, what,
            std::strerror(errno));
  std::abort();
}

MemoryDevice::MemoryDevice(uint64_t size) {
  size_ = RoundUpToUnit(size);
  mapped_size_ = size_ == 0 ? kSizeUnit : size_;
  fd_ = memfd_create("daxfs-memory-device", MFD_CLOEXEC);
  if (fd_ < 0) Fatal("memfd_create", size_);
  if (ftruncate(fd_, static_cast<off_t>(mapped_size_)) != 0) Fatal("ftruncate", size_);
  void* address = mmap(nullptr, mapped_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (address == MAP_FAILED) Fatal("mmap", size_);
  base_ = static_cast<uint8_t*>(address);
}

}  // namespace

std::unique_ptr<Device> NewMemoryDevice(uint64_t size) {
  return std::make_unique<MemoryDevice>(size);
}

std::unique_ptr<Device> NewMemoryDevice(const std::string& image) {
  auto device = std::make_unique<MemoryDevice>(image.size());
  std::memcpy(device->base(), image.data(), image.size());
  return device;
}

}  // namespace daxfs::device
