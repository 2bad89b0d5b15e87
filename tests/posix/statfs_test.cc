// statfs/statvfs sanity and space accounting of the filesystem under test: sizes consistent
// with each other, fstatfs agreeing with statfs, written data consuming space. Plain syscalls.
#include <linux/falloc.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include "posix_env.h"

namespace posix {
namespace {

using StatfsTest = PosixTest;

TEST_F(StatfsTest, FieldsAreConsistent) {
  struct statfs sf {};
  ASSERT_SYS(statfs(dir().c_str(), &sf));
  EXPECT_GT(sf.f_bsize, 0);
  EXPECT_GT(sf.f_blocks, 0u);
  EXPECT_LE(sf.f_bfree, sf.f_blocks);
  EXPECT_LE(sf.f_bavail, sf.f_bfree);
  EXPECT_EQ(sf.f_namelen, 255);
  EXPECT_LE(sf.f_ffree, sf.f_files);
  struct statvfs sv {};
  ASSERT_SYS(statvfs(dir().c_str(), &sv));
  EXPECT_EQ(sv.f_blocks * sv.f_frsize, uint64_t(sf.f_blocks) * uint64_t(sf.f_frsize));
  EXPECT_EQ(sv.f_namemax, 255u);
  ASSERT_OPEN(fd, open(dir().c_str(), O_RDONLY | O_DIRECTORY));
  struct statfs fsf {};
  ASSERT_SYS(fstatfs(fd.get(), &fsf));
  EXPECT_EQ(fsf.f_type, sf.f_type);
  EXPECT_EQ(fsf.f_blocks, sf.f_blocks);
  EXPECT_EQ(fsf.f_bsize, sf.f_bsize);
}

TEST_F(StatfsTest, MissingPathIsENOENT) {
  struct statfs sf {};
  EXPECT_FAILS(ENOENT, statfs(P("missing").c_str(), &sf));
  MakeFile(P("file"));
  EXPECT_FAILS(ENOTDIR, statfs(P("file/x").c_str(), &sf));
  EXPECT_FAILS(EBADF, fstatfs(-1, &sf));
}

TEST_F(StatfsTest, WrittenDataConsumesSpaceAndRemovalFreesIt) {
  constexpr size_t kSize = 8 << 20;
  // Settled readings: earlier tests' unlinked files may still be freed in the background (XFS
  // inactivates inodes asynchronously), which would offset the space this file takes.
  const uint64_t before = FreeBytesSettled(dir());
  {
    ASSERT_OPEN(fd, open(P("big").c_str(), O_RDWR | O_CREAT, 0644));
    WriteAt(fd.get(), Pattern(kSize, 1), 0);
    ASSERT_SYS(fsync(fd.get()));
    EXPECT_GE(uint64_t(Fstat(fd.get()).st_blocks) * 512, kSize)
        << "an 8 MiB file written in full has fewer blocks (st_blocks)";
  }
  const uint64_t used = FreeBytesSettled(dir());
  EXPECT_LE(used + kSize * 3 / 4, before) << "writing 8 MiB took less than 6 MiB of free space";
  ASSERT_SYS(unlink(P("big").c_str()));
  // Freeing may finish in the background (XFS, a FUSE daemon hearing the last close late).
  EXPECT_GE(FreeBytesReaching(dir(), used + kSize * 3 / 4), used + kSize * 3 / 4)
      << "unlinking the 8 MiB file gave back less than 6 MiB";
}

TEST_F(StatfsTest, PunchedBlocksAreFreed) {
  constexpr size_t kSize = 16 << 20;
  ASSERT_OPEN(fd, open(P("big").c_str(), O_RDWR | O_CREAT, 0644));
  WriteAt(fd.get(), Pattern(kSize, 2), 0);
  ASSERT_SYS(fsync(fd.get()));
  uint64_t written = FreeBytesSettled(dir());
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kSize / 2));
  ASSERT_SYS(fsync(fd.get()));
  EXPECT_GE(FreeBytesReaching(dir(), written + kSize / 4), written + kSize / 4)
      << "punching 8 MiB gave back less than 4 MiB";
  EXPECT_EQ(Fstat(fd.get()).st_size, off_t(kSize));
}

}  // namespace
}  // namespace posix
