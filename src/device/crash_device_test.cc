// Tests for CrashDevice: which stores survive a simulated power cut, persist hooks, failure.
// Uses only the crash device's public interface.
#include "device/crash_device.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace daxfs::device {
namespace {

constexpr uint64_t kSize = 1 << 20;
constexpr int kSeeds = 64;

void Store(Device& device, uint64_t offset, const std::string& bytes) {
  std::memcpy(device.At(offset), bytes.data(), bytes.size());
}

std::string Bytes(const std::string& image, uint64_t offset, size_t length) {
  return image.substr(offset, length);
}

TEST(CrashDeviceTest, StartsZeroedAndDurable) {
  CrashDevice device(kSize);
  EXPECT_EQ(device.size(), kSize);
  EXPECT_TRUE(device.IsPmem());
  EXPECT_EQ(device.DurableImage(), std::string(kSize, '\0'));
  EXPECT_TRUE(device.UnpersistedLines().empty());
  EXPECT_EQ(device.persist_count(), 0u);
  EXPECT_EQ(device.Describe(), "crash device (1048576 bytes, 0 persist points)");
}

TEST(CrashDeviceTest, CopyAndFlushIsDurableAtTheNextDrain) {
  CrashDevice device(kSize);
  std::string block(8192, '\0');
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 7 + 1);
  Store(device, 0, block);
  ASSERT_TRUE(device.Persist(0, block.size()).ok());
  ASSERT_TRUE(device.CopyAndFlush(65536, 0, block.size()).ok());
  EXPECT_EQ(Bytes(device.WorkingImage(), 65536, block.size()), block);
  EXPECT_EQ(Bytes(device.CrashImage(0), 65536, block.size()), std::string(block.size(), '\0'));
  ASSERT_TRUE(device.Drain().ok());
  EXPECT_EQ(Bytes(device.CrashImage(0), 65536, block.size()), block);
  // An odd length or place takes the plain path, same result.
  ASSERT_TRUE(device.CopyAndFlush(100003, 1, 1000).ok());
  ASSERT_TRUE(device.Drain().ok());
  EXPECT_EQ(Bytes(device.DurableImage(), 100003, 1000), block.substr(1, 1000));
  EXPECT_EQ(device.CopyAndFlush(10, 0, 100).code(), EINVAL);          // overlapping
  EXPECT_EQ(device.CopyAndFlush(kSize - 10, 0, 100).code(), EINVAL);  // past the end
}

TEST(CrashDeviceTest, UnpersistedStoreIsLostWithSeedZero) {
  CrashDevice device(kSize);
  Store(device, 100, "data");
  EXPECT_EQ(Bytes(device.CrashImage(0), 100, 4), std::string(4, '\0'));
  EXPECT_EQ(device.CrashImage(0), device.DurableImage());
  EXPECT_EQ(Bytes(device.WorkingImage(), 100, 4), "data");
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{64});
}

TEST(CrashDeviceTest, PersistedStoreIsKeptWithEverySeed) {
  CrashDevice device(kSize);
  Store(device, 100, "data");
  ASSERT_TRUE(device.Persist(100, 4).ok());
  EXPECT_EQ(device.persist_count(), 1u);
  EXPECT_TRUE(device.UnpersistedLines().empty());
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    EXPECT_EQ(Bytes(device.CrashImage(seed), 100, 4), "data") << seed;
  }
}

TEST(CrashDeviceTest, FlushedButNotDrainedIsUnpersisted) {
  CrashDevice device(kSize);
  Store(device, 4096, "data");
  ASSERT_TRUE(device.Flush(4096, 4).ok());
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{4096});
  EXPECT_EQ(Bytes(device.CrashImage(0), 4096, 4), std::string(4, '\0'));
  ASSERT_TRUE(device.Drain().ok());
  EXPECT_TRUE(device.UnpersistedLines().empty());
  EXPECT_EQ(Bytes(device.CrashImage(0), 4096, 4), "data");
}

TEST(CrashDeviceTest, DrainPersistsOnlyFlushedLines) {
  CrashDevice device(kSize);
  Store(device, 0, "a");
  Store(device, 640, "b");
  ASSERT_TRUE(device.Flush(0, 1).ok());
  ASSERT_TRUE(device.Drain().ok());
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{640});
  // A drain with nothing flushed is still a persist point and makes nothing durable.
  ASSERT_TRUE(device.Drain().ok());
  EXPECT_EQ(device.persist_count(), 2u);
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{640});
}

TEST(CrashDeviceTest, FlushCoversEveryLineItTouches) {
  CrashDevice device(kSize);
  Store(device, 60, std::string(10, 'x'));  // bytes 60..69: lines 0 and 1
  Store(device, 200, "y");                  // line 3, not flushed
  ASSERT_TRUE(device.Persist(60, 10).ok());
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{192});
  EXPECT_EQ(Bytes(device.DurableImage(), 60, 10), std::string(10, 'x'));
}

TEST(CrashDeviceTest, FlushChecksBounds) {
  CrashDevice device(kSize);
  EXPECT_TRUE(device.Flush(kSize - 1, 1).ok());
  EXPECT_TRUE(device.Flush(kSize, 0).ok());
  EXPECT_EQ(device.Flush(kSize - 1, 2).code(), EINVAL);
  EXPECT_EQ(device.Flush(1, UINT64_MAX).code(), EINVAL);
}

TEST(CrashDeviceTest, HookRunsBeforeEachDrainWithItsIndex) {
  CrashDevice device(kSize);
  std::vector<std::pair<uint64_t, std::string>> seen;  // (point, durable bytes 0..1 at the time)
  device.SetPersistHook(
      [&](uint64_t point) { seen.emplace_back(point, Bytes(device.DurableImage(), 0, 2)); });
  Store(device, 0, "A");
  ASSERT_TRUE(device.Persist(0, 1).ok());
  Store(device, 1, "B");
  ASSERT_TRUE(device.Persist(1, 1).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(uint64_t{0}, std::string("\0\0", 2)));
  EXPECT_EQ(seen[1], std::make_pair(uint64_t{1}, std::string("A\0", 2)));
  EXPECT_EQ(device.persist_count(), 2u);
  EXPECT_EQ(Bytes(device.DurableImage(), 0, 2), "AB");
}

TEST(CrashDeviceTest, CrashImageKeepsOrLosesALineAcrossSeeds) {
  CrashDevice device(kSize);
  Store(device, 128, "old");
  ASSERT_TRUE(device.Persist(128, 3).ok());
  Store(device, 4096 * 3, "persisted");
  ASSERT_TRUE(device.Persist(4096 * 3, 9).ok());
  Store(device, 132, "new");  // same line as "old": the line is unpersisted as a whole
  int kept = 0, lost = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    std::string image = device.CrashImage(seed);
    EXPECT_EQ(Bytes(image, 128, 3), "old") << seed;
    EXPECT_EQ(Bytes(image, 4096 * 3, 9), "persisted") << seed;
    std::string line = Bytes(image, 128, 64);
    if (line == Bytes(device.WorkingImage(), 128, 64)) {
      ++kept;
    } else {
      EXPECT_EQ(line, Bytes(device.DurableImage(), 128, 64)) << seed;
      ++lost;
    }
    // Every other byte is the durable one.
    image.replace(128, 64, Bytes(device.DurableImage(), 128, 64));
    EXPECT_EQ(image, device.DurableImage()) << seed;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(lost, 0);
}

TEST(CrashDeviceTest, CrashImageIsReproducibleFromItsSeed) {
  CrashDevice device(kSize);
  for (uint64_t line = 0; line < 100; ++line) Store(device, line * 640, "z");
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    EXPECT_EQ(device.CrashImage(seed), device.CrashImage(seed));
  }
  EXPECT_NE(device.CrashImage(1), device.CrashImage(2));
}

TEST(CrashDeviceTest, LinesAreKeptOrLostIndependently) {
  CrashDevice device(kSize);
  Store(device, 0, "first");
  Store(device, 4096 * 7 + 64, "second");
  std::set<std::pair<bool, bool>> outcomes;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    std::string image = device.CrashImage(seed);
    outcomes.emplace(Bytes(image, 0, 5) == "first", Bytes(image, 4096 * 7 + 64, 6) == "second");
  }
  EXPECT_EQ(outcomes.size(), 4u);
}

TEST(CrashDeviceTest, StartsFromAnImageThatIsDurable) {
  std::string image(5000, 'q');
  CrashDevice device(image);
  ASSERT_EQ(device.size(), 8192u);
  EXPECT_TRUE(device.UnpersistedLines().empty());
  std::string durable = device.DurableImage();
  EXPECT_EQ(durable.substr(0, 5000), image);
  EXPECT_EQ(durable.substr(5000), std::string(8192 - 5000, '\0'));
  EXPECT_EQ(device.WorkingImage(), durable);
}

TEST(CrashDeviceTest, FailMakesFlushAndDrainReturnEio) {
  CrashDevice device(kSize);
  int hook_calls = 0;
  device.SetPersistHook([&](uint64_t) { ++hook_calls; });
  Store(device, 0, "x");
  device.Fail();
  EXPECT_EQ(device.Flush(0, 1).code(), EIO);
  EXPECT_EQ(device.Drain().code(), EIO);
  EXPECT_EQ(hook_calls, 0);
  EXPECT_EQ(device.persist_count(), 0u);
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{0});
}

TEST(CrashDeviceTest, FailInsideTheHookCancelsThatDrain) {
  CrashDevice device(kSize);
  device.SetPersistHook([&](uint64_t point) {
    if (point == 1) device.Fail();
  });
  Store(device, 0, "a");
  ASSERT_TRUE(device.Persist(0, 1).ok());
  Store(device, 64, "b");
  EXPECT_EQ(device.Persist(64, 1).code(), EIO);
  EXPECT_EQ(device.persist_count(), 1u);
  EXPECT_EQ(device.UnpersistedLines(), std::vector<uint64_t>{64});
}

}  // namespace
}  // namespace daxfs::device
