// Read operations run in parallel with each other (a shared filesystem lock) and every write
// operation excludes them: readers on several threads, racing a writer, see each write whole or
// not at all, in order, in both durability modes. Built into the TSan preset like every test.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "fs_fixture.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr int kFiles = 8;
constexpr int kBlocksPerFile = 4;

class ParallelReadTest : public testing::FsFixture,
                         public ::testing::WithParamInterface<Durability> {
 protected:
  void SetUp() override { StartOnMemory(64 << 20, {}, {.durability = GetParam()}); }
};

// Version v of a file: each 4-byte word of its kBlocksPerFile blocks holds v.
std::vector<uint8_t> Version(uint32_t v) {
  std::vector<uint8_t> out(kBlocksPerFile * kB);
  for (size_t i = 0; i < out.size(); i += 4) std::memcpy(out.data() + i, &v, 4);
  return out;
}

uint32_t WordAt(const std::vector<uint8_t>& buf, size_t i) {
  uint32_t v;
  std::memcpy(&v, buf.data() + i, 4);
  return v;
}

TEST_P(ParallelReadTest, ReadersSeeEachWriteWholeAndInOrder) {
  std::vector<Ino> files;
  for (int i = 0; i < kFiles; ++i) {
    Ino f = NewFile("f" + std::to_string(i));
    ASSERT_TRUE(fs_->Write(f, 0, Version(0)).ok());
    files.push_back(f);
  }
  ASSERT_TRUE(fs_->Sync().ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::atomic<int> failures{0};
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) < 5) ADD_FAILURE() << what;
  };
  auto reader = [&](uint64_t seed) {
    base::Random rng(seed);
    std::vector<uint32_t> last(kFiles, 0);  // the newest version this reader saw, per file
    std::vector<uint8_t> buf(kBlocksPerFile * kB);
    while (!stop.load(std::memory_order_relaxed)) {
      int i = static_cast<int>(rng.Uniform(kFiles));
      Result<size_t> n = fs_->Read(files[i], 0, buf);
      if (!n.ok()) return fail("read: " + n.status().ToString());
      if (*n != buf.size()) return fail("short read " + std::to_string(*n));
      uint32_t v = WordAt(buf, 0);
      for (size_t b = 0; b < buf.size(); b += 4) {
        if (WordAt(buf, b) != v) {
          return fail("a torn read of file " + std::to_string(i) + " at byte " + std::to_string(b));
        }
      }
      if (v < last[i]) return fail("version " + std::to_string(v) + " after " + std::to_string(last[i]));
      last[i] = v;
      Result<Attr> a = fs_->Lookup(kRootIno, "f" + std::to_string(i));
      if (!a.ok() || a->ino != files[i] || a->size != buf.size()) {
        return fail("lookup while writing: " + (a.ok() ? std::to_string(a->size) : a.status().ToString()));
      }
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread r1(reader, 1), r2(reader, 2);
  base::Random rng(3);
  std::vector<uint32_t> version(kFiles, 0);
  for (int w = 0; w < 2000 && failures.load() == 0; ++w) {
    int i = static_cast<int>(rng.Uniform(kFiles));
    ++version[i];
    Result<size_t> n = fs_->Write(files[i], 0, Version(version[i]));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (w % 100 == 99) {
      ASSERT_TRUE(fs_->Sync().ok());
    }
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  for (int i = 0; i < kFiles; ++i) {
    std::vector<uint8_t> buf(kBlocksPerFile * kB);
    Result<size_t> n = fs_->Read(files[i], 0, buf);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(WordAt(buf, 0), version[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Durability, ParallelReadTest,
                         ::testing::Values(Durability::kGroupCommit, Durability::kOnReturn),
                         [](const auto& info) {
                           return info.param == Durability::kGroupCommit ? "GroupCommit"
                                                                         : "OnReturn";
                         });

}  // namespace
}  // namespace daxfs
