// File data: unlink while open (and space freed at the last close), sparse files and
// SEEK_DATA/SEEK_HOLE, truncate, fallocate modes, copy_file_range, mmap coherence with
// read/write, and fsync/fdatasync/syncfs.
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include "posix_env.h"

namespace posix {
namespace {

constexpr off_t kKiB = 1024, kMiB = 1024 * 1024;

bool AllZero(const std::string& s) { return s.find_first_not_of('\0') == std::string::npos; }

// Copies all `len` bytes with copy_file_range (it may copy less per call).
ssize_t CopyRange(int in, loff_t off_in, int out, loff_t off_out, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = copy_file_range(in, &off_in, out, &off_out, len - done, 0);
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// ---- unlink while open ---------------------------------------------------------------------

using UnlinkWhileOpen = PosixTest;

TEST_F(UnlinkWhileOpen, ReadWriteStatTruncate) {
  const std::string data = Pattern(64 * kKiB, 3);
  MakeFile(P("f"), data);
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  ASSERT_OPEN(ro, open(P("f").c_str(), O_RDONLY));
  const ino_t ino = Fstat(fd.get()).st_ino;
  ASSERT_SYS(unlink(P("f").c_str()));
  EXPECT_FALSE(Exists(P("f")));
  EXPECT_FAILS(ENOENT, open(P("f").c_str(), O_RDONLY));
  struct stat st = Fstat(fd.get());
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_ino, ino);
  EXPECT_EQ(st.st_size, 64 * kKiB);
  EXPECT_EQ(ReadAt(fd.get(), 64 * kKiB, 0), data);
  // Still writable, and every descriptor sees the same file.
  WriteAt(fd.get(), "appended after unlink", 64 * kKiB);
  EXPECT_EQ(Fstat(ro.get()).st_size, 64 * kKiB + 21);
  EXPECT_EQ(ReadAt(ro.get(), 21, 64 * kKiB), "appended after unlink");
  ASSERT_SYS(ftruncate(fd.get(), 1000));
  EXPECT_EQ(Fstat(ro.get()).st_size, 1000);
  EXPECT_EQ(ReadAt(ro.get(), 2000, 0), data.substr(0, 1000));
  ASSERT_SYS(fchmod(fd.get(), 0600));
  EXPECT_EQ(Fstat(ro.get()).st_mode & 07777, 0600u);
  EXPECT_SYS(fsync(fd.get()));
  // A new file may take the name; the open one is unaffected.
  MakeFile(P("f"), "new");
  EXPECT_NE(Stat(P("f")).st_ino, ino);
  EXPECT_EQ(ReadAt(fd.get(), 10, 0), data.substr(0, 10));
}

TEST_F(UnlinkWhileOpen, SpaceFreedAfterLastClose) {
  struct statvfs sv {};
  ASSERT_SYS(statvfs(dir().c_str(), &sv));
  const uint64_t size = 64 * kMiB;
  if (static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize < 4 * size) {
    if (Required("space")) FAIL() << "needs " << 4 * size / kMiB << " MiB free";
    GTEST_SKIP() << "needs " << 4 * size / kMiB << " MiB free";
  }
  const uint64_t before = FreeBytesSettled(dir());
  ASSERT_OPEN(fd, open(P("big").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  const std::string chunk = Pattern(kMiB, 9);
  for (uint64_t off = 0; off < size; off += kMiB) WriteAt(fd.get(), chunk, off);
  ASSERT_SYS(fsync(fd.get()));
  const uint64_t written = FreeBytes(dir());
  ASSERT_LT(written + size / 2, before)
      << "writing 64 MiB should use at least 32 MiB (statfs: " << before << " -> " << written
      << " bytes free; run on a filesystem nothing else is writing to)";
  ASSERT_SYS(unlink(P("big").c_str()));
  EXPECT_LT(FreeBytes(dir()) + size / 2, before) << "space came back while the file is open";
  EXPECT_EQ(ReadAt(fd.get(), kMiB, size - kMiB), chunk);
  fd.Reset();
  const uint64_t after = FreeBytesReaching(dir(), before - size / 4);
  EXPECT_GE(after + size / 4, before) << "space not freed after the last close: " << before
                                      << " -> " << written << " -> " << after << " bytes free";
}

// ---- sparse files and SEEK_DATA / SEEK_HOLE -------------------------------------------------

using Sparse = PosixTest;

TEST_F(Sparse, HolesReadAsZeros) {
  ASSERT_OPEN(fd, open(P("s").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  // The far block first, so no filesystem preallocates between the two.
  const std::string a = Pattern(4096, 1), b = Pattern(4096, 2);
  WriteAt(fd.get(), b, 4 * kMiB);
  WriteAt(fd.get(), a, 0);
  ASSERT_SYS(fsync(fd.get()));
  struct stat st = Fstat(fd.get());
  EXPECT_EQ(st.st_size, 4 * kMiB + 4096);
  EXPECT_LT(st.st_blocks * 512, kMiB) << "a sparse file allocates only what was written";
  EXPECT_EQ(ReadAt(fd.get(), 4096, 0), a);
  EXPECT_EQ(ReadAt(fd.get(), 4096, 4 * kMiB), b);
  std::string hole = ReadAt(fd.get(), 4 * kMiB - 4096, 4096);
  EXPECT_EQ(hole.size(), static_cast<size_t>(4 * kMiB - 4096));
  EXPECT_TRUE(AllZero(hole));
  // A read across the end of a hole into data.
  std::string across = ReadAt(fd.get(), 8192, 4 * kMiB - 4096);
  EXPECT_TRUE(AllZero(across.substr(0, 4096)));
  EXPECT_EQ(across.substr(4096), b);
}

TEST_F(Sparse, SeekAtAndPastEndOfFile) {
  ASSERT_OPEN(fd, open(P("s").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  // An empty file has neither data nor holes to find.
  EXPECT_FAILS(ENXIO, lseek(fd.get(), 0, SEEK_DATA));
  EXPECT_FAILS(ENXIO, lseek(fd.get(), 0, SEEK_HOLE));
  WriteAt(fd.get(), Pattern(10000, 4), 0);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), 0);
  EXPECT_EQ(lseek(fd.get(), 9999, SEEK_DATA), 9999);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_HOLE), 10000) << "the end of file is a hole";
  EXPECT_EQ(lseek(fd.get(), 5000, SEEK_HOLE), 10000);
  EXPECT_FAILS(ENXIO, lseek(fd.get(), 10000, SEEK_DATA));
  EXPECT_FAILS(ENXIO, lseek(fd.get(), 10000, SEEK_HOLE));
  EXPECT_FAILS(ENXIO, lseek(fd.get(), 10001, SEEK_DATA));
  EXPECT_FAILS(ENXIO, lseek(fd.get(), 1 << 30, SEEK_HOLE));
  // SEEK_END is plain arithmetic, past the end too.
  EXPECT_EQ(lseek(fd.get(), 100, SEEK_END), 10100);
}

TEST_F(Sparse, SeekHoleFindsHoles) {
  REQUIRE_FEATURE("holes", GetProbes().holes);
  ASSERT_OPEN(fd, open(P("s").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  WriteAt(fd.get(), Pattern(4096, 2), 4 * kMiB);
  WriteAt(fd.get(), Pattern(4096, 1), 0);
  const off_t size = 4 * kMiB + 4096;
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), 0);
  off_t hole = lseek(fd.get(), 0, SEEK_HOLE);
  EXPECT_GE(hole, 4096);
  EXPECT_LT(hole, 4 * kMiB);
  EXPECT_EQ(hole % 4096, 0);
  EXPECT_EQ(lseek(fd.get(), hole, SEEK_HOLE), hole);
  EXPECT_EQ(lseek(fd.get(), hole, SEEK_DATA), 4 * kMiB);
  EXPECT_EQ(lseek(fd.get(), 4 * kMiB, SEEK_HOLE), size);
  EXPECT_EQ(lseek(fd.get(), 4 * kMiB + 100, SEEK_DATA), 4 * kMiB + 100);
  // A file that starts with a hole.
  ASSERT_OPEN(g, open(P("g").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  ASSERT_SYS(ftruncate(g.get(), 8 * kMiB));
  EXPECT_EQ(lseek(g.get(), 0, SEEK_HOLE), 0);
  EXPECT_FAILS(ENXIO, lseek(g.get(), 0, SEEK_DATA)) << "only a hole up to the end";
  WriteAt(g.get(), Pattern(4096, 5), 2 * kMiB);
  EXPECT_EQ(lseek(g.get(), 0, SEEK_DATA), 2 * kMiB);
  EXPECT_EQ(lseek(g.get(), 2 * kMiB, SEEK_HOLE), 2 * kMiB + 4096);
  EXPECT_EQ(lseek(g.get(), 0, SEEK_CUR), 2 * kMiB + 4096) << "lseek moves the file position";
}

// ---- truncate ------------------------------------------------------------------------------

using Truncate = PosixTest;

TEST_F(Truncate, DownThenUpReadsZeros) {
  const std::string data = Pattern(10000, 6);
  MakeFile(P("f"), data);
  ASSERT_SYS(truncate(P("f").c_str(), 5000));
  EXPECT_EQ(Stat(P("f")).st_size, 5000);
  EXPECT_EQ(ReadFile(P("f")), data.substr(0, 5000));
  ASSERT_SYS(truncate(P("f").c_str(), 12000));
  std::string now = ReadFile(P("f"));
  ASSERT_EQ(now.size(), 12000u);
  EXPECT_EQ(now.substr(0, 5000), data.substr(0, 5000));
  EXPECT_TRUE(AllZero(now.substr(5000))) << "old bytes came back after truncate up";
  // Within one block and across many.
  ASSERT_OPEN(fd, open(P("g").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  WriteAt(fd.get(), Pattern(3 * kMiB, 7), 0);
  ASSERT_SYS(fsync(fd.get()));
  ASSERT_SYS(ftruncate(fd.get(), 4097));
  ASSERT_SYS(ftruncate(fd.get(), 3 * kMiB));
  std::string g = ReadAt(fd.get(), 3 * kMiB, 0);
  EXPECT_EQ(g.substr(0, 4097), Pattern(3 * kMiB, 7).substr(0, 4097));
  EXPECT_TRUE(AllZero(g.substr(4097)));
}

TEST_F(Truncate, ToZeroAndFarUp) {
  MakeFile(P("f"), Pattern(256 * kKiB, 8));
  ASSERT_SYS(truncate(P("f").c_str(), 0));
  struct stat st = Stat(P("f"));
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_blocks, 0) << "truncate to 0 frees every block";
  ASSERT_SYS(truncate(P("f").c_str(), 1LL << 30));
  st = Stat(P("f"));
  EXPECT_EQ(st.st_size, 1LL << 30);
  EXPECT_LT(st.st_blocks * 512, kMiB) << "truncate up allocates nothing";
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDONLY));
  EXPECT_TRUE(AllZero(ReadAt(fd.get(), 4096, (1LL << 30) - 4096)));
  EXPECT_EQ(ReadAt(fd.get(), 10, 1LL << 30), "");
  // The same size again changes nothing.
  ASSERT_SYS(truncate(P("f").c_str(), 1LL << 30));
  EXPECT_EQ(Stat(P("f")).st_size, 1LL << 30);
}

TEST_F(Truncate, MappedTailIsZeroed) {
  MakeFile(P("f"), Pattern(8192, 9));
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  void* m = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(m, MAP_FAILED) << ErrnoName(errno);
  ASSERT_SYS(ftruncate(fd.get(), 5000));
  // The rest of the last page reads as zeros through the mapping.
  const char* p = static_cast<const char*>(m);
  EXPECT_TRUE(AllZero(std::string(p + 5000, 8192 - 5000)));
  munmap(m, 8192);
  ASSERT_SYS(ftruncate(fd.get(), 8192));
  EXPECT_TRUE(AllZero(ReadAt(fd.get(), 8192 - 5000, 5000)));
}

// ---- fallocate -----------------------------------------------------------------------------

using Fallocate = PosixTest;

TEST_F(Fallocate, PlainAllocatesZeros) {
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  ASSERT_SYS(fallocate(fd.get(), 0, 0, kMiB));
  struct stat st = Fstat(fd.get());
  EXPECT_EQ(st.st_size, kMiB);
  EXPECT_GE(st.st_blocks * 512, kMiB);
  EXPECT_TRUE(AllZero(ReadAt(fd.get(), kMiB, 0)));
  WriteAt(fd.get(), "inside", 300000);
  EXPECT_EQ(ReadAt(fd.get(), 6, 300000), "inside");
  EXPECT_TRUE(AllZero(ReadAt(fd.get(), 300000, 0)));
  // Past the end, with a gap: the size grows to the end of the range.
  ASSERT_SYS(fallocate(fd.get(), 0, 2 * kMiB, kMiB));
  EXPECT_EQ(Fstat(fd.get()).st_size, 3 * kMiB);
  EXPECT_TRUE(AllZero(ReadAt(fd.get(), 2 * kMiB, kMiB)));
  // Allocating what is already there changes nothing.
  ASSERT_SYS(fallocate(fd.get(), 0, 0, 4096));
  EXPECT_EQ(ReadAt(fd.get(), 6, 300000), "inside");
  EXPECT_EQ(Fstat(fd.get()).st_size, 3 * kMiB);
}

TEST_F(Fallocate, KeepSize) {
  MakeFile(P("f"), "hello");
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  const blkcnt_t blocks = Fstat(fd.get()).st_blocks;
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 0, kMiB));
  struct stat st = Fstat(fd.get());
  EXPECT_EQ(st.st_size, 5);
  EXPECT_GE(st.st_blocks * 512, kMiB);
  EXPECT_GT(st.st_blocks, blocks);
  EXPECT_EQ(ReadAt(fd.get(), 100, 0), "hello") << "nothing past the size is readable";
  ASSERT_SYS(ftruncate(fd.get(), 64 * kKiB));
  std::string all = ReadAt(fd.get(), 64 * kKiB, 0);
  EXPECT_EQ(all.substr(0, 5), "hello");
  EXPECT_TRUE(AllZero(all.substr(5)));
  // Writing into the preallocated range beyond the size.
  WriteAt(fd.get(), "far", 512 * kKiB);
  EXPECT_EQ(Fstat(fd.get()).st_size, 512 * kKiB + 3);
  EXPECT_TRUE(AllZero(ReadAt(fd.get(), 512 * kKiB - 64 * kKiB, 64 * kKiB)));
}

TEST_F(Fallocate, PunchHole) {
  const std::string data = Pattern(256 * kKiB, 10);
  MakeFile(P("f"), data);
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  ASSERT_SYS(fsync(fd.get()));
  const blkcnt_t blocks = Fstat(fd.get()).st_blocks;
  EXPECT_FAILS(EOPNOTSUPP, fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE, 64 * kKiB, 64 * kKiB))
      << "a punch must keep the size";
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 * kKiB, 64 * kKiB));
  struct stat st = Fstat(fd.get());
  EXPECT_EQ(st.st_size, 256 * kKiB);
  EXPECT_LE(st.st_blocks, blocks - 64 * kKiB / 512) << "the punched blocks are freed";
  std::string now = ReadAt(fd.get(), 256 * kKiB, 0);
  EXPECT_EQ(now.substr(0, 64 * kKiB), data.substr(0, 64 * kKiB));
  EXPECT_TRUE(AllZero(now.substr(64 * kKiB, 64 * kKiB)));
  EXPECT_EQ(now.substr(128 * kKiB), data.substr(128 * kKiB));
  if (GetProbes().holes.ok) {
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_HOLE), 64 * kKiB);
    EXPECT_EQ(lseek(fd.get(), 64 * kKiB, SEEK_DATA), 128 * kKiB);
  }
  // Unaligned: partial blocks are zeroed, the rest kept.
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 5000));
  now = ReadAt(fd.get(), 256 * kKiB, 0);
  EXPECT_EQ(now.substr(0, 1000), data.substr(0, 1000));
  EXPECT_TRUE(AllZero(now.substr(1000, 5000)));
  EXPECT_EQ(now.substr(6000, 64 * kKiB - 6000), data.substr(6000, 64 * kKiB - 6000));
  // Past the end: nothing changes, the size stays.
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kMiB, kMiB));
  EXPECT_EQ(Fstat(fd.get()).st_size, 256 * kKiB);
}

TEST_F(Fallocate, ZeroRange) {
  const std::string data = Pattern(256 * kKiB, 11);
  MakeFile(P("f"), data);
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  errno = 0;
  if (fallocate(fd.get(), FALLOC_FL_ZERO_RANGE, 10000, 60000) != 0) {
    int err = errno;
    ASSERT_EQ(err, EOPNOTSUPP) << "FALLOC_FL_ZERO_RANGE failed: " << ErrnoName(err);
    EXPECT_EQ(ReadAt(fd.get(), 256 * kKiB, 0), data) << "a refused ZERO_RANGE changed the file";
    EXPECT_EQ(Fstat(fd.get()).st_size, 256 * kKiB);
    if (Required("zero_range")) FAIL() << "required feature zero_range missing: EOPNOTSUPP";
    GTEST_SKIP() << GetProbes().fs_name << " has no FALLOC_FL_ZERO_RANGE (EOPNOTSUPP; the file "
                 << "was checked unchanged)";
  }
  std::string now = ReadAt(fd.get(), 256 * kKiB, 0);
  EXPECT_EQ(Fstat(fd.get()).st_size, 256 * kKiB);
  EXPECT_EQ(now.substr(0, 10000), data.substr(0, 10000));
  EXPECT_TRUE(AllZero(now.substr(10000, 60000)));
  EXPECT_EQ(now.substr(70000), data.substr(70000));
  // Past the end: extends the file, unless KEEP_SIZE.
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 256 * kKiB, kMiB));
  EXPECT_EQ(Fstat(fd.get()).st_size, 256 * kKiB);
  ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_ZERO_RANGE, 200 * kKiB, 100 * kKiB));
  EXPECT_EQ(Fstat(fd.get()).st_size, 300 * kKiB);
  now = ReadAt(fd.get(), 300 * kKiB, 0);
  EXPECT_EQ(now.substr(70000, 200 * kKiB - 70000), data.substr(70000, 200 * kKiB - 70000));
  EXPECT_TRUE(AllZero(now.substr(200 * kKiB)));
}

// ---- copy_file_range -----------------------------------------------------------------------

using CopyFileRange = PosixTest;

TEST_F(CopyFileRange, AlignedAndUnaligned) {
  const std::string src_data = Pattern(kMiB, 12);
  MakeFile(P("src"), src_data);
  ASSERT_OPEN(src, open(P("src").c_str(), O_RDWR));
  ASSERT_OPEN(dst, open(P("dst").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  // Block-aligned: a filesystem with reflink may share the blocks.
  ASSERT_EQ(CopyRange(src.get(), 64 * kKiB, dst.get(), 128 * kKiB, 256 * kKiB), 256 * kKiB)
      << ErrnoName(errno);
  EXPECT_EQ(Fstat(dst.get()).st_size, 384 * kKiB);
  std::string d = ReadAt(dst.get(), kMiB, 0);
  EXPECT_TRUE(AllZero(d.substr(0, 128 * kKiB)));
  EXPECT_EQ(d.substr(128 * kKiB), src_data.substr(64 * kKiB, 256 * kKiB));
  // Unaligned, past the destination's end.
  ASSERT_EQ(CopyRange(src.get(), 1000, dst.get(), 500000, 5000), 5000) << ErrnoName(errno);
  EXPECT_EQ(Fstat(dst.get()).st_size, 505000);
  d = ReadAt(dst.get(), kMiB, 0);
  EXPECT_TRUE(AllZero(d.substr(384 * kKiB, 500000 - 384 * kKiB)));
  EXPECT_EQ(d.substr(500000), src_data.substr(1000, 5000));
  // The copies are independent afterwards, both ways (copy-on-write if shared).
  WriteAt(src.get(), std::string(256 * kKiB, 'S'), 64 * kKiB);
  WriteAt(dst.get(), std::string(4096, 'D'), 128 * kKiB);
  d = ReadAt(dst.get(), kMiB, 0);
  EXPECT_EQ(d.substr(128 * kKiB, 4096), std::string(4096, 'D'));
  EXPECT_EQ(d.substr(132 * kKiB, 252 * kKiB), src_data.substr(68 * kKiB, 252 * kKiB));
  std::string s = ReadAt(src.get(), kMiB, 0);
  EXPECT_EQ(s.substr(64 * kKiB, 256 * kKiB), std::string(256 * kKiB, 'S'));
  EXPECT_EQ(s.substr(320 * kKiB), src_data.substr(320 * kKiB));
}

TEST_F(CopyFileRange, WithinOneFile) {
  const std::string data = Pattern(kMiB, 13);
  MakeFile(P("f"), data);
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  ASSERT_EQ(CopyRange(fd.get(), 0, fd.get(), 512 * kKiB, 64 * kKiB), 64 * kKiB) << ErrnoName(errno);
  ASSERT_EQ(CopyRange(fd.get(), 4096, fd.get(), 2 * kMiB, 4096), 4096) << ErrnoName(errno);
  ASSERT_EQ(CopyRange(fd.get(), 333, fd.get(), 700001, 777), 777) << ErrnoName(errno);
  std::string now = ReadAt(fd.get(), 3 * kMiB, 0);
  ASSERT_EQ(now.size(), static_cast<size_t>(2 * kMiB + 4096));
  std::string expect = data;
  expect.replace(512 * kKiB, 64 * kKiB, data.substr(0, 64 * kKiB));
  expect.replace(700001, 777, data.substr(333, 777));
  expect.resize(2 * kMiB, '\0');
  expect += data.substr(4096, 4096);
  EXPECT_TRUE(now == expect) << "content differs after copies within the file";
}

TEST_F(CopyFileRange, AtAndPastEndOfFile) {
  MakeFile(P("src"), Pattern(10000, 14));
  ASSERT_OPEN(src, open(P("src").c_str(), O_RDONLY));
  ASSERT_OPEN(dst, open(P("dst").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  loff_t in = 10000, out = 0;
  EXPECT_EQ(copy_file_range(src.get(), &in, dst.get(), &out, 4096, 0), 0) << "at the end: 0";
  in = 20000;
  EXPECT_EQ(copy_file_range(src.get(), &in, dst.get(), &out, 4096, 0), 0) << "past the end: 0";
  EXPECT_EQ(Fstat(dst.get()).st_size, 0);
  in = 9900;
  out = 0;
  EXPECT_EQ(copy_file_range(src.get(), &in, dst.get(), &out, 4096, 0), 100) << "up to the end";
  EXPECT_EQ(in, 10000);
  EXPECT_EQ(out, 100);
  EXPECT_EQ(ReadAt(dst.get(), 200, 0), Pattern(10000, 14).substr(9900));
  in = 0;
  EXPECT_EQ(copy_file_range(src.get(), &in, dst.get(), &out, 0, 0), 0);
  // Without offsets, the file positions are used and advanced.
  ASSERT_EQ(lseek(src.get(), 100, SEEK_SET), 100);
  ASSERT_EQ(lseek(dst.get(), 10, SEEK_SET), 10);
  EXPECT_EQ(copy_file_range(src.get(), nullptr, dst.get(), nullptr, 50, 0), 50);
  EXPECT_EQ(lseek(src.get(), 0, SEEK_CUR), 150);
  EXPECT_EQ(lseek(dst.get(), 0, SEEK_CUR), 60);
  EXPECT_EQ(ReadAt(dst.get(), 50, 10), Pattern(10000, 14).substr(100, 50));
}

// ---- mmap ----------------------------------------------------------------------------------

using Mmap = PosixTest;

TEST_F(Mmap, SharedMappingCoherentWithReadWrite) {
  const std::string data = Pattern(64 * kKiB, 15);
  MakeFile(P("f"), data);
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  ASSERT_OPEN(other, open(P("f").c_str(), O_RDWR));
  void* m = mmap(nullptr, 64 * kKiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(m, MAP_FAILED) << ErrnoName(errno);
  char* p = static_cast<char*>(m);
  // A store is seen by read(2), through any descriptor, without msync.
  std::memcpy(p + 100, "stored through the mapping", 26);
  EXPECT_EQ(ReadAt(other.get(), 26, 100), "stored through the mapping");
  // A write(2) is seen by a load.
  WriteAt(other.get(), "written with pwrite", 40000);
  EXPECT_EQ(std::string(p + 40000, 19), "written with pwrite");
  EXPECT_EQ(std::string(p + 50000, 100), data.substr(50000, 100));
  EXPECT_SYS(msync(m, 64 * kKiB, MS_SYNC));
  ASSERT_SYS(munmap(m, 64 * kKiB));
  fd.Reset();
  other.Reset();
  std::string now = ReadFile(P("f"));
  EXPECT_EQ(now.substr(100, 26), "stored through the mapping");
  EXPECT_EQ(now.substr(40000, 19), "written with pwrite");
  EXPECT_EQ(now.size(), data.size());
}

TEST_F(Mmap, GrowUnderMappingAndPrivateCopies) {
  MakeFile(P("f"), Pattern(4096, 16));
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  void* m = mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(m, MAP_FAILED) << ErrnoName(errno);
  char* p = static_cast<char*>(m);
  ASSERT_SYS(ftruncate(fd.get(), 3 * 4096));
  EXPECT_TRUE(AllZero(std::string(p + 4096, 8192)));
  std::memcpy(p + 9000, "grown", 5);
  EXPECT_EQ(ReadAt(fd.get(), 5, 9000), "grown");
  // A private mapping's stores stay private.
  void* q = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  ASSERT_NE(q, MAP_FAILED) << ErrnoName(errno);
  std::memcpy(q, "private", 7);
  EXPECT_EQ(ReadAt(fd.get(), 7, 0), Pattern(4096, 16).substr(0, 7));
  EXPECT_EQ(std::string(p, 7), Pattern(4096, 16).substr(0, 7));
  munmap(q, 4096);
  munmap(m, 3 * 4096);
}

// ---- fsync ----------------------------------------------------------------------------

using Sync = PosixTest;

TEST_F(Sync, FsyncFdatasyncSyncfs) {
  MakeFile(P("f"), "data");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_OPEN(rw, open(P("f").c_str(), O_RDWR));
  ASSERT_OPEN(ro, open(P("f").c_str(), O_RDONLY));
  ASSERT_OPEN(d, open(P("d").c_str(), O_RDONLY | O_DIRECTORY));
  WriteAt(rw.get(), "more", 4);
  EXPECT_SYS(fsync(rw.get()));
  EXPECT_SYS(fdatasync(rw.get()));
  EXPECT_SYS(fsync(ro.get()));
  EXPECT_SYS(fdatasync(ro.get()));
  EXPECT_SYS(fsync(d.get()));
  EXPECT_SYS(fdatasync(d.get()));
  EXPECT_SYS(syncfs(rw.get()));
  EXPECT_SYS(syncfs(d.get()));
  EXPECT_EQ(ReadFile(P("f")), "datamore");
}

}  // namespace
}  // namespace posix
