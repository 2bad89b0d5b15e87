// The error codes of every path and descriptor operation, as Linux gives them: ENOENT, EEXIST,
// ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG, ELOOP, EINVAL, EBADF, EXDEV, and that a failed call
// changes nothing. Plain syscalls against the directory under test.
#include <dirent.h>
#include <linux/falloc.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include <algorithm>

#include "posix_env.h"

namespace posix {
namespace {

class ErrorsTest : public PosixTest {
 protected:
  void SetUp() override {
    PosixTest::SetUp();
    if (HasFatalFailure()) return;
    MakeFile(P("file"), "data");
    ASSERT_SYS(mkdir(P("dir").c_str(), 0755));
    ASSERT_SYS(mkdir(P("full").c_str(), 0755));
    MakeFile(P("full/inside"));
    ASSERT_SYS(symlink("missing-target", P("dangling").c_str()));
    ASSERT_SYS(symlink("loop2", P("loop1").c_str()));
    ASSERT_SYS(symlink("loop1", P("loop2").c_str()));
  }
  std::string LongName() const { return std::string(256, 'n'); }
};

TEST_F(ErrorsTest, Open) {
  EXPECT_FAILS(ENOENT, open(P("missing").c_str(), O_RDONLY));
  EXPECT_FAILS(ENOENT, open(P("missing/x").c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(ENOENT, open(P("dangling").c_str(), O_RDONLY));
  EXPECT_FAILS(ENOENT, open("", O_RDONLY));
  EXPECT_FAILS(ENOTDIR, open(P("file/x").c_str(), O_RDONLY));
  EXPECT_FAILS(ENOTDIR, open(P("file/").c_str(), O_RDONLY));
  EXPECT_FAILS(ENOTDIR, open(P("file").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_WRONLY));
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_RDWR));
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_RDONLY | O_CREAT, 0644));
  EXPECT_FAILS(EISDIR, open(P("newfile/").c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(EEXIST, open(P("file").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  EXPECT_FAILS(EEXIST, open(P("dir").c_str(), O_RDONLY | O_CREAT | O_EXCL, 0644));
  EXPECT_FAILS(EEXIST, open(P("dangling").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  EXPECT_FAILS(ELOOP, open(P("loop1").c_str(), O_RDONLY));
  EXPECT_FAILS(ELOOP, open(P("loop1/x").c_str(), O_RDONLY));
  EXPECT_FAILS(ENAMETOOLONG, open(P(LongName()).c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(ENAMETOOLONG, open(P(LongName()).c_str(), O_RDONLY));
  EXPECT_FAILS(EINVAL, open(P("dir").c_str(), O_RDONLY | O_CREAT | O_DIRECTORY, 0644));
  EXPECT_FALSE(Exists(P("missing")));
  EXPECT_FALSE(Exists(P("newfile")));
  EXPECT_FALSE(Exists(P("missing-target")));
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, PathLongerThanPathMaxIsENAMETOOLONG) {
  // 2100 components of "./" make a path of 4200 bytes, each component short.
  std::string path = dir();
  while (path.size() <= PATH_MAX) path += "/.";
  path += "/file";
  EXPECT_FAILS(ENAMETOOLONG, open(path.c_str(), O_RDONLY));
  struct stat st;
  EXPECT_FAILS(ENAMETOOLONG, stat(path.c_str(), &st));
  EXPECT_FAILS(ENAMETOOLONG, mkdir((path + "x").c_str(), 0755));
}

TEST_F(ErrorsTest, ExactlyMaximalNameWorks) {
  std::string name(255, 'm');
  ASSERT_OPEN(fd, open(P(name).c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  EXPECT_TRUE(Exists(P(name)));
  std::vector<std::string> names = ListDir(dir());
  EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());
  ASSERT_SYS(unlink(P(name).c_str()));
}

TEST_F(ErrorsTest, StatAndAccess) {
  struct stat st;
  EXPECT_FAILS(ENOENT, stat(P("missing").c_str(), &st));
  EXPECT_FAILS(ENOENT, stat(P("dangling").c_str(), &st));
  EXPECT_SYS(lstat(P("dangling").c_str(), &st));
  EXPECT_FAILS(ENOTDIR, stat(P("file/x").c_str(), &st));
  EXPECT_FAILS(ELOOP, stat(P("loop1").c_str(), &st));
  EXPECT_FAILS(ENAMETOOLONG, stat(P(LongName()).c_str(), &st));
  EXPECT_FAILS(ENOENT, access(P("missing").c_str(), F_OK));
  EXPECT_FAILS(ENOTDIR, access(P("file/").c_str(), F_OK));
  EXPECT_FAILS(EINVAL, access(P("file").c_str(), 0x40));
  EXPECT_FAILS(EBADF, fstat(-1, &st));
  EXPECT_FAILS(EBADF, fstat(999999, &st));
}

TEST_F(ErrorsTest, Mkdir) {
  EXPECT_FAILS(EEXIST, mkdir(P("dir").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("file").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("dangling").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("dir/.").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("dir/..").c_str(), 0755));
  EXPECT_FAILS(ENOENT, mkdir(P("missing/sub").c_str(), 0755));
  EXPECT_FAILS(ENOTDIR, mkdir(P("file/sub").c_str(), 0755));
  EXPECT_FAILS(ENAMETOOLONG, mkdir(P(LongName()).c_str(), 0755));
  EXPECT_FAILS(ELOOP, mkdir(P("loop1/sub").c_str(), 0755));
  EXPECT_FALSE(Exists(P("missing-target")));
  EXPECT_TRUE(S_ISREG(Lstat(P("file")).st_mode));
}

TEST_F(ErrorsTest, Rmdir) {
  EXPECT_FAILS(ENOENT, rmdir(P("missing").c_str()));
  EXPECT_FAILS(ENOTDIR, rmdir(P("file").c_str()));
  EXPECT_FAILS(ENOTDIR, rmdir(P("dangling").c_str()));
  EXPECT_FAILS(ENOTDIR, rmdir(P("file/x").c_str()));
  EXPECT_FAILS(ENOTEMPTY, rmdir(P("full").c_str()));
  EXPECT_FAILS(EINVAL, rmdir(P("dir/.").c_str()));
  EXPECT_FAILS(ENOTEMPTY, rmdir(P("dir/..").c_str()));
  EXPECT_FAILS(ENAMETOOLONG, rmdir(P(LongName()).c_str()));
  ASSERT_SYS(symlink("dir", P("dirlink").c_str()));
  EXPECT_FAILS(ENOTDIR, rmdir(P("dirlink").c_str()));
  EXPECT_TRUE(S_ISDIR(Lstat(P("dir")).st_mode));
  EXPECT_TRUE(Exists(P("full/inside")));
  EXPECT_SYS(rmdir(P("dir").c_str()));
  EXPECT_FALSE(Exists(P("dir")));
}

TEST_F(ErrorsTest, Unlink) {
  EXPECT_FAILS(ENOENT, unlink(P("missing").c_str()));
  EXPECT_FAILS(EISDIR, unlink(P("dir").c_str()));
  EXPECT_FAILS(ENOTDIR, unlink(P("file/x").c_str()));
  EXPECT_FAILS(ENOTDIR, unlink(P("file/").c_str()));
  EXPECT_FAILS(ENAMETOOLONG, unlink(P(LongName()).c_str()));
  EXPECT_FAILS(EINVAL, unlinkat(AT_FDCWD, P("file").c_str(), 0x4000));
  EXPECT_FAILS(ENOTDIR, unlinkat(AT_FDCWD, P("file").c_str(), AT_REMOVEDIR));
  EXPECT_FAILS(EBADF, unlinkat(-1, "file", 0));
  EXPECT_EQ(ReadFile(P("file")), "data");
  // A dangling symlink is removed itself, never its (missing) target.
  EXPECT_SYS(unlink(P("dangling").c_str()));
  EXPECT_FALSE(Exists(P("dangling")));
}

TEST_F(ErrorsTest, Link) {
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("full/inside").c_str()));
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("dir").c_str()));
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("dangling").c_str()));
  EXPECT_FAILS(ENOENT, link(P("missing").c_str(), P("new").c_str()));
  EXPECT_FAILS(ENOENT, link(P("file").c_str(), P("missing/new").c_str()));
  EXPECT_FAILS(ENOTDIR, link(P("file").c_str(), P("file/new").c_str()));
  EXPECT_FAILS(EPERM, link(P("dir").c_str(), P("dirlink").c_str()));
  EXPECT_FAILS(ENAMETOOLONG, link(P("file").c_str(), P(LongName()).c_str()));
  EXPECT_FAILS(ENOENT, linkat(AT_FDCWD, P("dangling").c_str(), AT_FDCWD, P("new").c_str(),
                              AT_SYMLINK_FOLLOW));
  EXPECT_FALSE(Exists(P("new")));
  EXPECT_FALSE(Exists(P("dirlink")));
  EXPECT_EQ(Stat(P("file")).st_nlink, 1u);
  EXPECT_EQ(ReadFile(P("full/inside")), "");
}

TEST_F(ErrorsTest, SymlinkAndReadlink) {
  EXPECT_FAILS(EEXIST, symlink("x", P("file").c_str()));
  EXPECT_FAILS(EEXIST, symlink("x", P("dir").c_str()));
  EXPECT_FAILS(EEXIST, symlink("x", P("dangling").c_str()));
  EXPECT_FAILS(ENOENT, symlink("", P("empty").c_str()));
  EXPECT_FAILS(ENOENT, symlink("x", P("missing/link").c_str()));
  EXPECT_FAILS(ENOTDIR, symlink("x", P("file/link").c_str()));
  EXPECT_FAILS(ENAMETOOLONG, symlink("x", P(LongName()).c_str()));
  EXPECT_FAILS(ENAMETOOLONG, symlink(std::string(PATH_MAX, 't').c_str(), P("long").c_str()));
  char buf[64];
  EXPECT_FAILS(EINVAL, readlink(P("file").c_str(), buf, sizeof buf));
  EXPECT_FAILS(EINVAL, readlink(P("dir").c_str(), buf, sizeof buf));
  EXPECT_FAILS(ENOENT, readlink(P("missing").c_str(), buf, sizeof buf));
  EXPECT_FAILS(EINVAL, readlink(P("dangling").c_str(), buf, 0));
  EXPECT_FALSE(Exists(P("empty")));
  EXPECT_FALSE(Exists(P("long")));
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, Rename) {
  EXPECT_FAILS(ENOENT, rename(P("missing").c_str(), P("new").c_str()));
  EXPECT_FAILS(ENOENT, rename(P("file").c_str(), P("missing/new").c_str()));
  EXPECT_FAILS(ENOTDIR, rename(P("file").c_str(), P("file/new").c_str()));
  EXPECT_FAILS(ENOTDIR, rename(P("dir").c_str(), P("file").c_str()));
  EXPECT_FAILS(ENOTDIR, rename(P("file").c_str(), P("new/").c_str()));
  EXPECT_FAILS(EISDIR, rename(P("file").c_str(), P("dir").c_str()));
  EXPECT_FAILS_EITHER(ENOTEMPTY, EEXIST, rename(P("dir").c_str(), P("full").c_str()));
  EXPECT_FAILS(EINVAL, rename(P("dir").c_str(), P("dir/sub").c_str()));
  EXPECT_FAILS(ENAMETOOLONG, rename(P("file").c_str(), P(LongName()).c_str()));
  EXPECT_FAILS(EBUSY, rename(P("dir/.").c_str(), P("new").c_str()));
  EXPECT_FAILS(EBUSY, rename(P("dir/..").c_str(), P("new").c_str()));
  EXPECT_FAILS(EBUSY, rename(P("file").c_str(), P("dir/.").c_str()));
  EXPECT_FAILS(EINVAL, renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, P("new").c_str(),
                                 RENAME_EXCHANGE | RENAME_NOREPLACE));
  EXPECT_FAILS(EINVAL, renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, P("new").c_str(), 0x80));
  EXPECT_FAILS(EEXIST, renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, P("full/inside").c_str(),
                                 RENAME_NOREPLACE));
  EXPECT_FAILS(ENOENT,
               renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, P("new").c_str(), RENAME_EXCHANGE));
  EXPECT_FALSE(Exists(P("new")));
  EXPECT_EQ(ReadFile(P("file")), "data");
  EXPECT_TRUE(S_ISDIR(Lstat(P("dir")).st_mode));
  EXPECT_EQ(ListDir(P("full")), std::vector<std::string>{"inside"});
}

TEST_F(ErrorsTest, TruncateAndFtruncate) {
  EXPECT_FAILS(ENOENT, truncate(P("missing").c_str(), 0));
  EXPECT_FAILS(EISDIR, truncate(P("dir").c_str(), 0));
  EXPECT_FAILS(EINVAL, truncate(P("file").c_str(), -1));
  EXPECT_FAILS(ENOTDIR, truncate(P("file/x").c_str(), 0));
  ASSERT_OPEN(ro, open(P("file").c_str(), O_RDONLY));
  EXPECT_FAILS(EINVAL, ftruncate(ro.get(), 0));
  ASSERT_OPEN(rw, open(P("file").c_str(), O_RDWR));
  EXPECT_FAILS(EINVAL, ftruncate(rw.get(), -1));
  EXPECT_FAILS(EBADF, ftruncate(-1, 0));
  ASSERT_OPEN(d, open(P("dir").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(EINVAL, ftruncate(d.get(), 0));
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, ReadWriteAndSeekOnBadDescriptors) {
  char buf[8];
  ASSERT_OPEN(ro, open(P("file").c_str(), O_RDONLY));
  ASSERT_OPEN(wo, open(P("file").c_str(), O_WRONLY));
  EXPECT_FAILS(EBADF, write(ro.get(), "x", 1));
  EXPECT_FAILS(EBADF, pwrite(ro.get(), "x", 1, 0));
  EXPECT_FAILS(EBADF, read(wo.get(), buf, sizeof buf));
  EXPECT_FAILS(EBADF, pread(wo.get(), buf, sizeof buf, 0));
  EXPECT_FAILS(EINVAL, pread(ro.get(), buf, sizeof buf, -1));
  EXPECT_FAILS(EINVAL, pwrite(wo.get(), "x", 1, -1));
  EXPECT_FAILS(EBADF, read(-1, buf, sizeof buf));
  EXPECT_FAILS(EINVAL, lseek(ro.get(), 0, 42));
  EXPECT_FAILS(EINVAL, lseek(ro.get(), -10, SEEK_SET));
  EXPECT_FAILS(EINVAL, lseek(ro.get(), -10, SEEK_CUR));
  ASSERT_OPEN(d, open(P("dir").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(EISDIR, read(d.get(), buf, sizeof buf));
  ASSERT_OPEN(path, open(P("file").c_str(), O_PATH));
  EXPECT_FAILS(EBADF, read(path.get(), buf, sizeof buf));
  EXPECT_FAILS(EBADF, fchmod(path.get(), 0600));
  int closed = open(P("file").c_str(), O_RDONLY);
  ASSERT_GE(closed, 0);
  close(closed);
  EXPECT_FAILS(EBADF, read(closed, buf, sizeof buf));
  EXPECT_FAILS(EBADF, fsync(closed));
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, Fallocate) {
  ASSERT_OPEN(ro, open(P("file").c_str(), O_RDONLY));
  ASSERT_OPEN(rw, open(P("file").c_str(), O_RDWR));
  EXPECT_FAILS(EBADF, fallocate(ro.get(), 0, 0, 4096));
  EXPECT_FAILS(EINVAL, fallocate(rw.get(), 0, 0, 0));
  EXPECT_FAILS(EINVAL, fallocate(rw.get(), 0, -1, 4096));
  EXPECT_FAILS(EINVAL, fallocate(rw.get(), 0, 0, -4096));
  EXPECT_FAILS(EOPNOTSUPP, fallocate(rw.get(), FALLOC_FL_PUNCH_HOLE, 0, 4096));
  EXPECT_FAILS(
      EOPNOTSUPP,
      fallocate(rw.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0,
                4096));
  EXPECT_FAILS(EBADF, fallocate(-1, 0, 0, 4096));
  EXPECT_EQ(Fstat(rw.get()).st_size, 4);
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, CopyFileRange) {
  MakeFile(P("dst"));
  ASSERT_OPEN(in, open(P("file").c_str(), O_RDONLY));
  ASSERT_OPEN(out, open(P("dst").c_str(), O_WRONLY));
  ASSERT_OPEN(rw, open(P("file").c_str(), O_RDWR));
  ASSERT_OPEN(d, open(P("dir").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(EINVAL, copy_file_range(in.get(), nullptr, out.get(), nullptr, 4, 1));
  EXPECT_FAILS(EBADF, copy_file_range(out.get(), nullptr, in.get(), nullptr, 4, 0));
  EXPECT_FAILS(EBADF, copy_file_range(in.get(), nullptr, in.get(), nullptr, 4, 0));
  EXPECT_FAILS(EBADF, copy_file_range(-1, nullptr, out.get(), nullptr, 4, 0));
  EXPECT_FAILS(EISDIR, copy_file_range(d.get(), nullptr, out.get(), nullptr, 4, 0));
  loff_t a = 0, b = 2;
  EXPECT_FAILS(EINVAL, copy_file_range(rw.get(), &a, rw.get(), &b, 4, 0));  // overlapping
  loff_t neg = -1;  // EINVAL or EOVERFLOW, depending on the kernel
  EXPECT_EQ(copy_file_range(in.get(), &neg, out.get(), nullptr, 4, 0), -1);
  EXPECT_EQ(Stat(P("dst")).st_size, 0);
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, ChmodChownUtimens) {
  EXPECT_FAILS(ENOENT, chmod(P("missing").c_str(), 0600));
  EXPECT_FAILS(ENOENT, chmod(P("dangling").c_str(), 0600));
  EXPECT_FAILS(ENOTDIR, chmod(P("file/x").c_str(), 0600));
  EXPECT_FAILS(ENOENT, chown(P("missing").c_str(), 0, 0));
  EXPECT_FAILS(ENOENT, lchown(P("missing").c_str(), 0, 0));
  EXPECT_FAILS(ELOOP, chown(P("loop1").c_str(), 0, 0));
  EXPECT_FAILS(EBADF, fchmod(-1, 0600));
  EXPECT_FAILS(EBADF, fchown(-1, 0, 0));
  timespec bad[2] = {{0, 1000000000}, {0, 0}};
  EXPECT_FAILS(EINVAL, utimensat(AT_FDCWD, P("file").c_str(), bad, 0));
  timespec neg[2] = {{0, -2}, {0, 0}};
  EXPECT_FAILS(EINVAL, utimensat(AT_FDCWD, P("file").c_str(), neg, 0));
  EXPECT_FAILS(EINVAL, utimensat(AT_FDCWD, P("file").c_str(), nullptr, 0x8000));
  EXPECT_FAILS(ENOENT, utimensat(AT_FDCWD, P("missing").c_str(), nullptr, 0));
  EXPECT_FAILS(EINVAL, fchmodat(AT_FDCWD, P("file").c_str(), 0600, 0x8000));
  EXPECT_EQ(Stat(P("file")).st_mode & 07777, 0644u);
}

TEST_F(ErrorsTest, Mknod) {
  EXPECT_FAILS(EEXIST, mknod(P("file").c_str(), S_IFIFO | 0644, 0));
  EXPECT_FAILS(EEXIST, mknod(P("dangling").c_str(), S_IFIFO | 0644, 0));
  EXPECT_FAILS(ENOENT, mknod(P("missing/fifo").c_str(), S_IFIFO | 0644, 0));
  EXPECT_FAILS(EINVAL, mknod(P("odd").c_str(), 0170000 | 0644, 0));
  EXPECT_FAILS(EPERM, mknod(P("d").c_str(), S_IFDIR | 0755, 0));
  EXPECT_FAILS(ENAMETOOLONG, mknod(P(LongName()).c_str(), S_IFIFO | 0644, 0));
  EXPECT_FALSE(Exists(P("odd")));
  EXPECT_FALSE(Exists(P("d")));
}

TEST_F(ErrorsTest, Readdir) {
  ASSERT_OPEN(f, open(P("file").c_str(), O_RDONLY));
  char buf[4096];
  EXPECT_FAILS(ENOTDIR, syscall(SYS_getdents64, f.get(), buf, sizeof buf));
  EXPECT_FAILS(EBADF, syscall(SYS_getdents64, -1, buf, sizeof buf));
  ASSERT_OPEN(d, open(P("dir").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(EINVAL, syscall(SYS_getdents64, d.get(), buf, 1));
  EXPECT_EQ(opendir(P("file").c_str()), nullptr);
  EXPECT_EQ(errno, ENOTDIR);
  EXPECT_EQ(opendir(P("missing").c_str()), nullptr);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(ErrorsTest, Xattrs) {
  char buf[16];
  EXPECT_FAILS(ENOENT, setxattr(P("missing").c_str(), "user.a", "v", 1, 0));
  EXPECT_FAILS(ENOENT, getxattr(P("missing").c_str(), "user.a", buf, sizeof buf));
  EXPECT_FAILS(ENOENT, listxattr(P("missing").c_str(), buf, sizeof buf));
  EXPECT_FAILS(ENOENT, removexattr(P("missing").c_str(), "user.a"));
  EXPECT_FAILS(ENOTDIR, getxattr(P("file/x").c_str(), "user.a", buf, sizeof buf));
  EXPECT_FAILS(EOPNOTSUPP, setxattr(P("file").c_str(), "nonamespace.a", "v", 1, 0));
  EXPECT_FAILS(EOPNOTSUPP, getxattr(P("file").c_str(), "nonamespace.a", buf, sizeof buf));
  EXPECT_FAILS(EINVAL, setxattr(P("file").c_str(), "user.a", "v", 1, 0x10));
  EXPECT_FAILS(ERANGE,
               setxattr(P("file").c_str(), ("user." + std::string(251, 'x')).c_str(), "v", 1, 0));
  EXPECT_FAILS(ERANGE, setxattr(P("file").c_str(), "", "v", 1, 0));
  EXPECT_FAILS(E2BIG,
               setxattr(P("file").c_str(), "user.big", std::string(65537, 'v').data(), 65537, 0));
  EXPECT_FAILS(EBADF, fsetxattr(-1, "user.a", "v", 1, 0));
}

TEST_F(ErrorsTest, CrossFilesystemIsEXDEV) {
  if (OtherDir().empty()) {
    if (Required("exdev")) FAIL() << "DAXFS_POSIX_OTHER_DIR is not set";
    GTEST_SKIP() << "DAXFS_POSIX_OTHER_DIR is not set (a directory on another filesystem)";
  }
  struct stat here = Stat(dir()), there = Stat(OtherDir());
  ASSERT_NE(here.st_dev, there.st_dev) << OtherDir() << " is on the same filesystem";
  const std::string other = OtherDir() + "/exdev." + std::to_string(getpid());
  EXPECT_FAILS(EXDEV, rename(P("file").c_str(), other.c_str()));
  EXPECT_FAILS(EXDEV, link(P("file").c_str(), other.c_str()));
  EXPECT_FAILS(EXDEV, rename(P("dir").c_str(), other.c_str()));
  EXPECT_FAILS(EXDEV,
               renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, other.c_str(), RENAME_NOREPLACE));
  MakeFile(other, "there");
  EXPECT_FAILS(EXDEV, rename(other.c_str(), P("file").c_str()));
  EXPECT_FAILS(EXDEV,
               renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, other.c_str(), RENAME_EXCHANGE));
  {
    ASSERT_OPEN(in, open(P("file").c_str(), O_RDONLY));
    ASSERT_OPEN(out, open(other.c_str(), O_WRONLY));
    EXPECT_FAILS(EXDEV, copy_file_range(in.get(), nullptr, out.get(), nullptr, 4, 0));
  }
  EXPECT_EQ(ReadFile(other), "there");
  EXPECT_EQ(ReadFile(P("file")), "data");
  unlink(other.c_str());
}

TEST_F(ErrorsTest, SymlinkFollowLimitIsELOOP) {
  // Linux follows at most 40 symlinks in one lookup.
  std::string prev = "file";
  for (int i = 1; i <= 41; ++i) {
    std::string name = "chain" + std::to_string(i);
    ASSERT_SYS(symlink(prev.c_str(), P(name).c_str()));
    prev = name;
  }
  struct stat st;
  EXPECT_SYS(stat(P("chain40").c_str(), &st));
  EXPECT_FAILS(ELOOP, stat(P("chain41").c_str(), &st));
  EXPECT_FAILS(ELOOP, open(P("chain41").c_str(), O_RDONLY));
  // O_NOFOLLOW refuses a symlink as the last component, dangling or not.
  EXPECT_FAILS(ELOOP, open(P("chain1").c_str(), O_RDONLY | O_NOFOLLOW));
  EXPECT_FAILS(ELOOP, open(P("dangling").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  EXPECT_FAILS(ELOOP, truncate(P("loop1").c_str(), 0));
  EXPECT_FAILS(ELOOP, access(P("loop1").c_str(), F_OK));
  EXPECT_FALSE(Exists(P("missing-target")));
}

TEST_F(ErrorsTest, RenameOntoAncestorOrIntoDescendant) {
  ASSERT_SYS(mkdir(P("dir/sub").c_str(), 0755));
  MakeFile(P("dir/sub/f"), "f");
  // Onto its own (non-empty) ancestor: ENOTEMPTY; into its own subtree: EINVAL.
  EXPECT_FAILS(ENOTEMPTY, rename(P("dir/sub").c_str(), P("dir").c_str()));
  EXPECT_FAILS(EINVAL, rename(P("dir").c_str(), P("dir/sub/x").c_str()));
  EXPECT_FAILS(EINVAL, rename(P("dir").c_str(), P("dir/sub").c_str()));
  EXPECT_FAILS(EINVAL, renameat2(AT_FDCWD, P("dir").c_str(), AT_FDCWD, P("dir/sub").c_str(),
                                 RENAME_EXCHANGE));
  EXPECT_EQ(ReadFile(P("dir/sub/f")), "f");
  EXPECT_EQ(Stat(P("dir")).st_nlink, 3u);
}

TEST_F(ErrorsTest, ClosedDescriptorIsEBADF) {
  char buf[16] = {};
  int closed = open(P("file").c_str(), O_RDONLY);
  ASSERT_GE(closed, 0);
  ASSERT_SYS(close(closed));
  struct stat st;
  loff_t off = 0;
  EXPECT_FAILS(EBADF, write(closed, buf, sizeof buf));
  EXPECT_FAILS(EBADF, fstat(closed, &st));
  EXPECT_FAILS(EBADF, fdatasync(closed));
  EXPECT_FAILS(EBADF, ftruncate(closed, 0));
  EXPECT_FAILS(EBADF, fchmod(closed, 0644));
  EXPECT_FAILS(EBADF, lseek(closed, 0, SEEK_SET));
  EXPECT_FAILS(EBADF, fallocate(closed, 0, 0, 4096));
  EXPECT_FAILS(EBADF, fgetxattr(closed, "user.x", buf, sizeof buf));
  EXPECT_FAILS(EBADF, openat(closed, "file", O_RDONLY));
  EXPECT_FAILS(EBADF, syncfs(closed));
  EXPECT_FAILS(EBADF, close(closed));
  ASSERT_OPEN(out, open(P("file").c_str(), O_WRONLY | O_APPEND));
  ASSERT_OPEN(in, open(P("file").c_str(), O_RDONLY));
  EXPECT_FAILS(EBADF, copy_file_range(in.get(), &off, out.get(), nullptr, 1, 0))
      << "an O_APPEND destination";
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(ErrorsTest, DotAndDotDotAsLastComponent) {
  const std::vector<std::string> before = ListDir(dir());
  EXPECT_FAILS(EISDIR, unlink(P("dir/.").c_str()));
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("dir/.").c_str()));
  EXPECT_FAILS(EEXIST, symlink("x", P("dir/..").c_str()));
  EXPECT_FAILS(EEXIST, renameat2(AT_FDCWD, P("file").c_str(), AT_FDCWD, P("dir/.").c_str(),
                                 RENAME_NOREPLACE));
  EXPECT_EQ(ListDir(dir()), before);
  EXPECT_EQ(Stat(P("dir/.")).st_ino, Stat(P("dir")).st_ino);
  EXPECT_EQ(Stat(P("dir/..")).st_ino, Stat(dir()).st_ino);
}

}  // namespace
}  // namespace posix
