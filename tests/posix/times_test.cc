// Timestamps as POSIX and Linux keep them: ctime on every inode change, mtime and ctime on data
// changes, directory times on entry changes, utimensat (UTIME_NOW / UTIME_OMIT, nanoseconds) and
// atime on read (tolerant of noatime; relatime and strictatime both update an old atime).
#include <dirent.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/xattr.h>

#include "posix_env.h"

namespace posix {
namespace {

enum Change { kNone = 0, kCtime = 1, kMtime = 2 };

timespec Latest(const struct stat& st) {
  timespec t = st.st_ctim;
  if (t < st.st_mtim) t = st.st_mtim;
  if (t < st.st_atim) t = st.st_atim;
  return t;
}

// Runs `op` once the clock has passed every timestamp of `path`, then checks that exactly the
// times in `changes` (of ctime and mtime) moved forward, to a time within the call. The inode is
// found at `path_after` afterwards (when `op` renames it).
void ExpectTimes(const std::string& path, const std::string& path_after, int changes,
                 const std::string& what, const std::function<void()>& op) {
  SCOPED_TRACE(what + " on " + path);
  struct stat before = Lstat(path);
  WaitForClockPast(Latest(before));
  const timespec start = ClockNow(CLOCK_REALTIME_COARSE);
  op();
  struct stat after = Lstat(path_after);
  const timespec end = ClockNow(CLOCK_REALTIME);
  auto check = [&](const char* name, const timespec& b, const timespec& a, bool changed) {
    if (changed) {
      EXPECT_TRUE(start <= a && a <= end)
          << name << " " << ToString(a) << " not within the call [" << ToString(start) << ", "
          << ToString(end) << "] (was " << ToString(b) << ")";
    } else {
      EXPECT_TRUE(a == b) << name << " changed from " << ToString(b) << " to " << ToString(a);
    }
  };
  check("ctime", before.st_ctim, after.st_ctim, changes & kCtime);
  check("mtime", before.st_mtim, after.st_mtim, changes & kMtime);
}
void ExpectTimes(const std::string& path, int changes, const std::string& what,
                 const std::function<void()>& op) {
  ExpectTimes(path, path, changes, what, op);
}

using Timestamps = PosixTest;

TEST_F(Timestamps, NanosecondsPreserved) {
  MakeFile(P("f"), "x");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(symlink("f", P("l").c_str()));
  const timespec times[2] = {{1234567890, 123456789}, {1500000000, 987654321}};
  for (const char* name : {"f", "d"}) {
    ASSERT_SYS(utimensat(AT_FDCWD, P(name).c_str(), times, 0));
    struct stat st = Lstat(P(name));
    EXPECT_TRUE(st.st_atim == times[0]) << name << " atime " << ToString(st.st_atim);
    EXPECT_TRUE(st.st_mtim == times[1]) << name << " mtime " << ToString(st.st_mtim);
  }
  // A symlink's own times (AT_SYMLINK_NOFOLLOW) are not its target's.
  const timespec link_times[2] = {{1000000000, 1}, {1100000000, 999999999}};
  ASSERT_SYS(utimensat(AT_FDCWD, P("l").c_str(), link_times, AT_SYMLINK_NOFOLLOW));
  EXPECT_TRUE(Lstat(P("l")).st_mtim == link_times[1]);
  EXPECT_TRUE(Stat(P("f")).st_mtim == times[1]);
  // Through a descriptor, and past 2038.
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  const timespec later[2] = {{4102444800, 5}, {4102444801, 500000000}};
  ASSERT_SYS(futimens(fd.get(), later));
  struct stat st = Fstat(fd.get());
  EXPECT_TRUE(st.st_atim == later[0]) << ToString(st.st_atim);
  EXPECT_TRUE(st.st_mtim == later[1]) << ToString(st.st_mtim);
}

TEST_F(Timestamps, UtimeNowAndOmit) {
  MakeFile(P("f"), "x");
  const timespec old[2] = {{1000000000, 111}, {1000000001, 222}};
  ASSERT_SYS(utimensat(AT_FDCWD, P("f").c_str(), old, 0));
  // Both omitted: nothing changes, not even ctime.
  const timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  ExpectTimes(P("f"), kNone, "UTIME_OMIT twice",
              [&] { ASSERT_SYS(utimensat(AT_FDCWD, P("f").c_str(), omit, 0)); });
  EXPECT_TRUE(Lstat(P("f")).st_atim == old[0]);
  // atime now, mtime kept.
  const timespec atime_now[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  timespec start = ClockNow(CLOCK_REALTIME_COARSE);
  ExpectTimes(P("f"), kCtime, "atime UTIME_NOW",
              [&] { ASSERT_SYS(utimensat(AT_FDCWD, P("f").c_str(), atime_now, 0)); });
  struct stat st = Lstat(P("f"));
  EXPECT_TRUE(start <= st.st_atim) << ToString(st.st_atim);
  EXPECT_TRUE(st.st_mtim == old[1]);
  // mtime now, atime set explicitly.
  const timespec mixed[2] = {{1200000000, 333}, {0, UTIME_NOW}};
  ExpectTimes(P("f"), kCtime | kMtime, "mtime UTIME_NOW",
              [&] { ASSERT_SYS(utimensat(AT_FDCWD, P("f").c_str(), mixed, 0)); });
  EXPECT_TRUE(Lstat(P("f")).st_atim == mixed[0]);
  // NULL: both now.
  ExpectTimes(P("f"), kCtime | kMtime, "utimensat(NULL)",
              [&] { ASSERT_SYS(utimensat(AT_FDCWD, P("f").c_str(), nullptr, 0)); });
  st = Lstat(P("f"));
  EXPECT_TRUE(st.st_atim == st.st_mtim) << ToString(st.st_atim) << " vs " << ToString(st.st_mtim);
}

TEST_F(Timestamps, CtimeOnEveryInodeChange) {
  MakeFile(P("f"), "data");
  const std::string f = P("f");
  ExpectTimes(f, kCtime, "chmod", [&] { ASSERT_SYS(chmod(f.c_str(), 0640)); });
  ExpectTimes(f, kCtime, "chown to the same owner",
              [&] { ASSERT_SYS(chown(f.c_str(), geteuid(), getegid())); });
  ExpectTimes(f, kCtime, "link", [&] { ASSERT_SYS(link(f.c_str(), P("g").c_str())); });
  ExpectTimes(f, kCtime, "unlink of the other name", [&] { ASSERT_SYS(unlink(P("g").c_str())); });
  {
    // An explicit mtime is taken as given; ctime becomes now.
    WaitPastTimes(f);
    const timespec start = ClockNow(CLOCK_REALTIME_COARSE);
    const timespec t[2] = {{0, UTIME_OMIT}, {1300000000, 0}};
    ASSERT_SYS(utimensat(AT_FDCWD, f.c_str(), t, 0));
    struct stat st = Lstat(f);
    EXPECT_TRUE(st.st_mtim == t[1]) << ToString(st.st_mtim);
    EXPECT_TRUE(start <= st.st_ctim) << ToString(st.st_ctim);
  }
  const std::string h = P("h");
  ExpectTimes(f, h, kCtime, "rename", [&] { ASSERT_SYS(rename(f.c_str(), h.c_str())); });
  if (GetProbes().user_xattr.ok) {
    ExpectTimes(h, kCtime, "setxattr",
                [&] { ASSERT_SYS(setxattr(h.c_str(), "user.t", "1", 1, 0)); });
    ExpectTimes(h, kCtime, "removexattr", [&] { ASSERT_SYS(removexattr(h.c_str(), "user.t")); });
  }
  // Looking, opening, reading and syncing change neither ctime nor mtime.
  ExpectTimes(h, kNone, "stat, open, read, fsync, close", [&] {
    struct stat st;
    ASSERT_SYS(stat(h.c_str(), &st));
    ASSERT_OPEN(fd, open(h.c_str(), O_RDONLY));
    char buf[8];
    ASSERT_SYS(read(fd.get(), buf, sizeof buf));
    ASSERT_SYS(fsync(fd.get()));
  });
  ASSERT_SYS(symlink("h", P("l").c_str()));
  ExpectTimes(P("l"), kNone, "readlink", [&] {
    char buf[8];
    ASSERT_SYS(readlink(P("l").c_str(), buf, sizeof buf));
  });
}

TEST_F(Timestamps, DataChangesUpdateMtimeAndCtime) {
  MakeFile(P("f"), Pattern(64 * 1024, 1));
  const std::string f = P("f");
  ASSERT_OPEN(fd, open(f.c_str(), O_RDWR));
  ExpectTimes(f, kCtime | kMtime, "pwrite", [&] { WriteAt(fd.get(), "x", 10); });
  ExpectTimes(f, kCtime | kMtime, "write past the end", [&] { WriteAt(fd.get(), "y", 100000); });
  ExpectTimes(f, kCtime | kMtime, "ftruncate down",
              [&] { ASSERT_SYS(ftruncate(fd.get(), 50000)); });
  ExpectTimes(f, kCtime | kMtime, "truncate up", [&] { ASSERT_SYS(truncate(f.c_str(), 80000)); });
  ExpectTimes(f, kCtime | kMtime, "punch hole", [&] {
    ASSERT_SYS(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8192));
  });
  MakeFile(P("src"), Pattern(8192, 2));
  ExpectTimes(f, kCtime | kMtime, "copy_file_range into it", [&] {
    ASSERT_OPEN(src, open(P("src").c_str(), O_RDONLY));
    loff_t in = 0, out = 4096;
    ASSERT_EQ(copy_file_range(src.get(), &in, fd.get(), &out, 8192, 0), 8192) << ErrnoName(errno);
  });
  ExpectTimes(P("src"), kNone, "being the source of copy_file_range", [&] {
    ASSERT_OPEN(src, open(P("src").c_str(), O_RDONLY));
    loff_t in = 0, out = 20000;
    ASSERT_EQ(copy_file_range(src.get(), &in, fd.get(), &out, 100, 0), 100) << ErrnoName(errno);
  });
  ExpectTimes(f, kCtime | kMtime, "store through a shared mapping, msync", [&] {
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(m, MAP_FAILED) << ErrnoName(errno);
    static_cast<char*>(m)[5] = 'm';
    ASSERT_SYS(msync(m, 4096, MS_SYNC));
    munmap(m, 4096);
  });
  ExpectTimes(f, kCtime | kMtime, "open with O_TRUNC",
              [&] { ASSERT_OPEN(t, open(f.c_str(), O_WRONLY | O_TRUNC)); });
}

TEST_F(Timestamps, DirectoryTimesOnEntryChanges) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(mkdir(P("e").c_str(), 0755));
  const std::string d = P("d"), e = P("e");
  const int both = kCtime | kMtime;
  ExpectTimes(d, both, "create", [&] { MakeFile(d + "/f", "f"); });
  ExpectTimes(d, both, "mkdir", [&] { ASSERT_SYS(mkdir((d + "/sub").c_str(), 0755)); });
  ExpectTimes(d, both, "symlink", [&] { ASSERT_SYS(symlink("f", (d + "/l").c_str())); });
  ExpectTimes(d, both, "link", [&] { ASSERT_SYS(link((d + "/f").c_str(), (d + "/g").c_str())); });
  ExpectTimes(d, both, "mknod", [&] { ASSERT_SYS(mknod((d + "/p").c_str(), S_IFREG | 0644, 0)); });
  ExpectTimes(d, both, "rename within",
              [&] { ASSERT_SYS(rename((d + "/g").c_str(), (d + "/g2").c_str())); });
  ExpectTimes(d, both, "unlink", [&] { ASSERT_SYS(unlink((d + "/g2").c_str())); });
  ExpectTimes(d, both, "rmdir", [&] { ASSERT_SYS(rmdir((d + "/sub").c_str())); });
  ExpectTimes(d, both, "rename out (source directory)",
              [&] { ASSERT_SYS(rename((d + "/p").c_str(), (e + "/p").c_str())); });
  ExpectTimes(e, both, "rename in (target directory)",
              [&] { ASSERT_SYS(rename((d + "/l").c_str(), (e + "/l").c_str())); });
  ExpectTimes(e, both, "rename over an entry",
              [&] { ASSERT_SYS(rename((e + "/p").c_str(), (e + "/l").c_str())); });
  // Changes inside a file are not changes of its directory.
  ExpectTimes(d, kNone, "write, chmod and truncate of a file in it", [&] {
    ASSERT_OPEN(fd, open((d + "/f").c_str(), O_RDWR));
    WriteAt(fd.get(), "more", 1);
    ASSERT_SYS(fchmod(fd.get(), 0600));
    ASSERT_SYS(ftruncate(fd.get(), 2));
  });
  ExpectTimes(d, kNone, "readdir and stat of entries", [&] {
    (void)ListDir(d);
    (void)Lstat(d + "/f");
  });
}

TEST_F(Timestamps, DirectoryTimesOnSpecialFiles) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  const std::string d = P("d");
  const int both = kCtime | kMtime;
  ExpectTimes(d, both, "mkfifo", [&] { ASSERT_SYS(mkfifo((d + "/p").c_str(), 0644)); });
  ExpectTimes(d + "/p", kCtime, "chmod of the FIFO",
              [&] { ASSERT_SYS(chmod((d + "/p").c_str(), 0600)); });
  ExpectTimes(d, both, "unlink of the FIFO", [&] { ASSERT_SYS(unlink((d + "/p").c_str())); });
}

TEST_F(Timestamps, AtimeOnRead) {
  MakeFile(P("f"), "some data");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  MakeFile(P("d/x"));
  // An old atime (older than mtime and a day): strictatime and relatime both update it on read.
  const timespec old = {978307200, 0};  // 2001-01-01
  const timespec set[2] = {old, {0, UTIME_NOW}};
  ASSERT_SYS(utimensat(AT_FDCWD, P("f").c_str(), set, 0));
  ASSERT_SYS(utimensat(AT_FDCWD, P("d").c_str(), set, 0));
  // Neither stat nor write touches atime.
  {
    ASSERT_OPEN(fd, open(P("f").c_str(), O_WRONLY));
    WriteAt(fd.get(), "S", 0);
  }
  EXPECT_TRUE(Lstat(P("f")).st_atim == old) << "write or stat changed atime";
  const timespec start = ClockNow(CLOCK_REALTIME_COARSE);
  {
    ASSERT_OPEN(fd, open(P("f").c_str(), O_RDONLY));
    char buf[4];
    ASSERT_EQ(read(fd.get(), buf, sizeof buf), 4);
  }
  (void)ListDir(P("d"));
  const timespec file_atime = Lstat(P("f")).st_atim, dir_atime = Lstat(P("d")).st_atim;
  if (!GetProbes().atime.ok) {
    EXPECT_TRUE(file_atime == old) << "noatime mount, atime " << ToString(file_atime);
  } else {
    EXPECT_TRUE(start <= file_atime)
        << "read did not update an old atime (relatime/strictatime do; mount noatime to say "
           "otherwise): atime "
        << ToString(file_atime);
  }
  if (!GetProbes().diratime.ok) {
    EXPECT_TRUE(dir_atime == old) << "nodiratime mount, atime " << ToString(dir_atime);
  } else {
    EXPECT_TRUE(start <= dir_atime)
        << "readdir did not update an old directory atime: " << ToString(dir_atime);
  }
}

}  // namespace
}  // namespace posix
