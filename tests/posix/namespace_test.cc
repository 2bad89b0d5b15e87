// The namespace: open flags, rename (incl. renameat2 flags), hard-link counts, symlinks, special
// files (FIFO, socket, device nodes) and readdir, checked against what Linux filesystems do.
#include <dirent.h>
#include <linux/fs.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include <map>
#include <set>

#include "posix_env.h"

namespace posix {
namespace {

// "prefix" followed by the number (written so that GCC 12 sees no -Wrestrict false positive).
std::string Numbered(const char* prefix, size_t i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

long Rename2(const std::string& from, const std::string& to, unsigned flags) {
  return syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
}

// ---- open flags ----------------------------------------------------------------------------

using OpenFlags = PosixTest;

TEST_F(OpenFlags, CreateExclusive) {
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0666));
  struct stat st = Fstat(fd.get());
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u) << "mode 0666 under umask 022";
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_gid, getegid());
  WriteAt(fd.get(), "hello", 0);
  EXPECT_FAILS(EEXIST, open(P("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0644));
  // O_CREAT alone opens the existing file without truncating or changing its mode.
  ASSERT_OPEN(again, open(P("f").c_str(), O_RDWR | O_CREAT, 0600));
  EXPECT_EQ(ReadAt(again.get(), 16, 0), "hello");
  EXPECT_EQ(Fstat(again.get()).st_mode & 07777, 0644u);
  EXPECT_EQ(Fstat(again.get()).st_ino, st.st_ino);
  // umask applies to the creation mode; 0 lets every bit through.
  mode_t old = umask(0);
  ASSERT_OPEN(open_mode, open(P("g").c_str(), O_RDWR | O_CREAT | O_EXCL, 0666));
  umask(old);
  EXPECT_EQ(Fstat(open_mode.get()).st_mode & 07777, 0666u);
}

TEST_F(OpenFlags, Truncate) {
  MakeFile(P("f"), Pattern(10000, 1));
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR | O_TRUNC));
  EXPECT_EQ(Fstat(fd.get()).st_size, 0);
  EXPECT_EQ(ReadAt(fd.get(), 100, 0), "");
  WriteAt(fd.get(), "abc", 0);
  EXPECT_EQ(ReadFile(P("f")), "abc");
  // O_TRUNC with O_CREAT on an existing file truncates it too.
  ASSERT_OPEN(fd2, open(P("f").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  EXPECT_EQ(Fstat(fd2.get()).st_size, 0);
}

TEST_F(OpenFlags, Append) {
  MakeFile(P("f"), "0123456789");
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR | O_APPEND));
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd.get(), "ab", 2), 2);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 12) << "the file position follows the appended data";
  // Two appenders never overwrite each other.
  ASSERT_OPEN(other, open(P("f").c_str(), O_WRONLY | O_APPEND));
  ASSERT_EQ(write(other.get(), "cd", 2), 2);
  ASSERT_EQ(write(fd.get(), "ef", 2), 2);
  // Linux appends even with pwrite on an O_APPEND descriptor (pwrite(2), BUGS).
  ASSERT_EQ(pwrite(fd.get(), "gh", 2, 0), 2);
  EXPECT_EQ(ReadFile(P("f")), "0123456789abcdefgh");
  // Reads still start where asked.
  EXPECT_EQ(ReadAt(fd.get(), 4, 2), "2345");
}

TEST_F(OpenFlags, Directory) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(symlink("d", P("ld").c_str()));
  MakeFile(P("f"));
  ASSERT_OPEN(d, open(P("d").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_TRUE(S_ISDIR(Fstat(d.get()).st_mode));
  ASSERT_OPEN(ld, open(P("ld").c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_EQ(Fstat(ld.get()).st_ino, Fstat(d.get()).st_ino);
  EXPECT_FAILS(ENOTDIR, open(P("f").c_str(), O_RDONLY | O_DIRECTORY));
  // A directory opened O_RDONLY without O_DIRECTORY is fine too.
  ASSERT_OPEN(plain, open(P("d").c_str(), O_RDONLY));
  EXPECT_TRUE(S_ISDIR(Fstat(plain.get()).st_mode));
}

TEST_F(OpenFlags, NoFollow) {
  MakeFile(P("f"), "target");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  MakeFile(P("d/inner"), "inner");
  ASSERT_SYS(symlink("f", P("lf").c_str()));
  ASSERT_SYS(symlink("d", P("ld").c_str()));
  EXPECT_FAILS(ELOOP, open(P("lf").c_str(), O_RDONLY | O_NOFOLLOW));
  // With O_DIRECTORY too, Linux reports the symlink as not a directory.
  EXPECT_FAILS(ENOTDIR, open(P("ld").c_str(), O_RDONLY | O_NOFOLLOW | O_DIRECTORY));
  // Only the last component is not followed.
  ASSERT_OPEN(inner, open(P("ld/inner").c_str(), O_RDONLY | O_NOFOLLOW));
  EXPECT_EQ(ReadAt(inner.get(), 16, 0), "inner");
  ASSERT_OPEN(f, open(P("f").c_str(), O_RDONLY | O_NOFOLLOW));
  EXPECT_EQ(ReadAt(f.get(), 16, 0), "target");
  // O_PATH | O_NOFOLLOW opens the symlink itself.
  ASSERT_OPEN(link, open(P("lf").c_str(), O_PATH | O_NOFOLLOW));
  EXPECT_TRUE(S_ISLNK(Fstat(link.get()).st_mode));
}

// ---- rename --------------------------------------------------------------------------------

using Rename = PosixTest;

TEST_F(Rename, FileOverFile) {
  MakeFile(P("a"), "content of a");
  MakeFile(P("b"), "content of b");
  const ino_t ino_a = Stat(P("a")).st_ino;
  ASSERT_SYS(rename(P("a").c_str(), P("b").c_str()));
  EXPECT_FALSE(Exists(P("a")));
  EXPECT_EQ(Stat(P("b")).st_ino, ino_a);
  EXPECT_EQ(Stat(P("b")).st_nlink, 1u);
  EXPECT_EQ(ReadFile(P("b")), "content of a");
  EXPECT_EQ(ListDir(dir()), std::vector<std::string>{"b"});
}

TEST_F(Rename, FileAndDirectoryTargets) {
  MakeFile(P("f"), "f");
  ASSERT_SYS(mkdir(P("empty").c_str(), 0755));
  ASSERT_SYS(mkdir(P("full").c_str(), 0755));
  MakeFile(P("full/x"), "x");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  MakeFile(P("d/inside"), "inside");
  EXPECT_FAILS(EISDIR, rename(P("f").c_str(), P("empty").c_str()));
  EXPECT_FAILS(ENOTDIR, rename(P("d").c_str(), P("f").c_str()));
  EXPECT_FAILS_EITHER(ENOTEMPTY, EEXIST, rename(P("d").c_str(), P("full").c_str()));
  EXPECT_EQ(Stat(dir()).st_nlink, 5u) << "2 + three subdirectories";
  // A directory replaces an empty directory.
  const ino_t ino_d = Stat(P("d")).st_ino;
  ASSERT_SYS(rename(P("d").c_str(), P("empty").c_str()));
  EXPECT_FALSE(Exists(P("d")));
  EXPECT_EQ(Stat(P("empty")).st_ino, ino_d);
  EXPECT_EQ(ReadFile(P("empty/inside")), "inside");
  EXPECT_EQ(Stat(dir()).st_nlink, 4u) << "the replaced directory is gone";
  EXPECT_EQ(ListDir(dir()), (std::vector<std::string>{"empty", "f", "full"}));
}

TEST_F(Rename, SameFileAndSameName) {
  MakeFile(P("a"), "a");
  ASSERT_SYS(link(P("a").c_str(), P("b").c_str()));
  // Two names of one inode: rename does nothing and succeeds (POSIX).
  ASSERT_SYS(rename(P("a").c_str(), P("b").c_str()));
  EXPECT_TRUE(Exists(P("a")));
  EXPECT_TRUE(Exists(P("b")));
  EXPECT_EQ(Stat(P("a")).st_nlink, 2u);
  ASSERT_SYS(rename(P("a").c_str(), P("a").c_str()));
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(rename(P("d").c_str(), P("d").c_str()));
  EXPECT_EQ(ListDir(dir()), (std::vector<std::string>{"a", "b", "d"}));
}

TEST_F(Rename, DirectoryAcrossParents) {
  ASSERT_SYS(mkdir(P("p1").c_str(), 0755));
  ASSERT_SYS(mkdir(P("p2").c_str(), 0755));
  ASSERT_SYS(mkdir(P("p1/d").c_str(), 0755));
  MakeFile(P("p1/d/f"), "f");
  EXPECT_EQ(Stat(P("p1")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("p2")).st_nlink, 2u);
  ASSERT_SYS(rename(P("p1/d").c_str(), P("p2/moved").c_str()));
  EXPECT_EQ(Stat(P("p1")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("p2")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("p2/moved/..")).st_ino, Stat(P("p2")).st_ino) << "\"..\" follows the move";
  EXPECT_EQ(ReadFile(P("p2/moved/f")), "f");
  EXPECT_TRUE(ListDir(P("p1")).empty());
  // A file across parents leaves the link counts of the directories alone.
  ASSERT_SYS(rename(P("p2/moved/f").c_str(), P("p1/f").c_str()));
  EXPECT_EQ(Stat(P("p1")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("p2/moved")).st_nlink, 2u);
}

TEST_F(Rename, NoReplace) {
  MakeFile(P("a"), "a");
  MakeFile(P("b"), "b");
  EXPECT_FAILS(EEXIST, Rename2(P("a"), P("b"), RENAME_NOREPLACE));
  EXPECT_EQ(ReadFile(P("a")), "a");
  EXPECT_EQ(ReadFile(P("b")), "b");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  EXPECT_FAILS(EEXIST, Rename2(P("d"), P("b"), RENAME_NOREPLACE));
  ASSERT_SYS(Rename2(P("a"), P("c"), RENAME_NOREPLACE));
  EXPECT_EQ(ReadFile(P("c")), "a");
  ASSERT_SYS(Rename2(P("d"), P("e"), RENAME_NOREPLACE));
  EXPECT_EQ(ListDir(dir()), (std::vector<std::string>{"b", "c", "e"}));
}

TEST_F(Rename, ExchangeFiles) {
  MakeFile(P("a"), "content a");
  MakeFile(P("b"), "content b");
  const ino_t ino_a = Stat(P("a")).st_ino, ino_b = Stat(P("b")).st_ino;
  ASSERT_SYS(Rename2(P("a"), P("b"), RENAME_EXCHANGE));
  EXPECT_EQ(ReadFile(P("a")), "content b");
  EXPECT_EQ(ReadFile(P("b")), "content a");
  EXPECT_EQ(Stat(P("a")).st_ino, ino_b);
  EXPECT_EQ(Stat(P("b")).st_ino, ino_a);
  EXPECT_EQ(Stat(P("a")).st_nlink, 1u);
  EXPECT_FAILS(ENOENT, Rename2(P("a"), P("missing"), RENAME_EXCHANGE));
  EXPECT_EQ(ListDir(dir()), (std::vector<std::string>{"a", "b"}));
}

TEST_F(Rename, ExchangeFileAndDirectoryAcrossParents) {
  ASSERT_SYS(mkdir(P("p1").c_str(), 0755));
  ASSERT_SYS(mkdir(P("p2").c_str(), 0755));
  MakeFile(P("p1/f"), "file");
  ASSERT_SYS(mkdir(P("p2/d").c_str(), 0755));
  MakeFile(P("p2/d/child"), "child");
  ASSERT_SYS(Rename2(P("p1/f"), P("p2/d"), RENAME_EXCHANGE));
  EXPECT_TRUE(S_ISDIR(Lstat(P("p1/f")).st_mode));
  EXPECT_TRUE(S_ISREG(Lstat(P("p2/d")).st_mode));
  EXPECT_EQ(ReadFile(P("p1/f/child")), "child");
  EXPECT_EQ(ReadFile(P("p2/d")), "file");
  EXPECT_EQ(Stat(P("p1")).st_nlink, 3u) << "p1 now holds the directory";
  EXPECT_EQ(Stat(P("p2")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("p1/f/..")).st_ino, Stat(P("p1")).st_ino);
  // Exchanging two directories.
  ASSERT_SYS(mkdir(P("p2/e").c_str(), 0755));
  ASSERT_SYS(Rename2(P("p1/f"), P("p2/e"), RENAME_EXCHANGE));
  EXPECT_EQ(ReadFile(P("p2/e/child")), "child");
  EXPECT_TRUE(ListDir(P("p1/f")).empty());
  EXPECT_EQ(Stat(P("p2/e/..")).st_ino, Stat(P("p2")).st_ino);
  EXPECT_EQ(Stat(P("p1/f/..")).st_ino, Stat(P("p1")).st_ino);
  EXPECT_EQ(Stat(P("p1")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("p2")).st_nlink, 3u);
  // A directory cannot be exchanged with its own descendant.
  ASSERT_SYS(mkdir(P("p2/e/sub").c_str(), 0755));
  EXPECT_FAILS(EINVAL, Rename2(P("p2/e"), P("p2/e/sub"), RENAME_EXCHANGE));
}

// The replaced file lives on, unlinked, while it is open.
TEST_F(Rename, OverOpenFileFreesNothingUntilClose) {
  MakeFile(P("a"), "new");
  MakeFile(P("b"), Pattern(100000, 7));
  ASSERT_OPEN(fd, open(P("b").c_str(), O_RDWR));
  ASSERT_SYS(rename(P("a").c_str(), P("b").c_str()));
  EXPECT_EQ(Fstat(fd.get()).st_nlink, 0u);
  WriteAt(fd.get(), "still writable", 0);
  std::string expect = Pattern(100000, 7);
  expect.replace(0, 14, "still writable");
  EXPECT_EQ(ReadAt(fd.get(), 200000, 0), expect);
  EXPECT_EQ(ReadFile(P("b")), "new");
}

// ---- hard links ----------------------------------------------------------------------------

using Links = PosixTest;

TEST_F(Links, FileLinkCounts) {
  MakeFile(P("a"), "shared");
  EXPECT_EQ(Stat(P("a")).st_nlink, 1u);
  ASSERT_SYS(link(P("a").c_str(), P("b").c_str()));
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(link(P("b").c_str(), P("d/c").c_str()));
  EXPECT_EQ(Stat(P("a")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("a")).st_ino, Stat(P("d/c")).st_ino);
  // A change through one name is seen through the others.
  {
    ASSERT_OPEN(fd, open(P("d/c").c_str(), O_WRONLY | O_APPEND));
    ASSERT_EQ(write(fd.get(), "+", 1), 1);
  }
  EXPECT_EQ(ReadFile(P("a")), "shared+");
  ASSERT_SYS(unlink(P("a").c_str()));
  EXPECT_EQ(Stat(P("b")).st_nlink, 2u);
  ASSERT_SYS(rename(P("b").c_str(), P("e").c_str()));
  EXPECT_EQ(Stat(P("e")).st_nlink, 2u) << "rename keeps the count";
  ASSERT_SYS(unlink(P("e").c_str()));
  EXPECT_EQ(Stat(P("d/c")).st_nlink, 1u);
  EXPECT_EQ(ReadFile(P("d/c")), "shared+");
  // A hard link to a symlink is a second name of the symlink (link(2) does not follow).
  ASSERT_SYS(symlink("somewhere", P("sl").c_str()));
  ASSERT_SYS(link(P("sl").c_str(), P("sl2").c_str()));
  EXPECT_TRUE(S_ISLNK(Lstat(P("sl2")).st_mode));
  EXPECT_EQ(Lstat(P("sl")).st_nlink, 2u);
}

TEST_F(Links, OpenFileOutlivesItsLastLink) {
  MakeFile(P("a"), "shared+");
  ASSERT_SYS(link(P("a").c_str(), P("b").c_str()));
  ASSERT_OPEN(fd, open(P("b").c_str(), O_RDONLY));
  ASSERT_SYS(unlink(P("a").c_str()));
  EXPECT_EQ(Fstat(fd.get()).st_nlink, 1u);
  ASSERT_SYS(unlink(P("b").c_str()));
  EXPECT_EQ(Fstat(fd.get()).st_nlink, 0u);
  EXPECT_EQ(ReadAt(fd.get(), 16, 0), "shared+");
  EXPECT_TRUE(ListDir(dir()).empty());
}

TEST_F(Links, DirectoryLinkCounts) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  EXPECT_EQ(Stat(P("d")).st_nlink, 2u);
  const nlink_t top = Stat(dir()).st_nlink;
  EXPECT_EQ(top, 3u);
  ASSERT_SYS(mkdir(P("d/a").c_str(), 0755));
  ASSERT_SYS(mkdir(P("d/b").c_str(), 0755));
  ASSERT_SYS(mkdir(P("d/c").c_str(), 0755));
  MakeFile(P("d/file"));
  ASSERT_SYS(symlink("a", P("d/link").c_str()));
  EXPECT_EQ(Stat(P("d")).st_nlink, 5u) << "2 + three subdirectories; files do not count";
  EXPECT_EQ(Stat(P("d/a")).st_nlink, 2u);
  ASSERT_SYS(rmdir(P("d/a").c_str()));
  EXPECT_EQ(Stat(P("d")).st_nlink, 4u);
  ASSERT_SYS(mkdir(P("e").c_str(), 0755));
  ASSERT_SYS(rename(P("d/b").c_str(), P("e/b").c_str()));
  EXPECT_EQ(Stat(P("d")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("e")).st_nlink, 3u);
  EXPECT_EQ(Stat(dir()).st_nlink, 4u);
  ASSERT_SYS(rmdir(P("d/c").c_str()));
  EXPECT_EQ(Stat(P("d")).st_nlink, 2u);
}

// An open directory that is removed reports no links and takes no new entries.
TEST_F(Links, OpenDirectoryOutlivesRmdir) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(mkdir(P("d/c").c_str(), 0755));
  ASSERT_OPEN(fd, open(P("d/c").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_SYS(rmdir(P("d/c").c_str()));
  EXPECT_EQ(Fstat(fd.get()).st_nlink, 0u);
  EXPECT_FAILS(ENOENT, openat(fd.get(), "new", O_RDWR | O_CREAT, 0644));
  EXPECT_EQ(Stat(P("d")).st_nlink, 2u);
}

// ---- symlinks ------------------------------------------------------------------------------

using Symlinks = PosixTest;

TEST_F(Symlinks, ReadlinkAndLstat) {
  const std::vector<std::string> targets = {"x",
                                            "../up/and/over",
                                            "/absolute/path",
                                            std::string(1000, 'L'),
                                            "with space\tand\ttabs",
                                            "trailing/"};
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string link = P(Numbered("l", i));
    ASSERT_SYS(symlink(targets[i].c_str(), link.c_str())) << "target of " << targets[i].size();
    struct stat st = Lstat(link);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(static_cast<size_t>(st.st_size), targets[i].size());
    std::string buf(targets[i].size() + 10, '#');
    ssize_t n = readlink(link.c_str(), buf.data(), buf.size());
    ASSERT_EQ(n, static_cast<ssize_t>(targets[i].size()));
    EXPECT_EQ(buf.substr(0, n), targets[i]);
    EXPECT_EQ(buf[n], '#') << "readlink writes no terminating NUL";
  }
  // A short buffer gets the first bytes.
  char small[3];
  EXPECT_EQ(readlink(P("l1").c_str(), small, sizeof small), 3);
  EXPECT_EQ(std::string(small, 3), "../");
}

TEST_F(Symlinks, FollowedAndNot) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  MakeFile(P("d/f"), "through the link");
  ASSERT_SYS(symlink("d", P("ld").c_str()));
  ASSERT_SYS(symlink("ld/f", P("lf").c_str()));
  EXPECT_EQ(ReadFile(P("ld/f")), "through the link");
  EXPECT_EQ(ReadFile(P("lf")), "through the link");
  EXPECT_TRUE(S_ISDIR(Stat(P("ld")).st_mode));
  EXPECT_TRUE(S_ISLNK(Lstat(P("ld")).st_mode));
  EXPECT_FAILS(ENOTDIR, rmdir(P("ld").c_str()));
  // Unlinking a symlink removes the link, never what it names.
  ASSERT_SYS(unlink(P("ld").c_str()));
  EXPECT_TRUE(S_ISDIR(Lstat(P("d")).st_mode));
  EXPECT_FAILS(ENOENT, open(P("lf").c_str(), O_RDONLY));
}

TEST_F(Symlinks, Dangling) {
  ASSERT_SYS(symlink("target", P("l").c_str()));
  struct stat st;
  EXPECT_SYS(lstat(P("l").c_str(), &st));
  EXPECT_FAILS(ENOENT, stat(P("l").c_str(), &st));
  EXPECT_FAILS(ENOENT, open(P("l").c_str(), O_RDONLY));
  // O_CREAT through a dangling symlink creates its target (outside sticky directories).
  {
    ASSERT_OPEN(fd, open(P("l").c_str(), O_WRONLY | O_CREAT, 0644));
    WriteAt(fd.get(), "made", 0);
  }
  EXPECT_EQ(ReadFile(P("target")), "made");
  EXPECT_TRUE(S_ISLNK(Lstat(P("l")).st_mode));
  EXPECT_EQ(ListDir(dir()), (std::vector<std::string>{"l", "target"}));
}

// ---- special files -------------------------------------------------------------------------

using SpecialFiles = PosixTest;

TEST_F(SpecialFiles, Fifo) {
  ASSERT_SYS(mkfifo(P("fifo").c_str(), 0644));
  ASSERT_SYS(mknod(P("fifo2").c_str(), S_IFIFO | 0600, 0));
  EXPECT_EQ(Stat(dir()).st_nlink, 2u) << "a FIFO is no subdirectory";
  struct stat st = Lstat(P("fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_TRUE(S_ISFIFO(Lstat(P("fifo2")).st_mode));
  // Data goes through the pipe, not the filesystem.
  ASSERT_OPEN(fd, open(P("fifo").c_str(), O_RDWR | O_NONBLOCK));
  ASSERT_EQ(write(fd.get(), "pipe", 4), 4);
  char buf[8];
  ASSERT_EQ(read(fd.get(), buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "pipe");
  EXPECT_EQ(Fstat(fd.get()).st_size, 0);
  ASSERT_SYS(rename(P("fifo").c_str(), P("moved").c_str()));
  EXPECT_TRUE(S_ISFIFO(Lstat(P("moved")).st_mode));
}

// Runs `call` with the working directory set to `dir` (sun_path is too short for long absolute
// paths), then restores it; errno is the call's.
template <typename F>
int InDirectory(const std::string& dir, F call) {
  Fd cwd(open(".", O_RDONLY | O_DIRECTORY));
  if (!cwd.ok() || chdir(dir.c_str()) != 0) return -1;
  int r = call();
  int e = errno;
  if (fchdir(cwd.get()) != 0) ADD_FAILURE() << "cannot return to the working directory";
  errno = e;
  return r;
}

TEST_F(SpecialFiles, Socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "sock");
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  ASSERT_OPEN(server, socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_SYS(InDirectory(dir(), [&] { return bind(server.get(), sa, sizeof addr); }));
  struct stat st = Lstat(P("sock"));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  ASSERT_SYS(listen(server.get(), 1));
  ASSERT_OPEN(client, socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_SYS(InDirectory(dir(), [&] { return connect(client.get(), sa, sizeof addr); }));
  ASSERT_OPEN(conn, accept(server.get(), nullptr, nullptr));
  ASSERT_EQ(write(client.get(), "hi", 2), 2);
  char buf[4];
  ASSERT_EQ(read(conn.get(), buf, sizeof buf), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
  // The name is taken: a second bind fails; once unlinked, it is free again.
  ASSERT_OPEN(again, socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_FAILS(EADDRINUSE, InDirectory(dir(), [&] { return bind(again.get(), sa, sizeof addr); }));
  ASSERT_SYS(unlink(P("sock").c_str()));
  EXPECT_FALSE(Exists(P("sock")));
  EXPECT_SYS(InDirectory(dir(), [&] { return bind(again.get(), sa, sizeof addr); }));
  EXPECT_TRUE(S_ISSOCK(Lstat(P("sock")).st_mode));
}

TEST_F(SpecialFiles, DeviceNodes) {
  SKIP_UNLESS_ROOT();
  const dev_t null_dev = makedev(1, 3);     // /dev/null
  const dev_t block_dev = makedev(7, 250);  // a loop device number nobody opens here
  ASSERT_SYS(mknod(P("chr").c_str(), S_IFCHR | 0666, null_dev));
  ASSERT_SYS(mknod(P("blk").c_str(), S_IFBLK | 0600, block_dev));
  ASSERT_SYS(mknod(P("reg").c_str(), S_IFREG | 0644, 0));
  ASSERT_SYS(mknod(P("plain").c_str(), 0644, 0));  // type 0 is a regular file
  struct stat c = Lstat(P("chr")), b = Lstat(P("blk"));
  EXPECT_TRUE(S_ISCHR(c.st_mode));
  EXPECT_EQ(c.st_rdev, null_dev);
  EXPECT_EQ(c.st_mode & 07777, 0644u) << "0666 under umask 022";
  EXPECT_TRUE(S_ISBLK(b.st_mode));
  EXPECT_EQ(b.st_rdev, block_dev);
  EXPECT_EQ(c.st_size, 0);
  EXPECT_TRUE(S_ISREG(Lstat(P("reg")).st_mode));
  EXPECT_TRUE(S_ISREG(Lstat(P("plain")).st_mode));
  // The numbers survive a rename and a hard link.
  ASSERT_SYS(rename(P("chr").c_str(), P("chr2").c_str()));
  ASSERT_SYS(link(P("blk").c_str(), P("blk2").c_str()));
  EXPECT_EQ(Lstat(P("chr2")).st_rdev, null_dev);
  EXPECT_EQ(Lstat(P("blk2")).st_rdev, block_dev);
  // Opening the node opens the device (unless the mount says nodev).
  if (!GetProbes().devices.ok) {
    EXPECT_FAILS(EACCES, open(P("chr2").c_str(), O_RDWR));
  } else {
    ASSERT_OPEN(fd, open(P("chr2").c_str(), O_RDWR));
    EXPECT_EQ(write(fd.get(), "discarded", 9), 9);
    char buf[4];
    EXPECT_EQ(read(fd.get(), buf, sizeof buf), 0) << "/dev/null reads as end of file";
  }
}

// ---- readdir -------------------------------------------------------------------------------

struct Entry {
  ino_t ino;
  unsigned char type;
};

// Every entry of `path` read with getdents64 and a small buffer (many calls), in order; a name
// seen twice is a test failure.
std::vector<std::pair<std::string, Entry>> GetDents(const std::string& path, size_t buffer) {
  std::vector<std::pair<std::string, Entry>> out;
  Fd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY));
  if (!fd.ok()) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoName(errno);
    return out;
  }
  std::vector<char> buf(buffer);
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buf.data(), buf.size());
    if (n < 0) {
      ADD_FAILURE() << "getdents64: " << ErrnoName(errno);
      break;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<dirent64*>(buf.data() + off);
      out.push_back({d->d_name, {static_cast<ino_t>(d->d_ino), d->d_type}});
      off += d->d_reclen;
    }
  }
  return out;
}

unsigned char TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return DT_REG;
  if (S_ISDIR(mode)) return DT_DIR;
  if (S_ISLNK(mode)) return DT_LNK;
  if (S_ISFIFO(mode)) return DT_FIFO;
  if (S_ISSOCK(mode)) return DT_SOCK;
  if (S_ISCHR(mode)) return DT_CHR;
  if (S_ISBLK(mode)) return DT_BLK;
  return DT_UNKNOWN;
}

using Readdir = PosixTest;

TEST_F(Readdir, EveryEntryExactlyOnce) {
  std::set<std::string> made;
  for (int i = 0; i < 600; ++i) {
    std::string name = "file-" + std::to_string(i) + std::string(i % 40, 'x');
    MakeFile(P(name));
    made.insert(name);
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_SYS(mkdir(P("dir-" + std::to_string(i)).c_str(), 0755));
    made.insert("dir-" + std::to_string(i));
  }
  ASSERT_SYS(symlink("file-0", P("link").c_str()));
  made.insert("link");
  for (size_t buffer : {size_t{512}, size_t{4096}, size_t{65536}}) {
    SCOPED_TRACE("getdents64 buffer " + std::to_string(buffer));
    auto entries = GetDents(dir(), buffer);
    std::map<std::string, int> seen;
    for (const auto& entry : entries) {
      const std::string& name = entry.first;  // a plain reference: lambdas cannot capture a binding
      const auto& e = entry.second;
      ++seen[name];
      struct stat st {};
      ASSERT_SYS(lstat(P(name).c_str(), &st));
      if (name != "..") {
        EXPECT_EQ(e.ino, st.st_ino) << name;
      }
      if (e.type != DT_UNKNOWN) {
        EXPECT_EQ(e.type, TypeOf(st.st_mode)) << name;
      }
    }
    EXPECT_EQ(seen["."], 1);
    EXPECT_EQ(seen[".."], 1);
    seen.erase(".");
    seen.erase("..");
    EXPECT_EQ(seen.size(), made.size());
    for (const auto& [name, count] : seen) {
      EXPECT_EQ(count, 1) << name << " seen " << count << " times";
      EXPECT_TRUE(made.count(name)) << "unexpected entry " << name;
    }
  }
  // ".." names the parent.
  for (const auto& [name, e] : GetDents(P("dir-3"), 4096)) {
    if (name == "..") {
      EXPECT_EQ(e.ino, Stat(dir()).st_ino);
    } else if (name == ".") {
      EXPECT_EQ(e.ino, Stat(P("dir-3")).st_ino);
    }
  }
}

TEST_F(Readdir, TypesOfSpecialFiles) {
  ASSERT_SYS(mkfifo(P("fifo").c_str(), 0644));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "sock");
  ASSERT_OPEN(sock, socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_SYS(InDirectory(
      dir(), [&] { return bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr); }));
  std::map<std::string, unsigned char> want = {{"fifo", DT_FIFO}, {"sock", DT_SOCK}};
  if (geteuid() == 0) {  // the device nodes need CAP_MKNOD (the rest is checked without them)
    ASSERT_SYS(mknod(P("chr").c_str(), S_IFCHR | 0644, makedev(1, 3)));
    ASSERT_SYS(mknod(P("blk").c_str(), S_IFBLK | 0644, makedev(7, 250)));
    want.insert({{"chr", DT_CHR}, {"blk", DT_BLK}});
  }
  std::map<std::string, unsigned char> got;
  for (const auto& [name, e] : GetDents(dir(), 4096)) {
    if (name == "." || name == "..") continue;
    EXPECT_EQ(e.ino, Lstat(P(name)).st_ino) << name;
    got[name] = e.type == DT_UNKNOWN ? TypeOf(Lstat(P(name)).st_mode) : e.type;
  }
  EXPECT_EQ(got, want);
}

TEST_F(Readdir, EmptyDirectoryHasOnlyDotAndDotDot) {
  ASSERT_SYS(mkdir(P("e").c_str(), 0755));
  auto entries = GetDents(P("e"), 4096);
  std::set<std::string> names;
  for (const auto& [name, e] : entries) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{".", ".."}));
  EXPECT_EQ(entries.size(), 2u);
  // Reading again at the end returns nothing more.
  ASSERT_OPEN(fd, open(P("e").c_str(), O_RDONLY | O_DIRECTORY));
  char buf[4096];
  ASSERT_GT(syscall(SYS_getdents64, fd.get(), buf, sizeof buf), 0);
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof buf), 0);
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof buf), 0);
}

TEST_F(Readdir, TelldirSeekdirResume) {
  for (int i = 0; i < 300; ++i) MakeFile(P(Numbered("f", i)));
  DIR* d = opendir(dir().c_str());
  ASSERT_NE(d, nullptr);
  std::vector<std::string> first;
  for (int i = 0; i < 100; ++i) {
    dirent* e = readdir(d);
    ASSERT_NE(e, nullptr);
    first.push_back(e->d_name);
  }
  long pos = telldir(d);
  ASSERT_NE(pos, -1);
  std::vector<std::string> next, again;
  for (int i = 0; i < 50; ++i) next.push_back(readdir(d)->d_name);
  // Read on to the end, then go back: the same entries follow the saved position.
  while (readdir(d) != nullptr) {
  }
  seekdir(d, pos);
  for (int i = 0; i < 50; ++i) {
    dirent* e = readdir(d);
    ASSERT_NE(e, nullptr);
    again.push_back(e->d_name);
  }
  EXPECT_EQ(again, next);
  // A fresh stream resumes at a position taken from another (the cookie is the directory's).
  DIR* d2 = opendir(dir().c_str());
  ASSERT_NE(d2, nullptr);
  seekdir(d2, pos);
  std::vector<std::string> third;
  for (int i = 0; i < 50; ++i) {
    dirent* e = readdir(d2);
    ASSERT_NE(e, nullptr);
    third.push_back(e->d_name);
  }
  EXPECT_EQ(third, next);
  closedir(d2);
  rewinddir(d);
  std::set<std::string> all;
  while (dirent* e = readdir(d)) EXPECT_TRUE(all.insert(e->d_name).second) << e->d_name;
  closedir(d);
  EXPECT_EQ(all.size(), 302u);
}

TEST_F(Readdir, ChangesDuringIteration) {
  for (int i = 0; i < 400; ++i) MakeFile(P("keep" + std::to_string(i)));
  for (int i = 0; i < 100; ++i) MakeFile(P("drop" + std::to_string(i)));
  DIR* d = opendir(dir().c_str());
  ASSERT_NE(d, nullptr);
  std::map<std::string, int> seen;
  int read_so_far = 0;
  while (dirent* e = readdir(d)) {
    ++seen[e->d_name];
    if (++read_so_far == 60) {
      // Mid-way: add new names and remove some old ones.
      for (int i = 0; i < 200; ++i) MakeFile(P("new" + std::to_string(i)));
      for (int i = 0; i < 100; ++i) ASSERT_SYS(unlink(P("drop" + std::to_string(i)).c_str()));
    }
  }
  closedir(d);
  // Entries that were there throughout: exactly once; added or removed ones: at most once.
  for (int i = 0; i < 400; ++i) EXPECT_EQ(seen["keep" + std::to_string(i)], 1) << i;
  for (const auto& [name, count] : seen) EXPECT_LE(count, 1) << name;
  EXPECT_EQ(ListDir(dir()).size(), 600u);
}

TEST_F(Readdir, LargeDirectory) {
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    ASSERT_OPEN(fd, open(P("entry-with-a-longer-name-" + std::to_string(i)).c_str(),
                         O_WRONLY | O_CREAT | O_EXCL, 0644));
  }
  EXPECT_EQ(ListDir(dir()).size(), static_cast<size_t>(n));
  for (int i = 0; i < n; i += 2) {
    ASSERT_SYS(unlink(P("entry-with-a-longer-name-" + std::to_string(i)).c_str()));
  }
  auto names = ListDir(dir());
  ASSERT_EQ(names.size(), static_cast<size_t>(n / 2));
  for (const std::string& name : names) {
    int i = std::stoi(name.substr(name.rfind('-') + 1));
    EXPECT_EQ(i % 2, 1) << name;
  }
}

}  // namespace
}  // namespace posix
