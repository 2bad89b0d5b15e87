// Tests of file data: read/write against a byte model (randomized; seed printed, DAXFS_SEED
// replays), holes and sparse files, copy-on-write, group commit, truncate, fallocate, seeking,
// ENOSPC and remounts. Every test ends with the consistency checker.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/random.h"
#include "daxfs/filesystem.h"
#include "device/device.h"
#include "fs/fs_impl.h"
#include "fs_fixture.h"

namespace daxfs {
namespace {

constexpr uint64_t kB = 4096;
constexpr uint64_t kTiB = 1ULL << 40;
constexpr uint64_t kMaxSize = (1ULL << 63) - 1;

using testing::Bytes;
using testing::Pattern;

class FileIoTest : public testing::FsFixture {
 protected:
  void SetUp() override { Start(64 << 20, {}); }

  void Start(uint64_t device_size, const MountOptions& options) {
    StartOnMemory(device_size, {}, options);
  }

  // The device block behind file offset `offset` (0 for a hole).
  uint64_t DeviceOffsetOf(Ino ino, uint64_t offset) {
    for (const FileExtent& e : Map(ino)) {
      if (offset >= e.file_offset && offset < e.file_offset + e.length) {
        return e.device_offset + (offset - e.file_offset);
      }
    }
    return 0;
  }
  std::string DeviceBytes(uint64_t offset, size_t length) {
    return std::string(reinterpret_cast<const char*>(dev_->At(offset)), length);
  }
};

// ---- Basics.

TEST_F(FileIoTest, WriteThenReadBack) {
  Ino f = NewFile();
  Put(f, 0, "hello, world");
  EXPECT_EQ(Size(f), 12u);
  EXPECT_EQ(Blocks(f), 1u);
  EXPECT_EQ(Get(f, 0, 100), "hello, world") << "a read past the end is short";
  EXPECT_EQ(Get(f, 7, 5), "world");
  EXPECT_EQ(Get(f, 12, 10), "");
  EXPECT_EQ(Get(f, 1000, 10), "");
}

TEST_F(FileIoTest, ZeroLengthWriteChangesNothing) {
  Ino f = NewFile();
  Put(f, 0, "abc");
  Attr before = *fs_->GetAttr(f);
  uint64_t generation = fs_->StatFs()->generation;
  Result<size_t> n = fs_->Write(f, 1 << 20, {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  Attr after = *fs_->GetAttr(f);
  EXPECT_EQ(after.size, before.size);
  EXPECT_EQ(after.mtime_ns, before.mtime_ns);
  EXPECT_EQ(fs_->StatFs()->generation, generation) << "an empty write committed something";
}

TEST_F(FileIoTest, PartialBlocksAndHolesReadAsZeros) {
  Ino f = NewFile();
  Put(f, 5000, "abc");
  EXPECT_EQ(Size(f), 5003u);
  EXPECT_EQ(Blocks(f), 1u) << "block 0 is a hole";
  EXPECT_EQ(Get(f, 0, 5003), std::string(5000, '\0') + "abc");
  Put(f, 5010, "xyz");  // in the block already written, after the data: zeros between
  EXPECT_EQ(Get(f, 4096, 917), std::string(904, '\0') + "abc" + std::string(7, '\0') + "xyz");
  Put(f, 4094, "0123");  // straddles the hole and the mapped block
  EXPECT_EQ(Get(f, 4090, 10), std::string(4, '\0') + "0123" + std::string(2, '\0'));
  std::vector<FileExtent> m = Map(f);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[0].file_offset, 0u);
  EXPECT_EQ(m.back().file_offset + m.back().length, 2 * kB);
  EXPECT_EQ(Blocks(f), 2u);
}

TEST_F(FileIoTest, WrongFileTypes) {
  std::string buf(10, 0);
  EXPECT_EQ(fs_->Read(kRootIno, 0, {reinterpret_cast<uint8_t*>(buf.data()), 10}).status().code(),
            EISDIR);
  EXPECT_EQ(fs_->Write(kRootIno, 0, Bytes("x")).status().code(), EISDIR);
  EXPECT_EQ(fs_->Truncate(kRootIno, 0).code(), EISDIR);
  EXPECT_EQ(fs_->Fallocate(kRootIno, 0, 0, 10).code(), EISDIR);
  EXPECT_EQ(fs_->SeekData(kRootIno, 0).status().code(), EISDIR);
  EXPECT_EQ(fs_->Bmap(kRootIno).status().code(), EISDIR);
  EXPECT_EQ(fs_->Write(12345, 0, Bytes("x")).status().code(), ENOENT);
  EXPECT_EQ(fs_->Read(12345, 0, {reinterpret_cast<uint8_t*>(buf.data()), 10}).status().code(),
            ENOENT);
}

TEST_F(FileIoTest, SymlinksAreNotFiles) {
  Result<Attr> l = fs_->Symlink(kRootIno, "l", "some/target");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  std::string buf(10, 0);
  EXPECT_EQ(fs_->Read(l->ino, 0, {reinterpret_cast<uint8_t*>(buf.data()), 10}).status().code(),
            EINVAL);
  EXPECT_EQ(fs_->Write(l->ino, 0, Bytes("x")).status().code(), EINVAL);
  EXPECT_EQ(fs_->Truncate(l->ino, 0).code(), EINVAL);
  EXPECT_EQ(*fs_->ReadLink(l->ino), "some/target");
}

TEST_F(FileIoTest, FileSizeLimit) {
  Ino f = NewFile();
  EXPECT_EQ(fs_->Write(f, kMaxSize, Bytes("x")).status().code(), EFBIG);
  EXPECT_EQ(fs_->Write(f, kMaxSize - 1, Bytes("xy")).status().code(), EFBIG);
  EXPECT_EQ(fs_->Write(f, ~0ULL, Bytes("x")).status().code(), EFBIG);
  EXPECT_EQ(Size(f), 0u);
  Put(f, kMaxSize - 1, "z");  // the very last byte a file can have
  EXPECT_EQ(Size(f), kMaxSize);
  EXPECT_EQ(Get(f, kMaxSize - 1, 10), "z");
  EXPECT_EQ(fs_->Truncate(f, kMaxSize + 1).code(), EFBIG);
}

TEST_F(FileIoTest, SparseBeyondOneTiB) {
  Ino f = NewFile();
  Put(f, 0, "head");
  Put(f, 3 * kTiB + 123, "far away");
  EXPECT_EQ(Size(f), 3 * kTiB + 131);
  EXPECT_EQ(Blocks(f), 2u);
  EXPECT_EQ(Get(f, 3 * kTiB + 123, 100), "far away");
  EXPECT_EQ(Get(f, kTiB, 8), std::string(8, '\0'));
  EXPECT_EQ(Get(f, 3 * kTiB + 120, 5), std::string(3, '\0') + "fa");
  EXPECT_EQ(*fs_->SeekData(f, 5), 5u);
  EXPECT_EQ(*fs_->SeekHole(f, 5), kB);
  EXPECT_EQ(*fs_->SeekData(f, kB), 3 * kTiB);
  Put(f, 2 * kTiB, "middle");
  Remount();
  EXPECT_EQ(Get(f, 2 * kTiB, 6), "middle");
  EXPECT_EQ(Get(f, 3 * kTiB + 123, 8), "far away");
  ASSERT_TRUE(fs_->Truncate(f, kTiB).ok());
  EXPECT_EQ(Blocks(f), 1u);
  EXPECT_EQ(Get(f, 0, 4), "head");
}

// ---- Layout.

TEST_F(FileIoTest, AppendsMergeIntoOneExtent) {
  Ino f = NewFile();
  std::string all;
  for (int i = 0; i < 64; ++i) {
    std::string block = Pattern(kB, i);
    Put(f, i * kB, block);
    all += block;
  }
  std::vector<FileExtent> m = Map(f);
  ASSERT_EQ(m.size(), 1u) << "sequential 4 KiB appends did not merge";
  EXPECT_EQ(m[0].length, 64 * kB);
  EXPECT_FALSE(m[0].unwritten);
  EXPECT_EQ(Blocks(f), 64u);
  EXPECT_EQ(GetAll(f), all);
}

TEST_F(FileIoTest, LargeWriteAcrossChunks) {
  Ino f = NewFile();
  std::string big = Pattern(9 << 20, 7);  // more than two 4 MiB chunks
  Put(f, 100, big);
  EXPECT_EQ(Get(f, 100, big.size()), big);
  EXPECT_EQ(Blocks(f), (100 + big.size() + kB - 1) / kB);
  uint64_t mapped = 0;
  for (auto& e : Map(f)) mapped += e.length;
  EXPECT_EQ(mapped, Blocks(f) * kB);
  Remount();
  EXPECT_EQ(Get(f, 100, big.size()), big);
}

TEST_F(FileIoTest, OverwriteOfCommittedBlocksIsCopyOnWrite) {
  Ino f = NewFile();
  std::string a = Pattern(3 * kB, 1);
  Put(f, 0, a);
  uint64_t old_middle = DeviceOffsetOf(f, kB);
  ASSERT_NE(old_middle, 0u);
  Put(f, kB + 100, "NEW");
  uint64_t new_middle = DeviceOffsetOf(f, kB);
  EXPECT_NE(new_middle, old_middle) << "a committed block was overwritten in place";
  EXPECT_EQ(DeviceBytes(old_middle, kB), a.substr(kB, kB)) << "the committed block changed";
  std::string want = a;
  want.replace(kB + 100, 3, "NEW");
  EXPECT_EQ(GetAll(f), want);
  EXPECT_EQ(Blocks(f), 3u);
  // The untouched blocks keep their place.
  EXPECT_EQ(DeviceOffsetOf(f, 0), DeviceOffsetOf(f, 0));
  Remount();
  EXPECT_EQ(GetAll(f), want);
}

TEST_F(FileIoTest, GroupCommitWritesFreshBlocksInPlace) {
  Start(64 << 20, {.durability = Durability::kGroupCommit});
  Ino f = NewFile();
  Put(f, 0, Pattern(2 * kB, 1));
  uint64_t fresh = DeviceOffsetOf(f, 0);
  Put(f, 10, "in place");
  EXPECT_EQ(DeviceOffsetOf(f, 0), fresh) << "a block fresh in this transaction was copied";
  EXPECT_EQ(Get(f, 10, 8), "in place");
  ASSERT_TRUE(fs_->Sync().ok());
  Put(f, 20, "after sync");
  EXPECT_NE(DeviceOffsetOf(f, 0), fresh) << "a committed block was written in place";
  EXPECT_EQ(DeviceBytes(fresh + 20, 10), Pattern(2 * kB, 1).substr(20, 10));
  // Block 1 is still committed and block 0 now fresh: one write over both does each its way.
  uint64_t committed = DeviceOffsetOf(f, kB);
  uint64_t now_fresh = DeviceOffsetOf(f, 0);
  Put(f, kB - 2, "both");
  EXPECT_EQ(DeviceOffsetOf(f, 0), now_fresh);
  EXPECT_NE(DeviceOffsetOf(f, kB), committed);
  EXPECT_EQ(Get(f, kB - 4, 8),
            Pattern(2 * kB, 1).substr(kB - 4, 2) + "both" + Pattern(2 * kB, 1).substr(kB + 2, 2));
  Remount({.durability = Durability::kGroupCommit});
  EXPECT_EQ(Get(f, 10, 8), "in place");
  EXPECT_EQ(Get(f, kB - 2, 4), "both");
}

TEST_F(FileIoTest, GroupCommitAppendsMergeAndStayInPlace) {
  Start(64 << 20, {.durability = Durability::kGroupCommit});
  Ino f = NewFile();
  for (int i = 0; i < 20; ++i) Put(f, i * 1000, std::string(1000, static_cast<char>('A' + i)));
  EXPECT_EQ(Map(f).size(), 1u);
  EXPECT_EQ(Get(f, 19500, 500), std::string(500, 'T'));
}

// ---- Truncate.

TEST_F(FileIoTest, TruncateDownZeroesTheTailOfTheLastBlock) {
  Ino f = NewFile();
  std::string x = Pattern(10000, 3);
  Put(f, 0, x);
  uint64_t last_block = DeviceOffsetOf(f, 2 * kB);
  ASSERT_TRUE(fs_->Truncate(f, 9000).ok());  // partial last block, committed: copied
  EXPECT_EQ(Size(f), 9000u);
  EXPECT_NE(DeviceOffsetOf(f, 2 * kB), last_block);
  EXPECT_EQ(DeviceBytes(last_block, 10000 - 2 * kB), x.substr(2 * kB)) << "committed block changed";
  ASSERT_TRUE(fs_->Truncate(f, 5000).ok());
  EXPECT_EQ(Size(f), 5000u);
  EXPECT_EQ(Blocks(f), 2u);
  ASSERT_TRUE(fs_->Truncate(f, 12000).ok());
  EXPECT_EQ(Size(f), 12000u);
  EXPECT_EQ(Blocks(f), 2u) << "growing maps nothing";
  EXPECT_EQ(GetAll(f), x.substr(0, 5000) + std::string(7000, '\0'));
  ASSERT_TRUE(fs_->Truncate(f, 0).ok());
  EXPECT_EQ(Blocks(f), 0u);
  EXPECT_TRUE(Map(f).empty());
  ASSERT_TRUE(fs_->Truncate(f, 3).ok());
  EXPECT_EQ(GetAll(f), std::string(3, '\0'));
}

TEST_F(FileIoTest, TruncateFreshTailInPlace) {
  Start(64 << 20, {.durability = Durability::kGroupCommit});
  Ino f = NewFile();
  Put(f, 0, std::string(6000, 'q'));
  uint64_t block1 = DeviceOffsetOf(f, kB);
  ASSERT_TRUE(fs_->Truncate(f, 5000).ok());
  EXPECT_EQ(DeviceOffsetOf(f, kB), block1);
  ASSERT_TRUE(fs_->Truncate(f, 8000).ok());
  EXPECT_EQ(GetAll(f), std::string(5000, 'q') + std::string(3000, '\0'));
  Remount();
  EXPECT_EQ(GetAll(f), std::string(5000, 'q') + std::string(3000, '\0'));
}

TEST_F(FileIoTest, TruncateFreesBlocksForReuse) {
  Ino f = NewFile();
  Put(f, 0, std::string(40 * kB, 'x'));
  uint64_t free_before = fs_->StatFs()->free_blocks;
  ASSERT_TRUE(fs_->Truncate(f, 0).ok());
  EXPECT_EQ(fs_->StatFs()->free_blocks, free_before + 40);
}

// ---- Fallocate.

TEST_F(FileIoTest, FallocateAllocatesUnwrittenExtents) {
  Ino f = NewFile();
  ASSERT_TRUE(fs_->Fallocate(f, 0, 100, 3 * kB).ok());
  EXPECT_EQ(Size(f), 100 + 3 * kB);
  EXPECT_EQ(Blocks(f), 4u);
  std::vector<FileExtent> m = Map(f);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].unwritten);
  EXPECT_EQ(m[0].length, 4 * kB);
  EXPECT_EQ(GetAll(f), std::string(100 + 3 * kB, '\0'));
  EXPECT_EQ(fs_->SeekData(f, 0).status().code(), ENXIO) << "unwritten extents are holes";
  EXPECT_EQ(*fs_->SeekHole(f, 0), 0u);
  // Writing into it converts just the written blocks, in place, zeroing the rest of them.
  uint64_t device = m[0].device_offset;
  Put(f, kB + 10, "data");
  m = Map(f);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_TRUE(m[0].unwritten);
  EXPECT_FALSE(m[1].unwritten);
  EXPECT_EQ(m[1].device_offset, device + kB) << "an unwritten block is written in place";
  EXPECT_TRUE(m[2].unwritten);
  EXPECT_EQ(Get(f, kB, 20), std::string(10, '\0') + "data" + std::string(6, '\0'));
  EXPECT_EQ(Blocks(f), 4u);
  EXPECT_EQ(*fs_->SeekData(f, 0), kB);
  EXPECT_EQ(*fs_->SeekHole(f, kB), 2 * kB);
  // Writing the next block merges it with the written one.
  Put(f, 2 * kB, "more");
  m = Map(f);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[1].length, 2 * kB);
}

TEST_F(FileIoTest, ReusedBlocksNeverShowOldBytes) {
  Ino old = NewFile("old");
  Put(old, 0, std::string(16 * kB, 'S'));
  ASSERT_TRUE(fs_->Truncate(old, 0).ok());  // its blocks are free again after this commit
  Ino f = NewFile();
  ASSERT_TRUE(fs_->Fallocate(f, 0, 0, 8 * kB).ok());
  std::vector<FileExtent> m = Map(f);
  ASSERT_FALSE(m.empty());
  ASSERT_EQ(DeviceBytes(m[0].device_offset, 4), "SSSS") << "test premise: a stale block is reused";
  EXPECT_EQ(GetAll(f), std::string(8 * kB, '\0'));
  Put(f, 100, "x");  // converts block 0: the rest of it must read as zeros
  EXPECT_EQ(Get(f, 0, kB), std::string(100, '\0') + "x" + std::string(kB - 101, '\0'));
  Ino g = NewFile("g");
  Put(g, 10, "y");  // a hole block gets a stale block: zero-filled around the write
  EXPECT_EQ(Get(g, 0, 11), std::string(10, '\0') + "y");
}

TEST_F(FileIoTest, FallocateKeepSizeAndExistingDataUntouched) {
  Ino f = NewFile();
  Put(f, kB, "existing");
  uint64_t device = DeviceOffsetOf(f, kB);
  ASSERT_TRUE(fs_->Fallocate(f, kFallocKeepSize, 0, 8 * kB).ok());
  EXPECT_EQ(Size(f), kB + 8);
  EXPECT_EQ(Blocks(f), 8u);
  EXPECT_EQ(DeviceOffsetOf(f, kB), device);
  EXPECT_EQ(Get(f, kB, 8), "existing");
  // Beyond EOF, and a later truncate below frees them.
  ASSERT_TRUE(fs_->Truncate(f, 10).ok());
  EXPECT_EQ(Blocks(f), 1u);
  // fallocate into a range that is already all mapped: nothing to allocate.
  ASSERT_TRUE(fs_->Fallocate(f, 0, 0, 10).ok());
  EXPECT_EQ(Blocks(f), 1u);
}

TEST_F(FileIoTest, PunchHole) {
  Ino f = NewFile();
  std::string a = Pattern(4 * kB, 9);
  Put(f, 0, a);
  ASSERT_TRUE(fs_->Fallocate(f, kFallocPunchHole | kFallocKeepSize, 1000, 2 * kB + 3096 + 10).ok());
  // Bytes [1000, 3*4096 + 10) are zeros; blocks 1 and 2 are gone; edges were copied on write.
  std::string want = a;
  std::fill(want.begin() + 1000, want.begin() + 3 * kB + 10, '\0');
  EXPECT_EQ(GetAll(f), want);
  EXPECT_EQ(Size(f), 4 * kB);
  EXPECT_EQ(Blocks(f), 2u);
  EXPECT_EQ(*fs_->SeekHole(f, 0), kB);
  EXPECT_EQ(*fs_->SeekData(f, kB), 3 * kB);
  // Within one block, and past EOF (nothing to zero there, size unchanged).
  ASSERT_TRUE(fs_->Fallocate(f, kFallocPunchHole | kFallocKeepSize, 5, 10).ok());
  std::fill(want.begin() + 5, want.begin() + 15, '\0');
  ASSERT_TRUE(fs_->Fallocate(f, kFallocPunchHole | kFallocKeepSize, 10 * kB, kB).ok());
  EXPECT_EQ(GetAll(f), want);
  Remount();
  EXPECT_EQ(GetAll(f), want);
}

TEST_F(FileIoTest, ZeroRange) {
  Ino f = NewFile();
  std::string a = Pattern(4 * kB, 11);
  Put(f, 0, a);
  uint64_t block1 = DeviceOffsetOf(f, kB);
  ASSERT_TRUE(fs_->Fallocate(f, kFallocZeroRange, 100, 3 * kB).ok());
  std::string want = a;
  std::fill(want.begin() + 100, want.begin() + 100 + 3 * kB, '\0');
  EXPECT_EQ(GetAll(f), want);
  EXPECT_EQ(Size(f), 4 * kB);
  EXPECT_EQ(Blocks(f), 4u) << "whole blocks stay allocated (unwritten)";
  std::vector<FileExtent> m = Map(f);
  bool block1_unwritten = false;
  for (auto& e : m) {
    if (e.file_offset <= kB && kB < e.file_offset + e.length) block1_unwritten = e.unwritten;
  }
  EXPECT_TRUE(block1_unwritten);
  EXPECT_EQ(DeviceBytes(block1, kB), a.substr(kB, kB)) << "the committed block changed";
  // Past EOF: size grows unless KEEP_SIZE.
  ASSERT_TRUE(fs_->Fallocate(f, kFallocZeroRange | kFallocKeepSize, 4 * kB, 2 * kB).ok());
  EXPECT_EQ(Size(f), 4 * kB);
  EXPECT_EQ(Blocks(f), 6u);
  ASSERT_TRUE(fs_->Fallocate(f, kFallocZeroRange, 6 * kB + 5, 10).ok());
  EXPECT_EQ(Size(f), 6 * kB + 15);
  EXPECT_EQ(Get(f, 4 * kB, 2 * kB + 15), std::string(2 * kB + 15, '\0'));
  Remount();
  EXPECT_EQ(Get(f, 0, 4 * kB), want);
}

TEST_F(FileIoTest, FallocateErrors) {
  Ino f = NewFile();
  Put(f, 0, "abc");
  EXPECT_EQ(fs_->Fallocate(f, 0, 0, 0).code(), EINVAL);
  EXPECT_EQ(fs_->Fallocate(f, 0x04, 0, 10).code(), EOPNOTSUPP);  // COLLAPSE_RANGE... unknown here
  EXPECT_EQ(fs_->Fallocate(f, 0x100, 0, 10).code(), EOPNOTSUPP);
  EXPECT_EQ(fs_->Fallocate(f, kFallocPunchHole, 0, 10).code(), EOPNOTSUPP);  // as Linux
  EXPECT_EQ(fs_->Fallocate(f, kFallocPunchHole | kFallocZeroRange | kFallocKeepSize, 0, 10).code(),
            EOPNOTSUPP);
  EXPECT_EQ(fs_->Fallocate(f, 0, kMaxSize, 1).code(), EFBIG);
  EXPECT_EQ(fs_->Fallocate(f, 0, ~0ULL - 5, 10).code(), EFBIG);
  EXPECT_EQ(Size(f), 3u);
  EXPECT_EQ(GetAll(f), "abc");
}

// ---- Seeking.

TEST_F(FileIoTest, SeekDataAndSeekHole) {
  Ino f = NewFile();
  Put(f, 0, std::string(kB, 'a'));            // block 0
  Put(f, 3 * kB + 5, std::string(100, 'b'));  // block 3, then EOF
  uint64_t size = 3 * kB + 105;
  EXPECT_EQ(*fs_->SeekData(f, 0), 0u);
  EXPECT_EQ(*fs_->SeekData(f, 10), 10u);
  EXPECT_EQ(*fs_->SeekHole(f, 0), kB);
  EXPECT_EQ(*fs_->SeekHole(f, kB + 1), kB + 1);
  EXPECT_EQ(*fs_->SeekData(f, kB), 3 * kB);
  EXPECT_EQ(*fs_->SeekHole(f, 3 * kB), size) << "the implicit hole at EOF";
  EXPECT_EQ(fs_->SeekData(f, size).status().code(), ENXIO);
  EXPECT_EQ(fs_->SeekHole(f, size).status().code(), ENXIO);
  // Data only in a region past EOF-in-the-same-sense: a hole then nothing.
  ASSERT_TRUE(fs_->Truncate(f, 8 * kB).ok());
  EXPECT_EQ(fs_->SeekData(f, 4 * kB).status().code(), ENXIO);
  EXPECT_EQ(*fs_->SeekHole(f, 4 * kB), 4 * kB);
}

// ---- Space.

TEST_F(FileIoTest, EnospcLeavesTheFileAsItWas) {
  Start(4 << 20, {});
  Ino f = NewFile();
  std::string chunk = Pattern(64 * kB, 5);
  uint64_t offset = 0;
  while (true) {
    Result<size_t> n = fs_->Write(f, offset, Bytes(chunk));
    if (!n.ok()) {
      ASSERT_EQ(n.status().code(), ENOSPC) << n.status().ToString();
      break;
    }
    offset += chunk.size();
    ASSERT_LT(offset, 8u << 20) << "never ran out of space";
  }
  ExpectConsistent();
  Attr before = *fs_->GetAttr(f);
  std::vector<FileExtent> map_before = Map(f);
  std::string content = GetAll(f);
  EXPECT_EQ(before.size, offset);
  // An overwrite of committed blocks needs new ones: refused, nothing changed.
  EXPECT_EQ(fs_->Write(f, 0, Bytes(std::string(2 << 20, 'z'))).status().code(), ENOSPC);
  EXPECT_EQ(fs_->Fallocate(f, 0, offset, 2 << 20).code(), ENOSPC);
  EXPECT_EQ(fs_->Fallocate(f, kFallocZeroRange, 0, offset).code(), ENOSPC);
  Attr after = *fs_->GetAttr(f);
  EXPECT_EQ(after.size, before.size);
  EXPECT_EQ(after.blocks, before.blocks);
  EXPECT_EQ(after.mtime_ns, before.mtime_ns);
  std::vector<FileExtent> map_after = Map(f);
  ASSERT_EQ(map_after.size(), map_before.size());
  for (size_t i = 0; i < map_after.size(); ++i) {
    EXPECT_EQ(map_after[i].device_offset, map_before[i].device_offset);
    EXPECT_EQ(map_after[i].length, map_before[i].length);
  }
  EXPECT_EQ(GetAll(f), content);
  ExpectConsistent();
  // Freeing space makes writes possible again (released blocks are reusable after the commit).
  ASSERT_TRUE(fs_->Truncate(f, offset / 2).ok());
  Put(f, offset / 2, std::string(64 * kB, 'n'));
  EXPECT_EQ(Get(f, offset / 2, 64 * kB), std::string(64 * kB, 'n'));
  Remount();
  EXPECT_EQ(Get(f, 0, offset / 2), content.substr(0, offset / 2));
}

// A write that gets its blocks by typing the last free chunk for data but then finds no room
// for metadata nodes: the chunk typing is undone with everything else.
TEST_F(FileIoTest, EnospcAfterTypingADataChunk) {
  Start(4 << 20, {});
  auto* impl = static_cast<fs::FsImpl*>(fs_.get());
  Ino b = NewFile("b");
  for (uint64_t i = 0; i < 64; i += 2) Put(b, i * kB, std::string(kB, 'b'));  // 32 extents
  Ino a = NewFile("a");
  uint64_t offset = 0;
  // Fill the data chunks until exactly one chunk is left and no free data block.
  while (!(impl->pool()->Space().free_chunks == 1 &&
           fs_->StatFs()->free_blocks == impl->pool()->superblock().chunk_blocks())) {
    Put(a, offset, std::string(kB, 'a'));
    offset += kB;
    ASSERT_LT(offset, 4u << 20);
    ASSERT_GE(impl->pool()->Space().free_chunks, 1u);
  }
  std::string before = GetAll(b);
  std::vector<FileExtent> map_before = Map(b);
  // 64 new blocks (32 holes + 32 copies) fit the last chunk exactly; 64 pieces need more nodes
  // than chunk 0 has left.
  EXPECT_EQ(fs_->Write(b, 0, Bytes(std::string(64 * kB, 'B'))).status().code(), ENOSPC);
  EXPECT_EQ(impl->pool()->Space().free_chunks, 1u) << "the chunk typing was not undone";
  EXPECT_EQ(GetAll(b), before);
  EXPECT_EQ(Map(b).size(), map_before.size());
  ExpectConsistent();
  Put(a, offset, "still works");
}

TEST_F(FileIoTest, EnospcInGroupCommitKeepsEarlierOperations) {
  Start(4 << 20, {.durability = Durability::kGroupCommit});
  Ino f = NewFile();
  Put(f, 0, "first");
  std::string huge(8 << 20, 'h');
  EXPECT_EQ(fs_->Write(f, 100, Bytes(huge)).status().code(), ENOSPC);
  EXPECT_EQ(GetAll(f), "first");
  Put(f, 5, " second");
  ExpectConsistent();
  Remount();
  EXPECT_EQ(GetAll(f), "first second");
}

TEST_F(FileIoTest, UnlinkFreesTheData) {
  Ino f = NewFile();
  uint64_t free_before = fs_->StatFs()->free_blocks;
  Put(f, 0, std::string(100 * kB, 'u'));
  Put(f, kTiB, "sparse");
  EXPECT_EQ(fs_->StatFs()->free_blocks, free_before - 101);
  ASSERT_TRUE(fs_->Unlink(kRootIno, "f").ok());
  EXPECT_EQ(fs_->StatFs()->free_blocks, free_before);
}

TEST_F(FileIoTest, RemountKeepsDataAndFreeSpace) {
  Ino f = NewFile("a");
  Ino g = NewFile("b");
  Put(f, 0, Pattern(50000, 1));
  Put(g, 7 * kB, Pattern(9000, 2));
  ASSERT_TRUE(fs_->Fallocate(g, kFallocKeepSize, 20 * kB, 5 * kB).ok());
  Put(f, 1234, "overwrite");
  std::vector<FileExtent> fm = Map(f), gm = Map(g);
  std::string fc = GetAll(f), gc = GetAll(g);
  uint64_t free = fs_->StatFs()->free_blocks;
  Remount();
  EXPECT_EQ(GetAll(f), fc);
  EXPECT_EQ(GetAll(g), gc);
  EXPECT_EQ(Map(f).size(), fm.size());
  EXPECT_EQ(Map(g).size(), gm.size());
  EXPECT_EQ(fs_->StatFs()->free_blocks, free);
}

// ---- Randomized model test.

struct ModelFile {
  std::string bytes;  // the file; bytes past size do not exist
};

class FileIoModelTest : public FileIoTest, public ::testing::WithParamInterface<Durability> {};

TEST_P(FileIoModelTest, RandomOperationsMatchAByteModel) {
  const uint64_t seed = base::SeedFromEnv(0xda7a + static_cast<int>(GetParam()));
  std::cout << "seed " << seed << " (replay with DAXFS_SEED=" << seed << ")\n";
  base::Random rnd(seed);
  MountOptions options{.durability = GetParam(), .group_commit_ops = 7};
  Start(64 << 20, options);
  constexpr int kFiles = 3;
  Ino ino[kFiles];
  ModelFile model[kFiles];
  for (int i = 0; i < kFiles; ++i) ino[i] = NewFile("f" + std::to_string(i));
  auto random_offset = [&](uint64_t size) -> uint64_t {
    switch (rnd.Uniform(4)) {
      case 0:
        return rnd.Uniform(size + 1);
      case 1:
        return rnd.Uniform(16) * kB + (rnd.OneIn(2) ? 0 : rnd.Uniform(kB));
      case 2:
        return size;
      default:
        return rnd.Uniform(256 * kB);
    }
  };
  for (int step = 0; step < 3000; ++step) {
    SCOPED_TRACE("step " + std::to_string(step) + " seed " + std::to_string(seed));
    int i = static_cast<int>(rnd.Uniform(kFiles));
    std::string& m = model[i].bytes;
    uint64_t op = rnd.Uniform(100);
    if (op < 45) {
      uint64_t offset = random_offset(m.size());
      uint64_t length = 1 + rnd.Uniform(rnd.OneIn(5) ? 5 * kB : 300);
      std::string data = Pattern(length, rnd.Next());
      Put(ino[i], offset, data);
      if (m.size() < offset + length) m.resize(offset + length, '\0');
      m.replace(offset, length, data);
    } else if (op < 55) {
      uint64_t size = rnd.OneIn(3) ? rnd.Uniform(m.size() + 1) : random_offset(m.size());
      ASSERT_TRUE(fs_->Truncate(ino[i], size).ok());
      m.resize(size, '\0');
    } else if (op < 70) {
      uint64_t offset = random_offset(m.size());
      uint64_t length = 1 + rnd.Uniform(6 * kB);
      uint32_t modes[] = {0, kFallocKeepSize, kFallocPunchHole | kFallocKeepSize, kFallocZeroRange,
                          kFallocZeroRange | kFallocKeepSize};
      uint32_t mode = modes[rnd.Uniform(5)];
      Status s = fs_->Fallocate(ino[i], mode, offset, length);
      ASSERT_TRUE(s.ok()) << s.ToString();
      uint64_t end = offset + length;
      if (mode & (kFallocPunchHole | kFallocZeroRange)) {
        for (uint64_t b = offset; b < std::min<uint64_t>(end, m.size()); ++b) m[b] = '\0';
      }
      if (!(mode & kFallocKeepSize) && m.size() < end) m.resize(end, '\0');
    } else if (op < 95) {
      uint64_t offset = random_offset(m.size());
      uint64_t length = rnd.Uniform(3 * kB);
      std::string want = offset < m.size() ? m.substr(offset, length) : "";
      ASSERT_EQ(Get(ino[i], offset, length), want) << "offset " << offset << " length " << length;
    } else if (op < 97) {
      Remount(options);
    } else {
      ExpectConsistent();
    }
    ASSERT_EQ(Size(ino[i]), m.size());
    if (HasFailure()) return;
  }
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_EQ(GetAll(ino[i]), model[i].bytes) << "file " << i;
    // SEEK_DATA/SEEK_HOLE never skip bytes that are not zero.
    const std::string& m = model[i].bytes;
    uint64_t pos = 0;
    while (pos < m.size()) {
      Result<uint64_t> data = fs_->SeekData(ino[i], pos);
      uint64_t next = data.ok() ? *data : m.size();
      ASSERT_TRUE(data.ok() || data.status().code() == ENXIO);
      for (uint64_t b = pos; b < next; ++b)
        ASSERT_EQ(m[b], '\0') << "SEEK_DATA skipped data at " << b;
      if (next >= m.size()) break;
      Result<uint64_t> hole = fs_->SeekHole(ino[i], next);
      ASSERT_TRUE(hole.ok());
      ASSERT_GT(*hole, next);
      pos = *hole;
    }
  }
  Remount(options);
  for (int i = 0; i < kFiles; ++i) ASSERT_EQ(GetAll(ino[i]), model[i].bytes) << "file " << i;
}

INSTANTIATE_TEST_SUITE_P(Durability, FileIoModelTest,
                         ::testing::Values(Durability::kOnReturn, Durability::kGroupCommit),
                         [](const auto& info) {
                           return info.param == Durability::kOnReturn ? "OnReturn" : "GroupCommit";
                         });


// ReadPieces hands out the same bytes as Read (device memory for data, zeros for holes and
// unwritten extents), clipped to the size, and refuses an oversized length.
TEST_F(FileIoTest, ReadPiecesGivesTheBytesOfRead) {
  Start(16 << 20, {});
  Ino f = NewFile("f");
  Put(f, 0, std::string(3 * kB + 100, 'a'));
  Put(f, 40 * kB + 7, std::string(2 * kB, 'b'));  // a hole before it
  ASSERT_TRUE(fs_->Fallocate(f, 0, 60 * kB, 8 * kB).ok());  // unwritten, size grows
  Put(f, 80 * kB, std::string(kB, 'c'));
  std::string all = GetAll(f);
  for (auto [offset, length] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, all.size()}, {5, 50 * kB}, {3 * kB, 70 * kB}, {all.size() - 10, 100}, {all.size(), 10}}) {
    std::string got;
    auto n = fs_->ReadPieces(f, offset, length, [&](std::span<const iovec> pieces) {
      for (const iovec& p : pieces) got.append(static_cast<const char*>(p.iov_base), p.iov_len);
      return Status::Ok();
    });
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    uint64_t want = offset >= all.size() ? 0 : std::min<uint64_t>(length, all.size() - offset);
    EXPECT_EQ(*n, want);
    EXPECT_EQ(got, all.substr(std::min<uint64_t>(offset, all.size()), want)) << offset;
  }
  auto refused = fs_->ReadPieces(f, 0, Filesystem::kMaxReadPieces + 1,
                                 [](std::span<const iovec>) { return Status::Ok(); });
  EXPECT_EQ(refused.status().code(), EINVAL);
  auto consumer_error = fs_->ReadPieces(f, 0, 10, [](std::span<const iovec>) {
    return Status::IoError("the consumer failed");
  });
  EXPECT_FALSE(consumer_error.ok());
}

}  // namespace
}  // namespace daxfs
