// Error codes of every namespace and file operation, as Linux returns them (ENOENT, EEXIST,
// ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG, ELOOP, EINVAL, EBADF, EPERM, EXDEV), and that a failed
// call changes nothing. Errors as a non-root user are in permissions_test.cc.
#include <dirent.h>
#include <linux/fs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "posix_env.h"

namespace posix {
namespace {

class Errors : public PosixTest {
 protected:
  void SetUp() override {
    PosixTest::SetUp();
    if (HasFatalFailure()) return;
    MakeFile(P("file"), "data");
    ASSERT_SYS(mkdir(P("dir").c_str(), 0755));
    MakeFile(P("dir/inner"), "inner");
    ASSERT_SYS(mkdir(P("empty").c_str(), 0755));
    ASSERT_SYS(symlink("missing-target", P("dangling").c_str()));
    ASSERT_SYS(symlink("file", P("tofile").c_str()));
  }
  // The names in the test directory, to show that a failed call left them alone.
  std::vector<std::string> Names() { return ListDir(dir()); }
};

TEST_F(Errors, Enoent) {
  const std::string m = P("missing");
  struct stat st;
  char buf[16];
  EXPECT_FAILS(ENOENT, open(m.c_str(), O_RDONLY));
  EXPECT_FAILS(ENOENT, open(m.c_str(), O_RDWR));
  EXPECT_FAILS(ENOENT, open(P("missing/x").c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(ENOENT, open("", O_RDONLY));
  EXPECT_FAILS(ENOENT, stat(m.c_str(), &st));
  EXPECT_FAILS(ENOENT, lstat(m.c_str(), &st));
  EXPECT_FAILS(ENOENT, unlink(m.c_str()));
  EXPECT_FAILS(ENOENT, rmdir(m.c_str()));
  EXPECT_FAILS(ENOENT, rename(m.c_str(), P("x").c_str()));
  EXPECT_FAILS(ENOENT, rename(P("file").c_str(), P("missing/x").c_str()));
  EXPECT_FAILS(ENOENT, link(m.c_str(), P("x").c_str()));
  EXPECT_FAILS(ENOENT, link(P("file").c_str(), P("missing/x").c_str()));
  EXPECT_FAILS(ENOENT, symlink("file", P("missing/x").c_str()));
  EXPECT_FAILS(ENOENT, readlink(m.c_str(), buf, sizeof buf));
  EXPECT_FAILS(ENOENT, mkdir(P("missing/x").c_str(), 0755));
  EXPECT_FAILS(ENOENT, mknod(P("missing/fifo").c_str(), S_IFIFO | 0644, 0));
  EXPECT_FAILS(ENOENT, chmod(m.c_str(), 0644));
  EXPECT_FAILS(ENOENT, chown(m.c_str(), 0, 0));
  EXPECT_FAILS(ENOENT, truncate(m.c_str(), 0));
  EXPECT_FAILS(ENOENT, access(m.c_str(), F_OK));
  EXPECT_FAILS(ENOENT, utimensat(AT_FDCWD, m.c_str(), nullptr, 0));
  EXPECT_FAILS(ENOENT, getxattr(m.c_str(), "user.x", buf, sizeof buf));
  EXPECT_FAILS(ENOENT, listxattr(m.c_str(), buf, sizeof buf));
  EXPECT_FAILS(ENOENT, syscall(SYS_renameat2, AT_FDCWD, P("file").c_str(), AT_FDCWD, m.c_str(),
                               RENAME_EXCHANGE));
  EXPECT_FAILS(ENOENT, syscall(SYS_renameat2, AT_FDCWD, m.c_str(), AT_FDCWD, P("file").c_str(),
                               RENAME_NOREPLACE));
  // A dangling symlink is there, but what it names is not.
  EXPECT_FAILS(ENOENT, stat(P("dangling").c_str(), &st));
  EXPECT_FAILS(ENOENT, open(P("dangling").c_str(), O_RDONLY));
  EXPECT_SYS(lstat(P("dangling").c_str(), &st));
  EXPECT_EQ(opendir(m.c_str()), nullptr);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(Names(), (std::vector<std::string>{"dangling", "dir", "empty", "file", "tofile"}));
}

TEST_F(Errors, Eexist) {
  const auto before = Names();
  EXPECT_FAILS(EEXIST, mkdir(P("dir").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("file").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("dangling").c_str(), 0755));
  EXPECT_FAILS(EEXIST, open(P("file").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  EXPECT_FAILS(EEXIST, open(P("dir").c_str(), O_RDONLY | O_CREAT | O_EXCL, 0644));
  // O_EXCL does not follow a symlink, even a dangling one, and creates nothing.
  EXPECT_FAILS(EEXIST, open(P("dangling").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("dir").c_str()));
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("tofile").c_str()));
  EXPECT_FAILS(EEXIST, symlink("x", P("file").c_str()));
  EXPECT_FAILS(EEXIST, symlink("x", P("dangling").c_str()));
  EXPECT_FAILS(EEXIST, mknod(P("file").c_str(), S_IFIFO | 0644, 0));
  EXPECT_FAILS(EEXIST, mknod(P("dir").c_str(), S_IFREG | 0644, 0));
  EXPECT_FAILS(EEXIST, syscall(SYS_renameat2, AT_FDCWD, P("file").c_str(), AT_FDCWD,
                               P("tofile").c_str(), RENAME_NOREPLACE));
  EXPECT_EQ(Names(), before);
  EXPECT_FALSE(Exists(P("missing-target")));
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(Errors, Enotdir) {
  struct stat st;
  const auto before = Names();
  EXPECT_FAILS(ENOTDIR, open(P("file/x").c_str(), O_RDONLY));
  EXPECT_FAILS(ENOTDIR, open(P("file/x").c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(ENOTDIR, open(P("file").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(ENOTDIR, open(P("tofile").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_FAILS(ENOTDIR, stat(P("file/x").c_str(), &st));
  EXPECT_FAILS(ENOTDIR, stat(P("file/").c_str(), &st));
  EXPECT_FAILS(ENOTDIR, mkdir(P("file/x").c_str(), 0755));
  EXPECT_FAILS(ENOTDIR, rmdir(P("file").c_str()));
  EXPECT_FAILS(ENOTDIR, rmdir(P("tofile").c_str()));
  EXPECT_FAILS(ENOTDIR, unlink(P("file/").c_str()));
  EXPECT_FAILS(ENOTDIR, rename(P("dir").c_str(), P("file").c_str()));
  EXPECT_FAILS(ENOTDIR, rename(P("file/").c_str(), P("x").c_str()));
  EXPECT_FAILS(ENOTDIR, link(P("file").c_str(), P("file/x").c_str()));
  EXPECT_FAILS(ENOTDIR, symlink("x", P("file/x").c_str()));
  EXPECT_FAILS(ENOTDIR, chdir(P("file").c_str()));
  EXPECT_EQ(opendir(P("file").c_str()), nullptr);
  EXPECT_EQ(errno, ENOTDIR);
  ASSERT_OPEN(fd, open(P("file").c_str(), O_RDONLY));
  char buf[256];
  EXPECT_FAILS(ENOTDIR, syscall(SYS_getdents64, fd.get(), buf, sizeof buf));
  EXPECT_FAILS(ENOTDIR, openat(fd.get(), "x", O_RDONLY));
  EXPECT_EQ(Names(), before);
  EXPECT_EQ(ReadFile(P("dir/inner")), "inner");
}

TEST_F(Errors, Eisdir) {
  const auto before = Names();
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_WRONLY));
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_RDWR));
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_WRONLY | O_CREAT, 0644));
  EXPECT_FAILS(EISDIR, open(P("dir").c_str(), O_RDONLY | O_TRUNC));
  EXPECT_FAILS(EISDIR, open(P("newname/").c_str(), O_WRONLY | O_CREAT, 0644));
  EXPECT_FAILS(EISDIR, truncate(P("dir").c_str(), 0));
  EXPECT_FAILS(EISDIR, unlink(P("dir").c_str()));
  EXPECT_FAILS(EISDIR, unlink(P("empty").c_str()));
  EXPECT_FAILS(EISDIR, rename(P("file").c_str(), P("empty").c_str()));
  EXPECT_FAILS(EISDIR, rename(P("file").c_str(), P("dir").c_str()));
  ASSERT_OPEN(fd, open(P("dir").c_str(), O_RDONLY | O_DIRECTORY));
  char buf[16];
  EXPECT_FAILS(EISDIR, read(fd.get(), buf, sizeof buf));
  EXPECT_FAILS(EISDIR, pread(fd.get(), buf, sizeof buf, 0));
  EXPECT_EQ(Names(), before);
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(Errors, Enotempty) {
  const auto before = Names();
  EXPECT_FAILS(ENOTEMPTY, rmdir(P("dir").c_str()));
  EXPECT_FAILS(ENOTEMPTY, rmdir(P("dir/..").c_str()));
  EXPECT_FAILS(ENOTEMPTY, rename(P("empty").c_str(), P("dir").c_str()));
  EXPECT_FAILS(ENOTEMPTY,
               syscall(SYS_renameat2, AT_FDCWD, P("empty").c_str(), AT_FDCWD, P("dir").c_str(), 0));
  // A directory renamed onto its own (non-empty) ancestor.
  ASSERT_SYS(mkdir(P("dir/sub").c_str(), 0755));
  EXPECT_FAILS(ENOTEMPTY, rename(P("dir/sub").c_str(), P("dir").c_str()));
  ASSERT_SYS(rmdir(P("dir/sub").c_str()));
  EXPECT_EQ(Names(), before);
  EXPECT_EQ(ListDir(P("dir")), std::vector<std::string>{"inner"});
}

TEST_F(Errors, Enametoolong) {
  struct statvfs sv {};
  ASSERT_SYS(statvfs(dir().c_str(), &sv));
  const size_t max = sv.f_namemax;
  ASSERT_GT(max, 0u);
  ASSERT_LT(max, 4096u);
  const std::string longest(max, 'n');
  const std::string too_long(max + 1, 'n');
  struct stat st;
  const auto before = Names();
  EXPECT_FAILS(ENAMETOOLONG, open(P(too_long).c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(ENAMETOOLONG, stat(P(too_long).c_str(), &st));
  EXPECT_FAILS(ENAMETOOLONG, mkdir(P(too_long).c_str(), 0755));
  EXPECT_FAILS(ENAMETOOLONG, symlink("file", P(too_long).c_str()));
  EXPECT_FAILS(ENAMETOOLONG, link(P("file").c_str(), P(too_long).c_str()));
  EXPECT_FAILS(ENAMETOOLONG, rename(P("file").c_str(), P(too_long).c_str()));
  EXPECT_FAILS(ENAMETOOLONG, mknod(P(too_long).c_str(), S_IFIFO | 0644, 0));
  EXPECT_FAILS(ENAMETOOLONG, unlink(P(too_long).c_str()));
  EXPECT_EQ(Names(), before);
  // The longest name is fine, for every kind of entry.
  ASSERT_OPEN(fd, open(P(longest).c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  EXPECT_SYS(stat(P(longest).c_str(), &st));
  EXPECT_SYS(rename(P(longest).c_str(), P("dir/" + longest).c_str()));
  EXPECT_SYS(unlink(P("dir/" + longest).c_str()));
  EXPECT_SYS(mkdir(P(longest).c_str(), 0755));
  EXPECT_SYS(rmdir(P(longest).c_str()));
  EXPECT_SYS(symlink("file", P(longest).c_str()));
  EXPECT_SYS(unlink(P(longest).c_str()));
  // A path longer than PATH_MAX, and a symlink target as long.
  std::string deep = dir();
  while (deep.size() <= PATH_MAX) deep += "/.";
  EXPECT_FAILS(ENAMETOOLONG, stat(deep.c_str(), &st));
  EXPECT_FAILS(ENAMETOOLONG, symlink(std::string(PATH_MAX, 't').c_str(), P("longlink").c_str()));
  EXPECT_EQ(Names(), before);
}

TEST_F(Errors, Eloop) {
  ASSERT_SYS(symlink("b", P("a").c_str()));
  ASSERT_SYS(symlink("a", P("b").c_str()));
  struct stat st;
  EXPECT_FAILS(ELOOP, open(P("a").c_str(), O_RDONLY));
  EXPECT_FAILS(ELOOP, open(P("a").c_str(), O_RDWR | O_CREAT, 0644));
  EXPECT_FAILS(ELOOP, stat(P("a").c_str(), &st));
  EXPECT_FAILS(ELOOP, stat(P("a/x").c_str(), &st));
  EXPECT_FAILS(ELOOP, mkdir(P("a/x").c_str(), 0755));
  EXPECT_FAILS(ELOOP, access(P("a").c_str(), F_OK));
  EXPECT_FAILS(ELOOP, truncate(P("a").c_str(), 0));
  EXPECT_SYS(lstat(P("a").c_str(), &st));
  // O_NOFOLLOW refuses a symlink as the last component.
  EXPECT_FAILS(ELOOP, open(P("tofile").c_str(), O_RDONLY | O_NOFOLLOW));
  EXPECT_FAILS(ELOOP, open(P("dangling").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  // Linux follows at most 40 symlinks in one lookup.
  std::string prev = "file";
  for (int i = 1; i <= 41; ++i) {
    std::string name = "chain" + std::to_string(i);
    ASSERT_SYS(symlink(prev.c_str(), P(name).c_str()));
    prev = name;
  }
  EXPECT_SYS(stat(P("chain40").c_str(), &st));
  EXPECT_FAILS(ELOOP, stat(P("chain41").c_str(), &st));
  EXPECT_FALSE(Exists(P("missing-target")));
}

TEST_F(Errors, Einval) {
  char buf[16];
  const auto before = Names();
  ASSERT_SYS(mkdir(P("dir/sub").c_str(), 0755));
  // A directory into its own subtree.
  EXPECT_FAILS(EINVAL, rename(P("dir").c_str(), P("dir/x").c_str()));
  EXPECT_FAILS(EINVAL, rename(P("dir").c_str(), P("dir/sub/x").c_str()));
  EXPECT_FAILS(EINVAL, rename(P("dir").c_str(), P("dir/sub").c_str()));
  EXPECT_FAILS(EINVAL, rmdir(P("dir/.").c_str()));
  EXPECT_FAILS(EINVAL, readlink(P("file").c_str(), buf, sizeof buf));
  EXPECT_FAILS(EINVAL, readlink(P("dir").c_str(), buf, sizeof buf));
  EXPECT_FAILS(EINVAL, truncate(P("file").c_str(), -1));
  EXPECT_FAILS(EINVAL, syscall(SYS_renameat2, AT_FDCWD, P("file").c_str(), AT_FDCWD,
                               P("tofile").c_str(), RENAME_NOREPLACE | RENAME_EXCHANGE));
  EXPECT_FAILS(EINVAL, syscall(SYS_renameat2, AT_FDCWD, P("file").c_str(), AT_FDCWD, P("x").c_str(),
                               1u << 30));
  EXPECT_FAILS(EINVAL, linkat(AT_FDCWD, P("file").c_str(), AT_FDCWD, P("x").c_str(), 0x4000000));
  EXPECT_FAILS(EINVAL, mknod(P("x").c_str(), S_IFMT | 0644, 0));
  EXPECT_FAILS(EINVAL, open(P("x").c_str(), O_RDWR | O_CREAT | O_DIRECTORY, 0644));
  timespec bad[2] = {{0, 1000000000}, {0, 0}};
  EXPECT_FAILS(EINVAL, utimensat(AT_FDCWD, P("file").c_str(), bad, 0));
  EXPECT_FAILS(EINVAL, setxattr(P("file").c_str(), "user.x", "1", 1, 4));
  EXPECT_FAILS(EINVAL, setxattr(P("file").c_str(), "user.", "1", 1, 0));

  ASSERT_OPEN(fd, open(P("file").c_str(), O_RDWR));
  EXPECT_FAILS(EINVAL, lseek(fd.get(), 0, 99));
  EXPECT_FAILS(EINVAL, lseek(fd.get(), -1, SEEK_SET));
  EXPECT_FAILS(EINVAL, lseek(fd.get(), -100, SEEK_END));
  EXPECT_FAILS(EINVAL, ftruncate(fd.get(), -1));
  EXPECT_FAILS(EINVAL, pread(fd.get(), buf, sizeof buf, -1));
  EXPECT_FAILS(EINVAL, pwrite(fd.get(), buf, sizeof buf, -1));
  EXPECT_FAILS(EINVAL, fallocate(fd.get(), 0, 0, 0));
  EXPECT_FAILS(EINVAL, fallocate(fd.get(), 0, -1, 4096));
  EXPECT_FAILS(EINVAL, fallocate(fd.get(), 0, 0, -4096));
  loff_t in = 0, out = 2;  // overlapping ranges of one file
  EXPECT_FAILS(EINVAL, copy_file_range(fd.get(), &in, fd.get(), &out, 4, 0));
  ASSERT_OPEN(other, open(P("copy").c_str(), O_RDWR | O_CREAT, 0644));
  in = 0;
  out = 0;
  EXPECT_FAILS(EINVAL, copy_file_range(fd.get(), &in, other.get(), &out, 4, 1));
  // ftruncate of a descriptor not open for writing is EINVAL on Linux (not EBADF).
  ASSERT_OPEN(ro, open(P("file").c_str(), O_RDONLY));
  EXPECT_FAILS(EINVAL, ftruncate(ro.get(), 0));
  ASSERT_SYS(unlink(P("copy").c_str()));
  ASSERT_SYS(rmdir(P("dir/sub").c_str()));
  EXPECT_EQ(Names(), before);
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(Errors, Ebadf) {
  char buf[16] = {};
  int closed = open(P("file").c_str(), O_RDONLY);
  ASSERT_GE(closed, 0);
  ASSERT_SYS(close(closed));
  struct stat st;
  EXPECT_FAILS(EBADF, read(closed, buf, sizeof buf));
  EXPECT_FAILS(EBADF, write(closed, buf, sizeof buf));
  EXPECT_FAILS(EBADF, fstat(closed, &st));
  EXPECT_FAILS(EBADF, fsync(closed));
  EXPECT_FAILS(EBADF, fdatasync(closed));
  EXPECT_FAILS(EBADF, ftruncate(closed, 0));
  EXPECT_FAILS(EBADF, fchmod(closed, 0644));
  EXPECT_FAILS(EBADF, fchown(closed, 0, 0));
  EXPECT_FAILS(EBADF, lseek(closed, 0, SEEK_SET));
  EXPECT_FAILS(EBADF, close(closed));
  EXPECT_FAILS(EBADF, fgetxattr(closed, "user.x", buf, sizeof buf));
  EXPECT_FAILS(EBADF, openat(closed, "file", O_RDONLY));
  EXPECT_FAILS(EBADF, syscall(SYS_getdents64, closed, buf, sizeof buf));

  ASSERT_OPEN(ro, open(P("file").c_str(), O_RDONLY));
  ASSERT_OPEN(wo, open(P("file").c_str(), O_WRONLY));
  ASSERT_OPEN(app, open(P("file").c_str(), O_WRONLY | O_APPEND));
  ASSERT_OPEN(path, open(P("file").c_str(), O_PATH));
  EXPECT_FAILS(EBADF, write(ro.get(), "x", 1));
  EXPECT_FAILS(EBADF, pwrite(ro.get(), "x", 1, 0));
  EXPECT_FAILS(EBADF, read(wo.get(), buf, sizeof buf));
  EXPECT_FAILS(EBADF, fallocate(ro.get(), 0, 0, 4096));
  EXPECT_FAILS(EBADF, read(path.get(), buf, sizeof buf));
  EXPECT_FAILS(EBADF, write(path.get(), "x", 1));
  loff_t in = 0, out = 0;
  EXPECT_FAILS(EBADF, copy_file_range(ro.get(), &in, ro.get(), &out, 1, 0));
  EXPECT_FAILS(EBADF, copy_file_range(wo.get(), &in, wo.get(), &out, 1, 0));
  EXPECT_FAILS(EBADF, copy_file_range(ro.get(), &in, app.get(), &out, 1, 0));
  EXPECT_EQ(ReadFile(P("file")), "data");
}

TEST_F(Errors, Eperm) {
  const auto before = Names();
  // Hard links to directories and mknod of a directory are refused (even for root).
  EXPECT_FAILS(EPERM, link(P("dir").c_str(), P("dirlink").c_str()));
  EXPECT_FAILS(EPERM, link(P("empty").c_str(), P("dir/emptylink").c_str()));
  EXPECT_FAILS(EPERM, mknod(P("x").c_str(), S_IFDIR | 0755, 0));
  EXPECT_EQ(Names(), before);
  EXPECT_EQ(Stat(P("dir")).st_nlink, 2u);
}

TEST_F(Errors, DotAndDotDot) {
  const auto before = Names();
  EXPECT_FAILS(EBUSY, rename(P("dir/.").c_str(), P("x").c_str()));
  EXPECT_FAILS(EBUSY, rename(P("dir/..").c_str(), P("x").c_str()));
  EXPECT_FAILS(EBUSY, rename(P("file").c_str(), P("dir/..").c_str()));
  EXPECT_FAILS(EEXIST, syscall(SYS_renameat2, AT_FDCWD, P("file").c_str(), AT_FDCWD,
                               P("dir/.").c_str(), RENAME_NOREPLACE));
  EXPECT_FAILS(EINVAL, rmdir(P("empty/.").c_str()));
  EXPECT_FAILS(ENOTEMPTY, rmdir(P("empty/..").c_str()));
  EXPECT_FAILS(EEXIST, mkdir(P("dir/.").c_str(), 0755));
  EXPECT_FAILS(EEXIST, mkdir(P("dir/..").c_str(), 0755));
  EXPECT_FAILS(EISDIR, unlink(P("dir/.").c_str()));
  EXPECT_FAILS(EEXIST, link(P("file").c_str(), P("dir/.").c_str()));
  EXPECT_EQ(Names(), before);
  // "." and ".." name the directory and its parent.
  EXPECT_EQ(Stat(P("dir/.")).st_ino, Stat(P("dir")).st_ino);
  EXPECT_EQ(Stat(P("dir/..")).st_ino, Stat(dir()).st_ino);
}

TEST_F(Errors, Exdev) {
  if (OtherDir().empty()) GTEST_SKIP() << "DAXFS_POSIX_OTHER_DIR is not set";
  struct stat here = Stat(dir()), there{};
  ASSERT_SYS(stat(OtherDir().c_str(), &there));
  if (here.st_dev == there.st_dev) {
    GTEST_SKIP() << "DAXFS_POSIX_OTHER_DIR " << OtherDir() << " is on the same filesystem";
  }
  const std::string other = OtherDir() + "/posix-exdev-" + std::to_string(getpid());
  RemoveTree(other);
  ASSERT_SYS(mkdir(other.c_str(), 0755));
  MakeFile(other + "/remote", "remote");
  const auto before = Names();
  EXPECT_FAILS(EXDEV, rename(P("file").c_str(), (other + "/x").c_str()));
  EXPECT_FAILS(EXDEV, rename(P("dir").c_str(), (other + "/x").c_str()));
  EXPECT_FAILS(EXDEV, rename((other + "/remote").c_str(), P("x").c_str()));
  EXPECT_FAILS(EXDEV, link(P("file").c_str(), (other + "/x").c_str()));
  EXPECT_FAILS(EXDEV, syscall(SYS_renameat2, AT_FDCWD, P("file").c_str(), AT_FDCWD,
                              (other + "/remote").c_str(), RENAME_EXCHANGE));
  EXPECT_EQ(Names(), before);
  EXPECT_EQ(ListDir(other), std::vector<std::string>{"remote"});
  RemoveTree(other);
}

}  // namespace
}  // namespace posix
