// A test device that records every store and every persist, and produces the images a power cut
// could leave at any persist point. Built only on the Device interface; knows nothing of formats.
//
// Model: the device keeps a shadow copy of what is durable. Stores go to the working memory
// (base()). Flush(range) marks its 64-byte lines "flushed"; Drain() copies every flushed line to
// the durable shadow and counts one persist point. A line that differs between working memory and
// the shadow is "unpersisted"; a power cut keeps or loses each unpersisted line independently,
// because the CPU may have evicted it (or not) on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "device/device.h"

namespace daxfs::device {

class CrashDevice : public Device {
 public:
  // Starts as a zeroed device of `size` bytes (multiple of 4096), or as a copy of `image` which
  // counts as entirely durable.
  explicit CrashDevice(uint64_t size);
  explicit CrashDevice(const std::string& image);
  ~CrashDevice() override;

  bool IsPmem() const override { return true; }
  std::string Describe() const override;
  Status Flush(uint64_t offset, uint64_t length) override;
  Status Drain() override;

  // Number of Drain() calls so far (persist points passed).
  uint64_t persist_count() const { return persist_count_; }

  // Called at the start of every Drain(), before it takes effect, with the index of that persist
  // point (0-based). A crash test uses it to capture images "just before persist point k".
  void SetPersistHook(std::function<void(uint64_t point)> hook) { hook_ = std::move(hook); }

  // The image a power cut right now could leave: every durable byte, plus each unpersisted
  // 64-byte line independently kept (its working value) or lost (its durable value), chosen by
  // `seed`. seed 0 means "lose every unpersisted line" (only durable data survives).
  std::string CrashImage(uint64_t seed) const;
  // The durable state only (the same as CrashImage(0)).
  std::string DurableImage() const;
  // The working memory as it is (as if every line had been evicted).
  std::string WorkingImage() const;
  // Offsets of 64-byte lines that differ between working memory and the durable shadow.
  std::vector<uint64_t> UnpersistedLines() const;

  // After Fail(), every Flush/Drain returns EIO: simulates a device that died mid-operation.
  void Fail() { failed_ = true; }

 private:
  std::unique_ptr<uint8_t[]> working_;
  std::unique_ptr<uint8_t[]> durable_;
  std::vector<uint64_t> flushed_lines_;  // line indices flushed since the last Drain
  uint64_t persist_count_ = 0;
  bool failed_ = false;
  std::function<void(uint64_t)> hook_;
};

}  // namespace daxfs::device
