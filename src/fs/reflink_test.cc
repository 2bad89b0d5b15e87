// Tests of reflink: clone, clone range, dedupe, unshare and copy_file_range, with every error
// case; sharing seen through Bmap (same device offsets, the shared flag); copy-on-write of shared
// blocks by writes, truncate, punch and zero range; freeing only at the last owner; group commit;
// remounts; filesystems made without reflink. Every test ends with the consistency checker, which
// cross-checks the rmap and refcount trees against the extent maps.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "fs_fixture.h"
#include "status_assert.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr uint64_t kMaxSize = (1ULL << 63) - 1;

using testing::Bytes;
using testing::Pattern;

class ReflinkTest : public testing::FsFixture {
 protected:
  void SetUp() override { Start({}); }

  void Start(const FormatOptions& format, const MountOptions& mount = {},
             uint64_t device_size = 64 << 20) {
    StartOnMemory(device_size, format, mount);
  }
  uint64_t BlocksOf(Ino ino) { return Blocks(ino); }
  // Device offset behind file offset `offset` (0 for a hole) and whether it is shared.
  std::pair<uint64_t, bool> Where(Ino ino, uint64_t offset) {
    for (const FileExtent& e : Map(ino)) {
      if (offset >= e.file_offset && offset < e.file_offset + e.length) {
        return {e.device_offset + (offset - e.file_offset), e.shared};
      }
    }
    return {0, false};
  }
  uint64_t DeviceOf(Ino ino, uint64_t offset) { return Where(ino, offset).first; }
  bool SharedAt(Ino ino, uint64_t offset) { return Where(ino, offset).second; }
  bool AnyShared(Ino ino) {
    for (const FileExtent& e : Map(ino)) {
      if (e.shared) return true;
    }
    return false;
  }
  uint64_t DataUsed() { return fs_->StatFs()->data_blocks_used; }

  // A file of `blocks` blocks written one block at a time with a gap between writes, so that
  // it has several extents.
  Ino Fragmented(const std::string& name, uint64_t blocks, uint64_t seed) {
    Ino f = NewFile(name);
    Ino spacer = NewFile(name + ".spacer");
    for (uint64_t b = 0; b < blocks; ++b) {
      Put(f, b * kB, Pattern(kB, seed + b));
      Put(spacer, b * kB, "x");  // takes the next device block
    }
    Status s = fs_->Unlink(kRootIno, name + ".spacer");
    EXPECT_TRUE(s.ok()) << s.ToString();
    return f;
  }
};

// ---- Clone.

TEST_F(ReflinkTest, CloneSharesEveryBlock) {
  Ino a = Fragmented("a", 8, 1);
  Put(a, 8 * kB, "tail of a");  // a partial last block
  std::string content = GetAll(a);
  Ino b = NewFile("b");
  uint64_t used = DataUsed();
  ASSERT_OK(fs_->Clone(a, b));
  EXPECT_EQ(GetAll(b), content);
  EXPECT_EQ(Size(b), Size(a));
  EXPECT_EQ(BlocksOf(b), BlocksOf(a));
  EXPECT_EQ(DataUsed(), used) << "a clone takes no data blocks";
  std::vector<FileExtent> ma = Map(a), mb = Map(b);
  ASSERT_EQ(ma.size(), mb.size());
  ASSERT_GT(ma.size(), 1u);
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i].file_offset, mb[i].file_offset);
    EXPECT_EQ(ma[i].device_offset, mb[i].device_offset);
    EXPECT_EQ(ma[i].length, mb[i].length);
    EXPECT_TRUE(ma[i].shared);
    EXPECT_TRUE(mb[i].shared);
  }
}

TEST_F(ReflinkTest, CloneReplacesTheDestination) {
  Ino a = NewFile("a");
  Put(a, 0, Pattern(3 * kB, 2));
  Ino b = NewFile("b");
  Put(b, 0, Pattern(10 * kB, 3));
  uint64_t used = DataUsed();
  ASSERT_OK(fs_->Clone(a, b));
  EXPECT_EQ(GetAll(b), GetAll(a));
  EXPECT_EQ(Size(b), 3 * kB) << "dst size = src size";
  EXPECT_EQ(BlocksOf(b), 3u);
  EXPECT_EQ(DataUsed(), used - 10) << "dst's old blocks were freed";
  // Cloning an empty file empties the destination.
  Ino e = NewFile("e");
  ASSERT_OK(fs_->Clone(e, b));
  EXPECT_EQ(Size(b), 0u);
  EXPECT_TRUE(Map(b).empty());
  EXPECT_FALSE(AnyShared(a)) << "a's blocks have one owner again";
}

TEST_F(ReflinkTest, CloneErrors) {
  Ino a = NewFile("a");
  Put(a, 0, "data");
  Ino b = NewFile("b");
  Result<Attr> dir = fs_->Mkdir(kRootIno, "d", 0755);
  ASSERT_OK(dir);
  Result<Attr> link = fs_->Symlink(kRootIno, "s", "a");
  ASSERT_OK(link);
  EXPECT_ERRNO(fs_->Clone(a, dir->ino), EISDIR);
  EXPECT_ERRNO(fs_->Clone(dir->ino, b), EISDIR);
  EXPECT_ERRNO(fs_->Clone(link->ino, b), EINVAL);
  EXPECT_ERRNO(fs_->Clone(a, link->ino), EINVAL);
  EXPECT_ERRNO(fs_->Clone(a, 9999), ENOENT);
  EXPECT_ERRNO(fs_->Clone(9999, b), ENOENT);
  EXPECT_ERRNO(fs_->Clone(a, a), EINVAL) << "a file onto itself overlaps";
  ASSERT_OK(fs_->Clone(b, b)) << "an empty file onto itself has nothing to clone";
  EXPECT_EQ(GetAll(a), "data");
  EXPECT_EQ(Size(b), 0u);
}

TEST_F(ReflinkTest, UnwrittenSourceGivesTheDestinationAHole) {
  Ino a = NewFile("a");
  Put(a, 0, Pattern(kB, 4));
  ASSERT_OK(fs_->Fallocate(a, 0, kB, 4 * kB));  // unwritten blocks 1..4
  Put(a, 5 * kB, Pattern(kB, 5));
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  EXPECT_EQ(GetAll(b), GetAll(a));
  EXPECT_EQ(DeviceOf(b, 2 * kB), 0u) << "unwritten source: a hole";
  EXPECT_EQ(BlocksOf(b), 2u);
  EXPECT_TRUE(SharedAt(b, 0));
  EXPECT_TRUE(SharedAt(b, 5 * kB));
  EXPECT_FALSE(SharedAt(a, 2 * kB));
}

// ---- Copy-on-write of shared blocks.

TEST_F(ReflinkTest, WriteIntoASharedBlockLeavesTheOtherFileUnchanged) {
  std::string content = Pattern(6 * kB, 6);
  Ino a = NewFile("a");
  Put(a, 0, content);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  uint64_t shared_block = DeviceOf(a, 2 * kB);
  uint64_t used = DataUsed();
  Put(a, 2 * kB + 100, "XYZ");  // a partial-block write into a shared block
  EXPECT_EQ(GetAll(b), content) << "the clone must not see the write";
  std::string expect = content;
  expect.replace(2 * kB + 100, 3, "XYZ");
  EXPECT_EQ(GetAll(a), expect) << "the unchanged bytes of the block were copied";
  EXPECT_NE(DeviceOf(a, 2 * kB), shared_block);
  EXPECT_EQ(DeviceOf(b, 2 * kB), shared_block);
  EXPECT_FALSE(SharedAt(a, 2 * kB));
  EXPECT_FALSE(SharedAt(b, 2 * kB)) << "the old block has one owner left";
  EXPECT_TRUE(SharedAt(a, 0));
  EXPECT_TRUE(SharedAt(b, 3 * kB));
  EXPECT_EQ(DataUsed(), used + 1);
  // And the other way round: writing the clone leaves the source alone.
  Put(b, 4 * kB, std::string(2 * kB, 'B'));
  EXPECT_EQ(GetAll(a), expect);
  EXPECT_EQ(Get(b, 4 * kB, 2 * kB), std::string(2 * kB, 'B'));
  EXPECT_FALSE(SharedAt(b, 4 * kB));
  EXPECT_FALSE(SharedAt(a, 5 * kB));
}

TEST_F(ReflinkTest, TruncatePunchAndZeroOfSharedBlocks) {
  std::string content = Pattern(8 * kB, 7);
  Ino a = NewFile("a");
  Put(a, 0, content);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  uint64_t used = DataUsed();
  // Truncating into a shared block zeroes its tail: a copy, not the shared block.
  ASSERT_OK(fs_->Truncate(a, 5 * kB + 10));
  EXPECT_EQ(GetAll(b), content);
  EXPECT_EQ(GetAll(a), content.substr(0, 5 * kB + 10));
  EXPECT_EQ(DataUsed(), used + 1) << "blocks 6, 7 stay for b; block 5 was copied";
  ASSERT_OK(fs_->Truncate(a, 5 * kB + 4000));
  EXPECT_EQ(Get(a, 5 * kB + 10, 3990), std::string(3990, '\0'));
  // Punching a hole in shared blocks of b (partial at both ends).
  ASSERT_OK(fs_->Fallocate(b, kFallocPunchHole | kFallocKeepSize, kB + 7, 2 * kB));
  std::string b_expect = content;
  b_expect.replace(kB + 7, 2 * kB, std::string(2 * kB, '\0'));
  EXPECT_EQ(GetAll(b), b_expect);
  EXPECT_EQ(Get(a, 0, 5 * kB), content.substr(0, 5 * kB));
  // Zero range over shared blocks.
  ASSERT_OK(fs_->Fallocate(a, kFallocZeroRange | kFallocKeepSize, 3 * kB, kB + 1));
  std::string a_expect = content.substr(0, 5 * kB + 4000);
  std::memset(a_expect.data() + 5 * kB + 10, 0, 3990);
  a_expect.replace(3 * kB, kB + 1, std::string(kB + 1, '\0'));
  EXPECT_EQ(GetAll(a), a_expect);
  EXPECT_EQ(GetAll(b), b_expect);
}

TEST_F(ReflinkTest, BlocksAreFreedOnlyAtTheLastOwner) {
  uint64_t base = DataUsed();
  Ino a = NewFile("a");
  Put(a, 0, Pattern(16 * kB, 8));
  EXPECT_EQ(DataUsed(), base + 16);
  Ino b = NewFile("b");
  Ino c = NewFile("c");
  ASSERT_OK(fs_->Clone(a, b));
  ASSERT_OK(fs_->CloneRange(a, 4 * kB, c, 0, 8 * kB));  // blocks 4..11 have three owners
  EXPECT_EQ(DataUsed(), base + 16);
  std::string content = GetAll(a);
  ASSERT_OK(fs_->Unlink(kRootIno, "a"));
  EXPECT_EQ(DataUsed(), base + 16) << "b still owns every block";
  EXPECT_EQ(GetAll(b), content);
  EXPECT_EQ(GetAll(c), content.substr(4 * kB, 8 * kB));
  ExpectConsistent();
  ASSERT_OK(fs_->Unlink(kRootIno, "b"));
  EXPECT_EQ(DataUsed(), base + 8) << "only c's blocks are left";
  EXPECT_EQ(GetAll(c), content.substr(4 * kB, 8 * kB));
  EXPECT_FALSE(AnyShared(c));
  ASSERT_OK(fs_->Truncate(c, 0));
  EXPECT_EQ(DataUsed(), base);
}

// ---- Clone range.

TEST_F(ReflinkTest, CloneRangeBetweenFiles) {
  std::string src = Pattern(10 * kB, 9);
  Ino a = NewFile("a");
  Put(a, 0, src);
  Ino b = NewFile("b");
  std::string dst = Pattern(6 * kB, 10);
  Put(b, 0, dst);
  ASSERT_OK(fs_->CloneRange(a, 2 * kB, b, 4 * kB, 3 * kB));
  dst.resize(7 * kB);
  dst.replace(4 * kB, 3 * kB, src.substr(2 * kB, 3 * kB));
  EXPECT_EQ(GetAll(b), dst) << "dst grows to cover the range";
  EXPECT_EQ(Size(b), 7 * kB);
  EXPECT_EQ(BlocksOf(b), 7u);
  EXPECT_EQ(DeviceOf(b, 5 * kB), DeviceOf(a, 3 * kB));
  EXPECT_TRUE(SharedAt(b, 4 * kB));
  EXPECT_FALSE(SharedAt(b, 3 * kB));
  EXPECT_FALSE(SharedAt(a, 5 * kB));
  // Into a hole far past the end.
  ASSERT_OK(fs_->CloneRange(a, 0, b, 100 * kB, kB));
  EXPECT_EQ(Size(b), 101 * kB);
  EXPECT_EQ(Get(b, 100 * kB, kB), src.substr(0, kB));
  EXPECT_EQ(Get(b, 50 * kB, 10), std::string(10, '\0'));
  // Length 0: to the source's EOF.
  ASSERT_OK(fs_->CloneRange(a, 8 * kB, b, 0, 0));
  EXPECT_EQ(Get(b, 0, 2 * kB), src.substr(8 * kB));
  ASSERT_OK(fs_->CloneRange(a, 10 * kB, b, 0, 0)) << "length 0 at EOF: nothing to do";
}

TEST_F(ReflinkTest, CloneRangeOfAPartialLastBlock) {
  Ino a = NewFile("a");
  std::string src = Pattern(3 * kB + 123, 11);
  Put(a, 0, src);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->CloneRange(a, kB, b, 0, 2 * kB + 123)) << "an unaligned length reaching EOF";
  EXPECT_EQ(Size(b), 2 * kB + 123);
  EXPECT_EQ(GetAll(b), src.substr(kB));
  Put(b, 2 * kB + 123, "x");  // growing b must not show bytes past the old EOF
  EXPECT_EQ(Get(b, 2 * kB + 123, 1), "x");
  EXPECT_EQ(GetAll(a), src);
  // The partial block may not land inside the destination, before its end.
  Ino c = NewFile("c");
  Put(c, 0, Pattern(8 * kB, 12));
  EXPECT_ERRNO(fs_->CloneRange(a, 0, c, 0, 3 * kB + 123), EINVAL);
  ASSERT_OK(fs_->CloneRange(a, 0, c, 5 * kB, 3 * kB + 123)) << "it may end the destination";
  EXPECT_EQ(Size(c), 8 * kB + 123);
  EXPECT_EQ(Get(c, 5 * kB, 3 * kB + 123), src);
}

TEST_F(ReflinkTest, CloneRangeWithinOneFile) {
  std::string content = Pattern(8 * kB, 13);
  Ino f = NewFile("f");
  Put(f, 0, content);
  ASSERT_OK(fs_->CloneRange(f, 0, f, 4 * kB, 4 * kB));
  std::string expect = content.substr(0, 4 * kB) + content.substr(0, 4 * kB);
  EXPECT_EQ(GetAll(f), expect);
  for (uint64_t b = 0; b < 4; ++b) {
    EXPECT_EQ(DeviceOf(f, b * kB), DeviceOf(f, (b + 4) * kB));
    EXPECT_TRUE(SharedAt(f, b * kB));
  }
  ASSERT_OK(fs_->CloneRange(f, 0, f, 12 * kB, 2 * kB));  // past the end: three owners
  Put(f, 0, "changed");
  EXPECT_EQ(Get(f, 4 * kB, 7), content.substr(0, 7));
  EXPECT_EQ(Get(f, 12 * kB, 7), content.substr(0, 7));
  EXPECT_TRUE(SharedAt(f, 4 * kB)) << "two owners left";
  EXPECT_ERRNO(fs_->CloneRange(f, 0, f, 2 * kB, 4 * kB), EINVAL) << "overlap";
  EXPECT_ERRNO(fs_->CloneRange(f, 4 * kB, f, 0, 8 * kB), EINVAL) << "overlap";
  EXPECT_ERRNO(fs_->CloneRange(f, 0, f, 0, kB), EINVAL) << "the same range";
}

TEST_F(ReflinkTest, CloneRangeErrors) {
  Ino a = NewFile("a");
  Put(a, 0, Pattern(4 * kB + 10, 14));
  Ino b = NewFile("b");
  Put(b, 0, "b's data");
  Result<Attr> dir = fs_->Mkdir(kRootIno, "d", 0755);
  ASSERT_OK(dir);
  Result<Attr> link = fs_->Symlink(kRootIno, "s", "a");
  ASSERT_OK(link);
  EXPECT_ERRNO(fs_->CloneRange(a, 1, b, 0, kB), EINVAL) << "misaligned source offset";
  EXPECT_ERRNO(fs_->CloneRange(a, 0, b, 100, kB), EINVAL) << "misaligned destination offset";
  EXPECT_ERRNO(fs_->CloneRange(a, 0, b, 0, kB + 1), EINVAL) << "misaligned length before EOF";
  EXPECT_ERRNO(fs_->CloneRange(a, 0, b, 0, 8 * kB), EINVAL) << "past the source's EOF";
  EXPECT_ERRNO(fs_->CloneRange(a, 8 * kB, b, 0, kB), EINVAL) << "starts past EOF";
  EXPECT_ERRNO(fs_->CloneRange(a, 8 * kB, b, 0, 0), EINVAL) << "to EOF from past it";
  EXPECT_ERRNO(fs_->CloneRange(a, 0, dir->ino, 0, kB), EISDIR);
  EXPECT_ERRNO(fs_->CloneRange(dir->ino, 0, b, 0, kB), EISDIR);
  EXPECT_ERRNO(fs_->CloneRange(link->ino, 0, b, 0, kB), EINVAL);
  EXPECT_ERRNO(fs_->CloneRange(a, 0, link->ino, 0, kB), EINVAL);
  EXPECT_ERRNO(fs_->CloneRange(a, 0, 9999, 0, kB), ENOENT);
  EXPECT_ERRNO(fs_->CloneRange(a, 0, b, kMaxSize / kB * kB, 2 * kB), EFBIG);
  EXPECT_ERRNO(fs_->CloneRange(a, 0, b, UINT64_MAX / kB * kB, 2 * kB), EINVAL) << "wraps";
  EXPECT_EQ(GetAll(b), "b's data") << "errors change nothing";
  EXPECT_FALSE(AnyShared(a));
}

// ---- Dedupe.

TEST_F(ReflinkTest, DedupeSharesEqualRanges) {
  std::string same = Pattern(4 * kB, 15);
  Ino a = NewFile("a");
  Put(a, 0, same + Pattern(kB, 16));
  Ino b = NewFile("b");
  Put(b, 0, Pattern(kB, 17) + same);
  uint64_t used = DataUsed();
  Attr before = *fs_->GetAttr(b);
  Result<DedupeResult> r = fs_->Dedupe(a, 0, b, kB, 4 * kB);
  ASSERT_OK(r);
  EXPECT_FALSE(r->differs);
  EXPECT_EQ(r->bytes_deduped, 4 * kB);
  EXPECT_EQ(DataUsed(), used - 4);
  EXPECT_EQ(DeviceOf(b, kB), DeviceOf(a, 0));
  EXPECT_TRUE(SharedAt(b, 4 * kB));
  EXPECT_FALSE(SharedAt(b, 0));
  EXPECT_EQ(Get(b, kB, 4 * kB), same);
  Attr after = *fs_->GetAttr(b);
  EXPECT_EQ(after.mtime_ns, before.mtime_ns) << "contents did not change";
  EXPECT_EQ(after.size, before.size);
}

TEST_F(ReflinkTest, DedupeOfDifferentRangesChangesNothing) {
  Ino a = NewFile("a");
  Put(a, 0, Pattern(4 * kB, 18));
  Ino b = NewFile("b");
  std::string other = Pattern(4 * kB, 18);
  other[3 * kB + 5] ^= 1;  // one byte differs, in the last block
  Put(b, 0, other);
  auto map_before = Map(b);
  Result<DedupeResult> r = fs_->Dedupe(a, 0, b, 0, 4 * kB);
  ASSERT_OK(r);
  EXPECT_TRUE(r->differs);
  EXPECT_EQ(r->bytes_deduped, 0u);
  EXPECT_FALSE(AnyShared(b));
  EXPECT_EQ(Map(b).size(), map_before.size());
  EXPECT_EQ(DeviceOf(b, 0), map_before[0].device_offset);
  EXPECT_EQ(GetAll(b), other);
}

TEST_F(ReflinkTest, DedupeLengthsAndErrors) {
  std::string same = Pattern(2 * kB + 100, 19);
  Ino a = NewFile("a");
  Put(a, 0, same);
  Ino b = NewFile("b");
  Put(b, 0, same);
  Ino c = NewFile("c");
  Put(c, 0, same + "more");
  // Both ranges end at EOF: the partial block is shared too.
  Result<DedupeResult> r = fs_->Dedupe(a, 0, b, 0, 2 * kB + 100);
  ASSERT_OK(r);
  EXPECT_EQ(r->bytes_deduped, 2 * kB + 100);
  EXPECT_TRUE(SharedAt(b, 2 * kB));
  // Only the source ends there: shortened to whole blocks.
  r = fs_->Dedupe(a, 0, c, 0, 2 * kB + 100);
  ASSERT_OK(r);
  EXPECT_EQ(r->bytes_deduped, 2 * kB);
  EXPECT_TRUE(SharedAt(c, kB));
  EXPECT_FALSE(SharedAt(c, 2 * kB));
  EXPECT_EQ(GetAll(c), same + "more");
  r = fs_->Dedupe(a, 0, c, 0, 0);
  ASSERT_OK(r);
  EXPECT_EQ(r->bytes_deduped, 0u);
  EXPECT_ERRNO(fs_->Dedupe(a, 0, b, 0, 4 * kB), EINVAL) << "past both EOFs";
  EXPECT_ERRNO(fs_->Dedupe(c, 0, a, kB, 2 * kB), EINVAL) << "past the destination's EOF";
  EXPECT_ERRNO(fs_->Dedupe(a, 1, b, 0, kB), EINVAL);
  EXPECT_ERRNO(fs_->Dedupe(a, 0, a, kB, 2 * kB), EINVAL);
  Result<Attr> dir = fs_->Mkdir(kRootIno, "d", 0755);
  ASSERT_OK(dir);
  EXPECT_ERRNO(fs_->Dedupe(a, 0, dir->ino, 0, kB), EISDIR);
  Ino e = NewFile("e");
  Put(e, 0, same.substr(0, kB));
  r = fs_->Dedupe(a, 0, e, 0, kB);  // one file's block into another's, then within a file
  ASSERT_OK(r);
  EXPECT_FALSE(r->differs);
  Put(e, kB, same.substr(0, kB));
  r = fs_->Dedupe(e, 0, e, kB, kB);
  ASSERT_OK(r);
  EXPECT_FALSE(r->differs);
  EXPECT_EQ(DeviceOf(e, kB), DeviceOf(a, 0));
}

// ---- Unshare.

TEST_F(ReflinkTest, UnshareGivesPrivateCopies) {
  std::string content = Pattern(8 * kB, 20);
  Ino a = NewFile("a");
  Put(a, 0, content);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  uint64_t used = DataUsed();
  ASSERT_OK(fs_->Unshare(b, 2 * kB + 1, 3 * kB));  // blocks 2..5
  EXPECT_EQ(DataUsed(), used + 4);
  for (uint64_t blk = 0; blk < 8; ++blk) {
    bool unshared = blk >= 2 && blk <= 5;
    EXPECT_EQ(SharedAt(b, blk * kB), !unshared) << "block " << blk;
    EXPECT_EQ(SharedAt(a, blk * kB), !unshared) << "block " << blk;
    EXPECT_EQ(DeviceOf(a, blk * kB) == DeviceOf(b, blk * kB), !unshared) << "block " << blk;
  }
  EXPECT_EQ(GetAll(a), content);
  EXPECT_EQ(GetAll(b), content);
  EXPECT_EQ(BlocksOf(b), 8u);
  ASSERT_OK(fs_->Unshare(b, 0, 100 * kB));  // past EOF: only what is there
  EXPECT_FALSE(AnyShared(b));
  EXPECT_FALSE(AnyShared(a));
  uint64_t after = DataUsed();
  ASSERT_OK(fs_->Unshare(b, 0, 8 * kB));  // nothing shared: nothing to do
  EXPECT_EQ(DataUsed(), after);
  EXPECT_EQ(GetAll(b), content);
  EXPECT_ERRNO(fs_->Unshare(b, 0, 0), EINVAL);
  EXPECT_ERRNO(fs_->Unshare(b, kMaxSize, 2), EFBIG);
  Result<Attr> dir = fs_->Mkdir(kRootIno, "d", 0755);
  ASSERT_OK(dir);
  EXPECT_ERRNO(fs_->Unshare(dir->ino, 0, kB), EISDIR);
  EXPECT_ERRNO(fs_->Unshare(9999, 0, kB), ENOENT);
}

// ---- copy_file_range.

TEST_F(ReflinkTest, CopyFileRangeSharesTheAlignedMiddle) {
  std::string src = Pattern(10 * kB, 21);
  Ino a = NewFile("a");
  Put(a, 0, src);
  Ino b = NewFile("b");
  Put(b, 0, Pattern(3 * kB, 22));
  std::string expect = GetAll(b);
  uint64_t used = DataUsed();
  // Same offset within the block: blocks 2..6 are shared, the edges copied.
  Result<uint64_t> n = fs_->CopyFileRange(a, kB + 100, b, 2 * kB + 100, 6 * kB);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 6 * kB);
  expect.resize(8 * kB + 100);
  expect.replace(2 * kB + 100, 6 * kB, src.substr(kB + 100, 6 * kB));
  EXPECT_EQ(GetAll(b), expect);
  EXPECT_FALSE(SharedAt(b, 2 * kB));
  for (uint64_t blk = 3; blk < 8; ++blk) {
    EXPECT_TRUE(SharedAt(b, blk * kB)) << blk;
    EXPECT_EQ(DeviceOf(b, blk * kB), DeviceOf(a, (blk - 1) * kB));
  }
  EXPECT_FALSE(SharedAt(b, 8 * kB));
  EXPECT_EQ(DataUsed(), used + 1) << "new: block 8; block 2 was copied (its old copy freed)";
  EXPECT_EQ(GetAll(a), src);
}

TEST_F(ReflinkTest, CopyFileRangeUnalignedCopiesBytes) {
  std::string src = Pattern(5 * kB, 23);
  Ino a = NewFile("a");
  Put(a, 0, src);
  Ino b = NewFile("b");
  Result<uint64_t> n = fs_->CopyFileRange(a, 10, b, 11, 100 * kB);  // stops at src EOF
  ASSERT_OK(n);
  EXPECT_EQ(*n, 5 * kB - 10);
  EXPECT_EQ(Size(b), 5 * kB + 1);
  EXPECT_EQ(Get(b, 11, 5 * kB), src.substr(10));
  EXPECT_EQ(Get(b, 0, 11), std::string(11, '\0'));
  EXPECT_FALSE(AnyShared(b));
  n = fs_->CopyFileRange(a, 5 * kB, b, 0, kB);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u) << "at the source's EOF";
  n = fs_->CopyFileRange(a, 0, b, 0, 0);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0u);
  // Within one file, without overlap.
  n = fs_->CopyFileRange(a, 0, a, 8 * kB, 2 * kB);
  ASSERT_OK(n);
  EXPECT_EQ(Get(a, 8 * kB, 2 * kB), src.substr(0, 2 * kB));
  EXPECT_TRUE(SharedAt(a, 9 * kB));
  EXPECT_ERRNO(fs_->CopyFileRange(a, 0, a, kB, 2 * kB), EINVAL) << "overlap";
  Result<Attr> dir = fs_->Mkdir(kRootIno, "d", 0755);
  ASSERT_OK(dir);
  EXPECT_ERRNO(fs_->CopyFileRange(a, 0, dir->ino, 0, kB), EISDIR);
  EXPECT_ERRNO(fs_->CopyFileRange(dir->ino, 0, b, 0, kB), EISDIR);
  Result<Attr> link = fs_->Symlink(kRootIno, "s", "a");
  ASSERT_OK(link);
  EXPECT_ERRNO(fs_->CopyFileRange(link->ino, 0, b, 0, kB), EINVAL);
  EXPECT_ERRNO(fs_->CopyFileRange(a, 0, b, kMaxSize - 10, kB), EFBIG);
}

// ---- Without reflink.

TEST_F(ReflinkTest, FilesystemWithoutReflinkRefusesIt) {
  for (FormatOptions options : {FormatOptions{.rmap = false, .reflink = false},
                                FormatOptions{.rmap = true, .reflink = false}}) {
    Start(options);
    Ino a = NewFile("a");
    Put(a, 0, Pattern(3 * kB, 24));
    Ino b = NewFile("b");
    Status s = fs_->Clone(a, b);
    EXPECT_EQ(s.code(), EOPNOTSUPP);
    EXPECT_NE(s.message().find("reflink needs"), std::string::npos) << s.message();
    EXPECT_ERRNO(fs_->CloneRange(a, 0, b, 0, kB), EOPNOTSUPP);
    EXPECT_ERRNO(fs_->Dedupe(a, 0, b, 0, kB), EOPNOTSUPP);
    EXPECT_ERRNO(fs_->Unshare(a, 0, kB), EOPNOTSUPP);
    // copy_file_range copies instead.
    Result<uint64_t> n = fs_->CopyFileRange(a, 0, b, 0, 3 * kB);
    ASSERT_OK(n);
    EXPECT_EQ(*n, 3 * kB);
    EXPECT_EQ(GetAll(b), GetAll(a));
    EXPECT_NE(DeviceOf(b, 0), DeviceOf(a, 0));
    EXPECT_FALSE(AnyShared(b));
    ExpectConsistent();
    Remount();
    EXPECT_EQ(GetAll(b), GetAll(a));
  }
}

TEST_F(ReflinkTest, FormatRefusesReflinkWithoutRmap) {
  auto dev = device::NewMemoryDevice(16 << 20);
  EXPECT_ERRNO(Filesystem::Format(dev.get(), {.rmap = false, .reflink = true}), EINVAL);
}

// ---- Durability.

TEST_F(ReflinkTest, GroupCommitCloneOfFreshBlocks) {
  Start({}, {.durability = Durability::kGroupCommit, .group_commit_ops = 1000});
  std::string content = Pattern(4 * kB, 25);
  Ino a = NewFile("a");
  Put(a, 0, content);  // fresh blocks, not committed yet
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  Put(a, kB, std::string(2 * kB, 'W'));  // fresh but shared: must be copied, not overwritten
  EXPECT_EQ(GetAll(b), content) << "writing the source changed the clone";
  ASSERT_OK(fs_->Truncate(a, 10));
  ASSERT_OK(fs_->Fallocate(a, kFallocZeroRange, 0, 3 * kB));
  EXPECT_EQ(GetAll(b), content);
  ASSERT_OK(fs_->Unlink(kRootIno, "a"));
  EXPECT_EQ(GetAll(b), content);
  Put(b, 0, "in place now");  // b is the only owner of fresh blocks
  ASSERT_OK(fs_->Sync());
  Remount({.durability = Durability::kGroupCommit});
  std::string expect = content;
  expect.replace(0, 12, "in place now");
  EXPECT_EQ(GetAll(b), expect);
}

TEST_F(ReflinkTest, SharingSurvivesRemount) {
  std::string content = Pattern(6 * kB, 26);
  Ino a = NewFile("a");
  Put(a, 0, content);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  uint64_t used = DataUsed();
  auto map_a = Map(a);
  Remount();
  EXPECT_EQ(DataUsed(), used) << "shared blocks counted once at mount";
  EXPECT_EQ(Map(a).size(), map_a.size());
  EXPECT_EQ(DeviceOf(b, 0), map_a[0].device_offset);
  EXPECT_TRUE(SharedAt(a, 0));
  EXPECT_TRUE(SharedAt(b, 5 * kB));
  Put(b, 0, "after remount");
  EXPECT_EQ(GetAll(a), content);
  ASSERT_OK(fs_->Unlink(kRootIno, "b"));
  Remount();
  EXPECT_EQ(GetAll(a), content);
  EXPECT_FALSE(AnyShared(a));
  EXPECT_EQ(DataUsed(), used);
}

// ---- Many extents and full devices.

TEST_F(ReflinkTest, CloneOfAFragmentedFile) {
  Ino a = Fragmented("a", 600, 27);
  ASSERT_GT(Map(a).size(), 500u);
  std::string content = GetAll(a);
  Ino b = NewFile("b");
  Put(b, 0, Pattern(700 * kB, 28));
  ASSERT_OK(fs_->Clone(a, b));
  EXPECT_EQ(GetAll(b), content);
  EXPECT_EQ(Map(b).size(), Map(a).size());
  ExpectConsistent();
  // Clone a range that starts and ends inside extents, onto b's shared blocks.
  ASSERT_OK(fs_->CloneRange(a, 100 * kB, b, 300 * kB, 200 * kB));
  std::string expect = content;
  expect.replace(300 * kB, 200 * kB, content.substr(100 * kB, 200 * kB));
  EXPECT_EQ(GetAll(b), expect);
  ExpectConsistent();
  Remount();
  EXPECT_EQ(GetAll(b), expect);
}

TEST_F(ReflinkTest, CopyOnWriteOfASharedBlockOnAFullDeviceIsEnospc) {
  Start({.chunk_size = 256 << 10}, {}, 4 << 20);
  Ino a = NewFile("a");
  std::string content = Pattern(8 * kB, 29);
  Put(a, 0, content);
  Ino b = NewFile("b");
  ASSERT_OK(fs_->Clone(a, b));
  Ino fill = NewFile("fill");
  for (uint64_t off = 0;; off += kB) {
    if (!fs_->Write(fill, off, Bytes(std::string(kB, 'f'))).ok()) break;
    ASSERT_LT(off, 4u << 20);
  }
  auto map_b = Map(b);
  EXPECT_ERRNO(fs_->Write(b, 10, Bytes("x")), ENOSPC);
  EXPECT_ERRNO(fs_->Unshare(b, 0, 8 * kB), ENOSPC);
  EXPECT_EQ(GetAll(b), content);
  EXPECT_EQ(Map(b).size(), map_b.size());
  EXPECT_TRUE(SharedAt(b, 0));
  // Clones need no data blocks (and the nodes fit in the space left).
  Ino c = NewFile("c");
  ASSERT_OK(fs_->CloneRange(a, 0, c, 0, kB));
  EXPECT_EQ(GetAll(c), content.substr(0, kB));
}

}  // namespace
}  // namespace daxfs
