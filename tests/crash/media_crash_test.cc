// Crash loop over media-failure operations: a power cut at every persist point of
// RecordMediaFailure (a block shared by three files goes bad) and of a write that restores one
// owner. Every image (several eviction seeds) must mount and pass the checker, with the failure
// recorded for every owner or for none, and the restoring write done whole or not at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "daxfs/filesystem.h"
#include "device/crash_device.h"
#include "device/device.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr uint64_t kDeviceSize = 4 << 20;
constexpr uint64_t kImageSeeds[] = {0, 1, 2, 3};

std::string Joined(const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += "\n  " + l;
  return s;
}

struct Image {
  std::string where;
  std::string bytes;
};

class MediaCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Filesystem::Format(&dev_, {.chunk_size = 256 << 10}).ok());
    auto fs = Filesystem::Open(&dev_, {});
    ASSERT_TRUE(fs.ok());
    fs_ = std::move(*fs);
    std::vector<uint8_t> data(4 * kB, 0x11);
    for (const char* name : {"a", "b", "c"}) {
      auto f = fs_->Create(kRootIno, name, 0644);
      ASSERT_TRUE(f.ok());
      files_.push_back(f->ino);
    }
    ASSERT_TRUE(fs_->Write(files_[0], 0, data).ok());
    ASSERT_TRUE(fs_->CloneRange(files_[0], 0, files_[1], 0, 4 * kB).ok());
    ASSERT_TRUE(fs_->CloneRange(files_[0], kB, files_[2], 2 * kB, kB).ok());
    auto map = fs_->Bmap(files_[0]);
    ASSERT_TRUE(map.ok() && !map->empty());
    bad_ = (*map)[0].device_offset + kB;
    ASSERT_TRUE(dev_.InjectPoison(bad_, kB).ok());
  }

  void TearDown() override {
    if (fs_ == nullptr) return;
    auto check = fs_->Check();
    ASSERT_TRUE(check.ok()) << check.status().ToString();
    EXPECT_TRUE(check->ok()) << Joined(check->problems);
  }

  // Runs `op` with a capture before every persist point.
  void CaptureDuring(const std::function<void()>& op) {
    images_.clear();
    dev_.SetPersistHook([&](uint64_t point) {
      for (uint64_t seed : kImageSeeds) {
        images_.push_back(
            {"persist point " + std::to_string(point) + " seed " + std::to_string(seed),
             dev_.CrashImage(seed)});
      }
    });
    op();
    dev_.SetPersistHook(nullptr);
    images_.push_back({"after the operation", dev_.DurableImage()});
  }

  // Mounts an image (its device knows the bad block, as after a reboot) and returns the lost
  // (ino, file offset) pairs, after checking it.
  std::vector<std::pair<Ino, uint64_t>> Recover(const Image& image) {
    std::vector<std::pair<Ino, uint64_t>> lost;
    auto mem = device::NewMemoryDevice(image.bytes);
    EXPECT_TRUE(mem->InjectPoison(bad_, kB).ok());
    auto fs = Filesystem::Open(mem.get(), {});
    EXPECT_TRUE(fs.ok()) << image.where << ": " << fs.status().ToString();
    if (!fs.ok()) return lost;
    auto check = (*fs)->Check();
    EXPECT_TRUE(check.ok() && check->ok())
        << image.where << ":" << (check.ok() ? Joined(check->problems) : check.status().ToString());
    auto errors = (*fs)->MediaErrors();
    EXPECT_TRUE(errors.ok()) << image.where;
    if (errors.ok()) {
      for (const FileRangeLoss& l : errors->lost) lost.push_back({l.ino, l.file_offset});
    }
    std::sort(lost.begin(), lost.end());
    return lost;
  }

  device::CrashDevice dev_{kDeviceSize};
  std::unique_ptr<Filesystem> fs_;
  std::vector<Ino> files_;
  uint64_t bad_ = 0;
  std::vector<Image> images_;
};

TEST_F(MediaCrashTest, RecordingIsAllOrNothingAtEveryPersistPoint) {
  const std::vector<std::pair<Ino, uint64_t>> all = {
      {files_[0], kB}, {files_[1], kB}, {files_[2], 2 * kB}};
  CaptureDuring([&] {
    auto rec = fs_->RecordMediaFailure(bad_, kB, kFailureSimulated);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    ASSERT_EQ(rec->owners.size(), 3u);
  });
  ASSERT_GT(images_.size(), 1u);
  for (const Image& image : images_) {
    auto lost = Recover(image);
    EXPECT_TRUE(lost.empty() || lost == all)
        << image.where << ": " << lost.size() << " owners lost";
  }
  EXPECT_EQ(Recover(images_.back()), all);
}

TEST_F(MediaCrashTest, RestoringWriteIsAllOrNothingAtEveryPersistPoint) {
  ASSERT_TRUE(fs_->RecordMediaFailure(bad_, kB, kFailureSimulated).ok());
  const std::vector<std::pair<Ino, uint64_t>> before = {
      {files_[0], kB}, {files_[1], kB}, {files_[2], 2 * kB}};
  const std::vector<std::pair<Ino, uint64_t>> after = {{files_[0], kB}, {files_[2], 2 * kB}};
  std::vector<uint8_t> block(kB, 0x77);
  CaptureDuring([&] { ASSERT_TRUE(fs_->Write(files_[1], kB, block).ok()); });
  for (const Image& image : images_) {
    auto lost = Recover(image);
    EXPECT_TRUE(lost == before || lost == after) << image.where << ": " << lost.size() << " lost";
  }
  EXPECT_EQ(Recover(images_.back()), after);
}

}  // namespace
}  // namespace daxfs
