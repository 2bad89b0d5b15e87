// Permissions and ownership: chmod, chown as root, set-gid directories, sticky directories,
// access(2), EACCES/EPERM for a non-root uid (checked in a forked child that drops to uid 65534),
// and the set-user/group-ID bits Linux clears on write, truncate and chown.
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "posix_env.h"

namespace posix {
namespace {

mode_t ModeOf(const std::string& path) { return Lstat(path).st_mode & 07777; }

void Own(const std::string& path, uid_t uid, gid_t gid) {
  EXPECT_EQ(lchown(path.c_str(), uid, gid), 0) << "chown " << path << ": " << ErrnoName(errno);
}

void Chmod(const std::string& path, mode_t mode) {
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << "chmod " << path << ": " << ErrnoName(errno);
}

using Permissions = PosixTest;

TEST_F(Permissions, ChmodKeepsEveryBit) {
  MakeFile(P("f"));
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(symlink("f", P("l").c_str()));
  for (mode_t mode : {0000, 0777, 0644, 04755, 02755, 01777, 07777, 0123}) {
    ASSERT_SYS(chmod(P("f").c_str(), mode));
    EXPECT_EQ(ModeOf(P("f")), mode) << std::oct << mode;
    EXPECT_TRUE(S_ISREG(Lstat(P("f")).st_mode));
    ASSERT_SYS(chmod(P("d").c_str(), mode));
    EXPECT_EQ(ModeOf(P("d")), mode) << std::oct << mode;
    EXPECT_TRUE(S_ISDIR(Lstat(P("d")).st_mode));
  }
  ASSERT_SYS(chmod(P("d").c_str(), 0755));
  // chmod through a symlink changes its target; fchmod works on a descriptor.
  ASSERT_SYS(chmod(P("l").c_str(), 0600));
  EXPECT_EQ(ModeOf(P("f")), 0600u);
  EXPECT_TRUE(S_ISLNK(Lstat(P("l")).st_mode));
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDONLY));
  ASSERT_SYS(fchmod(fd.get(), 0444));
  EXPECT_EQ(ModeOf(P("f")), 0444u);
  // Root may write to a file whose mode forbids it.
  ASSERT_OPEN(w, open(P("f").c_str(), O_WRONLY));
}

TEST_F(Permissions, ChownAsRoot) {
  SKIP_UNLESS_ROOT();
  MakeFile(P("f"));
  ASSERT_SYS(symlink("f", P("l").c_str()));
  ASSERT_SYS(chown(P("f").c_str(), 1000, 2000));
  EXPECT_EQ(Stat(P("f")).st_uid, 1000u);
  EXPECT_EQ(Stat(P("f")).st_gid, 2000u);
  ASSERT_SYS(chown(P("f").c_str(), static_cast<uid_t>(-1), 3000));
  EXPECT_EQ(Stat(P("f")).st_uid, 1000u) << "-1 keeps the owner";
  EXPECT_EQ(Stat(P("f")).st_gid, 3000u);
  // lchown changes the symlink itself, chown through it the target.
  ASSERT_SYS(lchown(P("l").c_str(), 4000, 5000));
  EXPECT_EQ(Lstat(P("l")).st_uid, 4000u);
  EXPECT_EQ(Lstat(P("l")).st_gid, 5000u);
  EXPECT_EQ(Stat(P("f")).st_uid, 1000u);
  ASSERT_SYS(chown(P("l").c_str(), 6000, 6000));
  EXPECT_EQ(Stat(P("f")).st_uid, 6000u);
  EXPECT_EQ(Lstat(P("l")).st_uid, 4000u);
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDONLY));
  ASSERT_SYS(fchown(fd.get(), 0, 0));
  EXPECT_EQ(Fstat(fd.get()).st_uid, 0u);
  EXPECT_EQ(Fstat(fd.get()).st_gid, 0u);
  // Large ids round-trip.
  ASSERT_SYS(fchown(fd.get(), 4000000000u, 4000000001u));
  EXPECT_EQ(Fstat(fd.get()).st_uid, 4000000000u);
  EXPECT_EQ(Fstat(fd.get()).st_gid, 4000000001u);
}

TEST_F(Permissions, ChownClearsSetIdBits) {
  SKIP_UNLESS_ROOT();
  MakeFile(P("both"), "x", 06755);
  MakeFile(P("sgid-no-gx"), "x", 02644);
  ASSERT_SYS(mkdir(P("dir").c_str(), 0755));
  Chmod(P("dir"), 02755);
  ASSERT_SYS(chown(P("both").c_str(), 1000, 1000));
  EXPECT_EQ(ModeOf(P("both")), 0755u) << "chown clears set-user-ID, and set-group-ID with g+x";
  ASSERT_SYS(chown(P("sgid-no-gx").c_str(), 1000, 1000));
  EXPECT_EQ(ModeOf(P("sgid-no-gx")), 02644u) << "set-group-ID without g+x is kept";
  ASSERT_SYS(chown(P("dir").c_str(), 1000, 1000));
  EXPECT_EQ(ModeOf(P("dir")), 02755u) << "a directory keeps its set-group-ID bit";
}

TEST_F(Permissions, WriteAndTruncateByNonRootClearSetIdBits) {
  SKIP_UNLESS_OTHER_USERS();
  for (const char* name : {"w", "t", "keep"}) {
    MakeFile(P(name), "data", 0644);
    Own(P(name), kNobody, kNogroup);
  }
  Chmod(P("w"), 06777);
  Chmod(P("t"), 06777);
  Chmod(P("keep"), 02666);  // set-group-ID without group execute is kept
  MakeFile(P("root-writes"), "data", 0644);
  Own(P("root-writes"), kNobody, kNogroup);
  Chmod(P("root-writes"), 06777);
  RunAs(kNobody, kNogroup, [&](Child& c) {
    int fd = open(P("w").c_str(), O_WRONLY);
    CHILD_EXPECT(c, fd >= 0);
    CHILD_EXPECT(c, pwrite(fd, "x", 1, 0) == 1);
    close(fd);
    fd = open(P("t").c_str(), O_WRONLY);
    CHILD_EXPECT_SYS(c, ftruncate(fd, 1));
    close(fd);
    fd = open(P("keep").c_str(), O_WRONLY);
    CHILD_EXPECT(c, pwrite(fd, "x", 1, 0) == 1);
    close(fd);
  });
  EXPECT_EQ(ModeOf(P("w")), 0777u) << "write by a non-root user clears set-user/group-ID";
  EXPECT_EQ(ModeOf(P("t")), 0777u) << "truncate by a non-root user clears set-user/group-ID";
  EXPECT_EQ(ModeOf(P("keep")), 02666u);
  // Root (CAP_FSETID) keeps them.
  ASSERT_OPEN(fd, open(P("root-writes").c_str(), O_WRONLY));
  WriteAt(fd.get(), "root", 0);
  EXPECT_EQ(ModeOf(P("root-writes")), 06777u);
}

TEST_F(Permissions, SetgidDirectory) {
  SKIP_UNLESS_ROOT();
  ASSERT_SYS(mkdir(P("sg").c_str(), 0777));
  Own(P("sg"), 0, kGroup);
  Chmod(P("sg"), 02777);
  const std::string sg = P("sg");
  MakeFile(sg + "/f");
  ASSERT_SYS(mkdir((sg + "/sub").c_str(), 0755));
  ASSERT_SYS(symlink("f", (sg + "/l").c_str()));
  ASSERT_SYS(mknod((sg + "/n").c_str(), S_IFREG | 0644, 0));
  for (const char* name : {"f", "sub", "l", "n"}) {
    EXPECT_EQ(Lstat(sg + "/" + name).st_gid, kGroup) << name << " takes the directory's group";
    EXPECT_EQ(Lstat(sg + "/" + name).st_uid, 0u) << name;
  }
  EXPECT_EQ(ModeOf(sg + "/sub"), 02755u) << "a new subdirectory inherits set-group-ID";
  EXPECT_EQ(ModeOf(sg + "/f"), 0644u);
  MakeFile(sg + "/sub/deeper");
  EXPECT_EQ(Lstat(sg + "/sub/deeper").st_gid, kGroup);
  // Root may create a set-group-ID file there (CAP_FSETID).
  { ASSERT_OPEN(fd, open((sg + "/rootsgid").c_str(), O_WRONLY | O_CREAT | O_EXCL, 02755)); }
  EXPECT_EQ(ModeOf(sg + "/rootsgid"), 02755u);
  // Elsewhere new files take the creator's group.
  ASSERT_SYS(mkdir(P("plain").c_str(), 0777));
  Chmod(P("plain"), 0777);
  MakeFile(P("plain/f"));
  EXPECT_EQ(Lstat(P("plain/f")).st_gid, getegid());

  if (const std::string& why = WhyNoOtherUsers(); !why.empty()) {
    if (Required("other_users")) FAIL() << "cannot run as uid 65534: " << why;
    GTEST_SKIP() << "root part checked; non-root part: " << why;
  }
  RunAs(kNobody, kNogroup, [&](Child& c) {
    int fd = open((sg + "/nobody").c_str(), O_WRONLY | O_CREAT | O_EXCL, 02755);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    CHILD_EXPECT_SYS(c, mkdir((sg + "/nobody-dir").c_str(), 0755));
    fd = open(P("plain/nobody").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
  });
  RunAs(kNobody, kNogroup, {kGroup}, [&](Child& c) {
    int fd = open((sg + "/member").c_str(), O_WRONLY | O_CREAT | O_EXCL, 02755);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
  });
  struct stat st = Lstat(sg + "/nobody");
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kGroup);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "set-group-ID dropped: the creator is not in the group";
  EXPECT_EQ(Lstat(sg + "/nobody-dir").st_gid, kGroup);
  EXPECT_EQ(ModeOf(sg + "/nobody-dir"), 02755u);
  EXPECT_EQ(ModeOf(sg + "/member"), 02755u) << "a member of the group keeps set-group-ID";
  EXPECT_EQ(Lstat(P("plain/nobody")).st_gid, kNogroup);
}

TEST_F(Permissions, ChmodSetgidByNonMemberIsDropped) {
  SKIP_UNLESS_OTHER_USERS();
  MakeFile(P("f"));
  Own(P("f"), kNobody, kGroup);
  RunAs(kNobody, kNogroup, [&](Child& c) { CHILD_EXPECT_SYS(c, chmod(P("f").c_str(), 02755)); });
  EXPECT_EQ(ModeOf(P("f")), 0755u);
  RunAs(kNobody, kNogroup, {kGroup},
        [&](Child& c) { CHILD_EXPECT_SYS(c, chmod(P("f").c_str(), 02755)); });
  EXPECT_EQ(ModeOf(P("f")), 02755u);
}

TEST_F(Permissions, StickyDirectory) {
  SKIP_UNLESS_OTHER_USERS();
  ASSERT_SYS(mkdir(P("tmp").c_str(), 0777));
  Chmod(P("tmp"), 01777);
  const std::string tmp = P("tmp");
  MakeFile(tmp + "/theirs", "theirs", 0666);
  Own(tmp + "/theirs", kOtherUser, kOtherGroup);
  ASSERT_SYS(mkdir((tmp + "/theirdir").c_str(), 0777));
  Own(tmp + "/theirdir", kOtherUser, kOtherGroup);
  MakeFile(tmp + "/mine", "mine", 0644);
  Own(tmp + "/mine", kNobody, kNogroup);
  RunAs(kNobody, kNogroup, [&](Child& c) {
    CHILD_EXPECT_FAILS(c, EPERM, unlink((tmp + "/theirs").c_str()));
    CHILD_EXPECT_FAILS(c, EPERM, rename((tmp + "/theirs").c_str(), (tmp + "/x").c_str()));
    CHILD_EXPECT_FAILS(c, EPERM, rename((tmp + "/mine").c_str(), (tmp + "/theirs").c_str()));
    CHILD_EXPECT_FAILS(c, EPERM, rmdir((tmp + "/theirdir").c_str()));
    // Writing others' world-writable file is still allowed; only the name is protected.
    int fd = open((tmp + "/theirs").c_str(), O_WRONLY);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    fd = open((tmp + "/new").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    CHILD_EXPECT_SYS(c, rename((tmp + "/new").c_str(), (tmp + "/new2").c_str()));
    CHILD_EXPECT_SYS(c, unlink((tmp + "/new2").c_str()));
    CHILD_EXPECT_SYS(c, rename((tmp + "/mine").c_str(), (tmp + "/mine2").c_str()));
    CHILD_EXPECT_SYS(c, unlink((tmp + "/mine2").c_str()));
  });
  EXPECT_EQ(ListDir(tmp), (std::vector<std::string>{"theirdir", "theirs"}));
  EXPECT_EQ(ReadFile(tmp + "/theirs"), "theirs");
  // The directory's owner may remove anyone's entries.
  Own(tmp, kNobody, kNogroup);
  RunAs(kNobody, kNogroup, [&](Child& c) {
    CHILD_EXPECT_SYS(c, unlink((tmp + "/theirs").c_str()));
    CHILD_EXPECT_SYS(c, rmdir((tmp + "/theirdir").c_str()));
  });
  EXPECT_TRUE(ListDir(tmp).empty());
}

TEST_F(Permissions, Access) {
  SKIP_UNLESS_ROOT();
  MakeFile(P("none"), "", 0000);
  MakeFile(P("xonly"), "", 0100);
  MakeFile(P("rw"), "", 0644);
  EXPECT_SYS(access(P("none").c_str(), R_OK | W_OK)) << "root reads and writes anything";
  EXPECT_FAILS(EACCES, access(P("none").c_str(), X_OK)) << "root needs an execute bit";
  EXPECT_FAILS(EACCES, access(P("rw").c_str(), X_OK));
  EXPECT_SYS(access(P("xonly").c_str(), X_OK));
  EXPECT_SYS(access(P("rw").c_str(), F_OK));
  if (const std::string& why = WhyNoOtherUsers(); !why.empty()) {
    if (Required("other_users")) FAIL() << "cannot run as uid 65534: " << why;
    GTEST_SKIP() << "root part checked; non-root part: " << why;
  }
  MakeFile(P("r640"), "", 0640);
  MakeFile(P("x755"), "", 0755);
  MakeFile(P("owner0066"), "", 0066);
  Own(P("owner0066"), kNobody, kNogroup);
  MakeFile(P("group040"), "", 0040);
  Own(P("group040"), 0, kGroup);
  ASSERT_SYS(mkdir(P("closed").c_str(), 0700));
  MakeFile(P("closed/f"), "", 0644);
  RunAs(kNobody, kNogroup, [&](Child& c) {
    CHILD_EXPECT_FAILS(c, EACCES, access(P("r640").c_str(), R_OK));
    CHILD_EXPECT_SYS(c, access(P("rw").c_str(), R_OK));
    CHILD_EXPECT_FAILS(c, EACCES, access(P("rw").c_str(), W_OK));
    CHILD_EXPECT_FAILS(c, EACCES, access(P("rw").c_str(), X_OK));
    CHILD_EXPECT_SYS(c, access(P("x755").c_str(), R_OK | X_OK));
    CHILD_EXPECT_FAILS(c, EACCES, access(P("none").c_str(), R_OK));
    // The owner class decides for the owner, even if others may.
    CHILD_EXPECT_FAILS(c, EACCES, access(P("owner0066").c_str(), R_OK));
    CHILD_EXPECT_FAILS(c, EACCES, access(P("group040").c_str(), R_OK));
    CHILD_EXPECT_FAILS(c, EACCES, access(P("closed/f").c_str(), F_OK));
    CHILD_EXPECT_FAILS(c, EACCES, faccessat(AT_FDCWD, P("rw").c_str(), W_OK, AT_EACCESS));
  });
  RunAs(kNobody, kNogroup, {kGroup}, [&](Child& c) {
    CHILD_EXPECT_SYS(c, access(P("group040").c_str(), R_OK));
    CHILD_EXPECT_FAILS(c, EACCES, access(P("group040").c_str(), W_OK));
  });
}

TEST_F(Permissions, DeniedAsNonRoot) {
  SKIP_UNLESS_OTHER_USERS();
  MakeFile(P("secret"), "s", 0600);
  MakeFile(P("readable"), "r", 0644);
  MakeFile(P("shared"), "w", 0666);
  ASSERT_SYS(mkdir(P("closed").c_str(), 0700));
  MakeFile(P("closed/f"), "f");
  ASSERT_SYS(mkdir(P("nosearch").c_str(), 0755));
  MakeFile(P("nosearch/f"), "f");
  Chmod(P("nosearch"), 0644);
  ASSERT_SYS(mkdir(P("noread").c_str(), 0711));
  MakeFile(P("noread/f"), "f");
  ASSERT_SYS(mkdir(P("ro").c_str(), 0755));
  MakeFile(P("ro/victim"), "v", 0666);
  ASSERT_SYS(mkdir(P("ro/sub").c_str(), 0777));
  ASSERT_SYS(mkdir(P("mine").c_str(), 0755));
  Own(P("mine"), kNobody, kNogroup);
  MakeFile(P("mine/f"), "mine");
  Own(P("mine/f"), kNobody, kNogroup);
  const bool protected_hardlinks = GetProbes().protected_hardlinks;
  RunAs(kNobody, kNogroup, [&](Child& c) {
    struct stat st;
    // Opening.
    CHILD_EXPECT_FAILS(c, EACCES, open(P("secret").c_str(), O_RDONLY));
    CHILD_EXPECT_FAILS(c, EACCES, open(P("readable").c_str(), O_WRONLY));
    CHILD_EXPECT_FAILS(c, EACCES, open(P("readable").c_str(), O_RDONLY | O_TRUNC));
    CHILD_EXPECT_FAILS(c, EACCES, truncate(P("readable").c_str(), 0));
    int fd = open(P("readable").c_str(), O_RDONLY);
    CHILD_EXPECT(c, fd >= 0);
    close(fd);
    // Creating and removing in a directory without write permission.
    CHILD_EXPECT_FAILS(c, EACCES, open(P("ro/new").c_str(), O_WRONLY | O_CREAT, 0644));
    CHILD_EXPECT_FAILS(c, EACCES, mkdir(P("ro/newdir").c_str(), 0755));
    CHILD_EXPECT_FAILS(c, EACCES, symlink("x", P("ro/l").c_str()));
    CHILD_EXPECT_FAILS(c, EACCES, mkfifo(P("ro/p").c_str(), 0644));
    CHILD_EXPECT_FAILS(c, EACCES, link(P("mine/f").c_str(), P("ro/l").c_str()));
    CHILD_EXPECT_FAILS(c, EACCES, unlink(P("ro/victim").c_str()));
    CHILD_EXPECT_FAILS(c, EACCES, rename(P("ro/victim").c_str(), P("ro/v2").c_str()));
    CHILD_EXPECT_FAILS(c, EACCES, rename(P("ro/victim").c_str(), P("mine/v").c_str()));
    CHILD_EXPECT_FAILS(c, EACCES, rmdir(P("ro/sub").c_str()));
    // Searching.
    CHILD_EXPECT_FAILS(c, EACCES, stat(P("closed/f").c_str(), &st));
    CHILD_EXPECT_FAILS(c, EACCES, open(P("closed/f").c_str(), O_RDONLY));
    CHILD_EXPECT_FAILS(c, EACCES, stat(P("nosearch/f").c_str(), &st));
    CHILD_EXPECT_FAILS(c, EACCES, open(P("noread").c_str(), O_RDONLY | O_DIRECTORY));
    CHILD_EXPECT_SYS(c, stat(P("noread/f").c_str(), &st));  // search without read is enough
    // Attributes of someone else's file.
    CHILD_EXPECT_FAILS(c, EPERM, chmod(P("readable").c_str(), 0777));
    CHILD_EXPECT_FAILS(c, EPERM, chown(P("readable").c_str(), kNobody, kNogroup));
    CHILD_EXPECT_FAILS(c, EPERM, chown(P("mine/f").c_str(), 0, static_cast<gid_t>(-1)));
    CHILD_EXPECT_FAILS(c, EPERM, chown(P("mine/f").c_str(), static_cast<uid_t>(-1), kGroup));
    CHILD_EXPECT_SYS(c, chown(P("mine/f").c_str(), kNobody, kNogroup));
    const timespec t[2] = {{1000, 0}, {1000, 0}};
    CHILD_EXPECT_FAILS(c, EPERM, utimensat(AT_FDCWD, P("shared").c_str(), t, 0));
    CHILD_EXPECT_SYS(c, utimensat(AT_FDCWD, P("shared").c_str(), nullptr, 0));
    CHILD_EXPECT_FAILS(c, EACCES, utimensat(AT_FDCWD, P("readable").c_str(), nullptr, 0));
    CHILD_EXPECT_SYS(c, utimensat(AT_FDCWD, P("mine/f").c_str(), t, 0));
    // Hard links to someone else's file the user cannot write (fs.protected_hardlinks).
    if (protected_hardlinks) {
      CHILD_EXPECT_FAILS(c, EPERM, link(P("readable").c_str(), P("mine/l").c_str()));
    } else {
      CHILD_EXPECT_SYS(c, link(P("readable").c_str(), P("mine/l").c_str()));
    }
  });
  EXPECT_EQ(ReadFile(P("ro/victim")), "v");
  EXPECT_EQ(ListDir(P("ro")), (std::vector<std::string>{"sub", "victim"}));
  EXPECT_EQ(ModeOf(P("readable")), 0644u);
  EXPECT_EQ(Lstat(P("readable")).st_uid, 0u);
  EXPECT_EQ(Lstat(P("mine/f")).st_mtim.tv_sec, 1000);
}

TEST_F(Permissions, MknodAsNonRoot) {
  SKIP_UNLESS_OTHER_USERS();
  ASSERT_SYS(mkdir(P("mine").c_str(), 0755));
  Own(P("mine"), kNobody, kNogroup);
  RunAs(kNobody, kNogroup, [&](Child& c) {
    // Device nodes need CAP_MKNOD; FIFOs do not.
    CHILD_EXPECT_FAILS(c, EPERM, mknod(P("mine/chr").c_str(), S_IFCHR | 0644, makedev(1, 3)));
    CHILD_EXPECT_FAILS(c, EPERM, mknod(P("mine/blk").c_str(), S_IFBLK | 0644, makedev(7, 0)));
    CHILD_EXPECT_SYS(c, mknod(P("mine/fifo").c_str(), S_IFIFO | 0644, 0));
  });
  EXPECT_FALSE(Exists(P("mine/chr")));
  EXPECT_FALSE(Exists(P("mine/blk")));
  struct stat st = Lstat(P("mine/fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNogroup);
}

TEST_F(Permissions, XattrsAsNonRoot) {
  REQUIRE_FEATURE("user_xattr", GetProbes().user_xattr);
  SKIP_UNLESS_OTHER_USERS();
  MakeFile(P("readable"), "r", 0644);
  ASSERT_SYS(mkdir(P("mine").c_str(), 0755));
  Own(P("mine"), kNobody, kNogroup);
  MakeFile(P("mine/f"), "mine");
  Own(P("mine/f"), kNobody, kNogroup);
  RunAs(kNobody, kNogroup, [&](Child& c) {
    CHILD_EXPECT_FAILS(c, EACCES, setxattr(P("readable").c_str(), "user.x", "1", 1, 0));
    CHILD_EXPECT_SYS(c, setxattr(P("mine/f").c_str(), "user.x", "1", 1, 0));
    CHILD_EXPECT_FAILS(c, EPERM, setxattr(P("mine/f").c_str(), "trusted.x", "1", 1, 0));
    char buf[4];
    CHILD_EXPECT_FAILS(c, ENODATA, getxattr(P("mine/f").c_str(), "trusted.x", buf, 4));
  });
  char buf[4];
  EXPECT_EQ(getxattr(P("mine/f").c_str(), "user.x", buf, sizeof buf), 1);
  EXPECT_EQ(getxattr(P("readable").c_str(), "user.x", buf, sizeof buf), -1);
}

}  // namespace
}  // namespace posix
