// Extended attributes: user.* set/get/list/remove, XATTR_CREATE / XATTR_REPLACE, ERANGE and
// E2BIG, large values and many names, on directories, on symlinks where Linux allows it
// (trusted.*; never user.*), and attributes surviving rename and hard links.
#include <sys/xattr.h>

#include <algorithm>
#include <set>

#include "posix_env.h"

namespace posix {
namespace {

// The names listxattr reports for `path` (lgetxattr family: never follows a symlink).
std::set<std::string> Names(const std::string& path) {
  std::set<std::string> names;
  ssize_t size = llistxattr(path.c_str(), nullptr, 0);
  if (size < 0) {
    ADD_FAILURE() << "llistxattr " << path << ": " << ErrnoName(errno);
    return names;
  }
  std::string buf(static_cast<size_t>(size) + 1, '\0');
  size = llistxattr(path.c_str(), buf.data(), buf.size());
  if (size < 0) {
    ADD_FAILURE() << "llistxattr " << path << ": " << ErrnoName(errno);
    return names;
  }
  for (size_t at = 0; at < static_cast<size_t>(size);) {
    std::string name(buf.c_str() + at);
    at += name.size() + 1;
    // Security modules may add their own (security.selinux); only user.* and trusted.* matter.
    if (name.rfind("user.", 0) == 0 || name.rfind("trusted.", 0) == 0) names.insert(name);
  }
  return names;
}

std::string Get(const std::string& path, const char* name) {
  ssize_t size = lgetxattr(path.c_str(), name, nullptr, 0);
  if (size < 0) {
    ADD_FAILURE() << "lgetxattr " << path << " " << name << ": " << ErrnoName(errno);
    return "";
  }
  std::string value(static_cast<size_t>(size), '\0');
  ssize_t n = lgetxattr(path.c_str(), name, value.data(), value.size());
  EXPECT_EQ(n, size) << name;
  value.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return value;
}

class Xattrs : public PosixTest {
 protected:
  void SetUp() override {
    PosixTest::SetUp();
    if (HasFatalFailure()) return;
    REQUIRE_FEATURE("user_xattr", GetProbes().user_xattr);
    MakeFile(P("f"), "data");
  }
};

TEST_F(Xattrs, SetGetListRemove) {
  const std::string f = P("f");
  ASSERT_SYS(setxattr(f.c_str(), "user.a", "value a", 7, 0));
  ASSERT_SYS(setxattr(f.c_str(), "user.empty", "", 0, 0));
  const std::string binary("\0\1\2\xff\0z", 6);
  ASSERT_SYS(setxattr(f.c_str(), "user.binary", binary.data(), binary.size(), 0));
  EXPECT_EQ(getxattr(f.c_str(), "user.a", nullptr, 0), 7) << "size 0 asks for the length";
  EXPECT_EQ(Get(f, "user.a"), "value a");
  EXPECT_EQ(Get(f, "user.empty"), "");
  EXPECT_EQ(Get(f, "user.binary"), binary);
  EXPECT_EQ(Names(f), (std::set<std::string>{"user.a", "user.binary", "user.empty"}));
  // Replacing a value, shorter and longer.
  ASSERT_SYS(setxattr(f.c_str(), "user.a", "A", 1, 0));
  EXPECT_EQ(Get(f, "user.a"), "A");
  ASSERT_SYS(setxattr(f.c_str(), "user.a", "a much longer value", 19, 0));
  EXPECT_EQ(Get(f, "user.a"), "a much longer value");
  ASSERT_SYS(removexattr(f.c_str(), "user.a"));
  char buf[64];
  EXPECT_FAILS(ENODATA, getxattr(f.c_str(), "user.a", buf, sizeof buf));
  EXPECT_FAILS(ENODATA, removexattr(f.c_str(), "user.a"));
  EXPECT_FAILS(ENODATA, getxattr(f.c_str(), "user.never", buf, sizeof buf));
  EXPECT_EQ(Names(f), (std::set<std::string>{"user.binary", "user.empty"}));
  // The same through a descriptor.
  ASSERT_OPEN(fd, open(f.c_str(), O_RDONLY));
  ASSERT_SYS(fsetxattr(fd.get(), "user.fd", "by fd", 5, 0));
  EXPECT_EQ(fgetxattr(fd.get(), "user.fd", buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "by fd");
  EXPECT_GT(flistxattr(fd.get(), buf, sizeof buf), 0);
  ASSERT_SYS(fremovexattr(fd.get(), "user.fd"));
  ASSERT_SYS(removexattr(f.c_str(), "user.binary"));
  ASSERT_SYS(removexattr(f.c_str(), "user.empty"));
  EXPECT_TRUE(Names(f).empty());
  EXPECT_EQ(ReadFile(f), "data") << "attributes are not data";
}

TEST_F(Xattrs, CreateAndReplaceFlags) {
  const std::string f = P("f");
  ASSERT_SYS(setxattr(f.c_str(), "user.x", "first", 5, XATTR_CREATE));
  EXPECT_FAILS(EEXIST, setxattr(f.c_str(), "user.x", "second", 6, XATTR_CREATE));
  EXPECT_EQ(Get(f, "user.x"), "first");
  EXPECT_FAILS(ENODATA, setxattr(f.c_str(), "user.y", "new", 3, XATTR_REPLACE));
  EXPECT_EQ(Names(f), std::set<std::string>{"user.x"}) << "a refused REPLACE created nothing";
  ASSERT_SYS(setxattr(f.c_str(), "user.x", "replaced", 8, XATTR_REPLACE));
  EXPECT_EQ(Get(f, "user.x"), "replaced");
}

TEST_F(Xattrs, BufferSizesAndLimits) {
  const std::string f = P("f");
  ASSERT_SYS(setxattr(f.c_str(), "user.ten", "0123456789", 10, 0));
  char small[4];
  EXPECT_FAILS(ERANGE, getxattr(f.c_str(), "user.ten", small, sizeof small));
  EXPECT_FAILS(ERANGE, listxattr(f.c_str(), small, sizeof small));
  EXPECT_GE(listxattr(f.c_str(), nullptr, 0), 9) << "size 0 asks for the list's length";
  // Names: up to 255 bytes in all; more is ERANGE. Values: up to 64 KiB; more is E2BIG.
  const std::string longest = "user." + std::string(250, 'n');
  const std::string too_long = "user." + std::string(251, 'n');
  ASSERT_SYS(setxattr(f.c_str(), longest.c_str(), "v", 1, 0));
  EXPECT_EQ(Get(f, longest.c_str()), "v");
  EXPECT_FAILS(ERANGE, setxattr(f.c_str(), too_long.c_str(), "v", 1, 0));
  EXPECT_FAILS(ERANGE, getxattr(f.c_str(), too_long.c_str(), small, sizeof small));
  const std::string huge(XATTR_SIZE_MAX + 1, 'h');
  EXPECT_FAILS(E2BIG, setxattr(f.c_str(), "user.huge", huge.data(), huge.size(), 0));
  // An unknown namespace is not supported; an empty name after the prefix is invalid.
  EXPECT_FAILS(EOPNOTSUPP, setxattr(f.c_str(), "nonamespace", "v", 1, 0));
  EXPECT_FAILS(EINVAL, setxattr(f.c_str(), "user.", "v", 1, 0));
  EXPECT_EQ(Names(f), (std::set<std::string>{"user.ten", longest}));
}

TEST_F(Xattrs, LargeValues) {
  const std::string f = P("f");
  for (size_t size : {size_t{255}, size_t{4096}, size_t{4097}, size_t{16384}, size_t{60000}}) {
    const std::string value = Pattern(size, static_cast<uint32_t>(size));
    const std::string name = "user.large" + std::to_string(size);
    ASSERT_SYS(setxattr(f.c_str(), name.c_str(), value.data(), value.size(), 0)) << size;
    EXPECT_EQ(Get(f, name.c_str()), value) << size;
  }
  // Replacing a large value by a small one and back.
  ASSERT_SYS(setxattr(f.c_str(), "user.large60000", "s", 1, XATTR_REPLACE));
  EXPECT_EQ(Get(f, "user.large60000"), "s");
  ASSERT_SYS(removexattr(f.c_str(), "user.large16384"));
  EXPECT_EQ(Names(f).size(), 4u);
}

TEST_F(Xattrs, ManyNames) {
  const std::string f = P("f");
  std::set<std::string> want;
  for (int i = 0; i < 200; ++i) {
    const std::string name = "user.name-" + std::to_string(i);
    const std::string value = "value-" + std::to_string(i * 7);
    ASSERT_SYS(setxattr(f.c_str(), name.c_str(), value.data(), value.size(), XATTR_CREATE)) << i;
    want.insert(name);
  }
  EXPECT_EQ(Names(f), want);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(Get(f, ("user.name-" + std::to_string(i)).c_str()), "value-" + std::to_string(i * 7));
  }
  for (int i = 0; i < 200; i += 2) {
    ASSERT_SYS(removexattr(f.c_str(), ("user.name-" + std::to_string(i)).c_str()));
    want.erase("user.name-" + std::to_string(i));
  }
  EXPECT_EQ(Names(f), want);
}

TEST_F(Xattrs, OnDirectoriesSymlinksAndSpecialFiles) {
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(setxattr(P("d").c_str(), "user.dir", "on a directory", 14, 0));
  EXPECT_EQ(Get(P("d"), "user.dir"), "on a directory");
  MakeFile(P("d/child"));
  EXPECT_TRUE(Names(P("d/child")).empty()) << "a child does not inherit user.* attributes";
  // user.* is refused on symlinks and special files (Linux: EPERM to set, ENODATA to get).
  ASSERT_SYS(symlink("f", P("l").c_str()));
  ASSERT_SYS(mkfifo(P("p").c_str(), 0644));
  char buf[16];
  EXPECT_FAILS(EPERM, lsetxattr(P("l").c_str(), "user.x", "1", 1, 0));
  EXPECT_FAILS(ENODATA, lgetxattr(P("l").c_str(), "user.x", buf, sizeof buf));
  EXPECT_FAILS(EPERM, setxattr(P("p").c_str(), "user.x", "1", 1, 0));
  // Following the symlink sets the target's.
  ASSERT_SYS(setxattr(P("l").c_str(), "user.through", "link", 4, 0));
  EXPECT_EQ(Get(P("f"), "user.through"), "link");
  EXPECT_TRUE(Names(P("l")).empty());
  if (!GetProbes().trusted_xattr_link.ok) {
    if (Required("trusted_xattr_link")) FAIL() << GetProbes().trusted_xattr_link.why;
    GTEST_SKIP() << "user.* checked; trusted.* on a symlink not checked: "
                 << GetProbes().trusted_xattr_link.why;
  }
  ASSERT_SYS(lsetxattr(P("l").c_str(), "trusted.link", "own", 3, 0));
  EXPECT_EQ(Get(P("l"), "trusted.link"), "own");
  EXPECT_EQ(Names(P("l")), std::set<std::string>{"trusted.link"});
  EXPECT_FALSE(Names(P("f")).count("trusted.link")) << "the target is untouched";
}

TEST_F(Xattrs, SurviveRenameAndHardLinks) {
  ASSERT_SYS(setxattr(P("f").c_str(), "user.keep", "kept", 4, 0));
  ASSERT_SYS(rename(P("f").c_str(), P("g").c_str()));
  EXPECT_EQ(Get(P("g"), "user.keep"), "kept");
  ASSERT_SYS(mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(link(P("g").c_str(), P("d/h").c_str()));
  EXPECT_EQ(Get(P("d/h"), "user.keep"), "kept");
  // One inode: a change through either name is seen through the other.
  ASSERT_SYS(setxattr(P("d/h").c_str(), "user.added", "via h", 5, 0));
  EXPECT_EQ(Get(P("g"), "user.added"), "via h");
  ASSERT_SYS(unlink(P("g").c_str()));
  EXPECT_EQ(Names(P("d/h")), (std::set<std::string>{"user.added", "user.keep"}));
  // Across directories, and on a renamed directory.
  ASSERT_SYS(setxattr(P("d").c_str(), "user.dir", "d", 1, 0));
  ASSERT_SYS(rename(P("d").c_str(), P("e").c_str()));
  EXPECT_EQ(Get(P("e"), "user.dir"), "d");
  EXPECT_EQ(Get(P("e/h"), "user.keep"), "kept");
  // A file replaced by rename takes its attributes with it.
  MakeFile(P("other"));
  ASSERT_SYS(rename(P("other").c_str(), P("e/h").c_str()));
  EXPECT_TRUE(Names(P("e/h")).empty());
}

TEST_F(Xattrs, UnlinkedOpenFileKeepsThem) {
  ASSERT_SYS(setxattr(P("f").c_str(), "user.k", "v", 1, 0));
  ASSERT_OPEN(fd, open(P("f").c_str(), O_RDWR));
  ASSERT_SYS(unlink(P("f").c_str()));
  char buf[4];
  EXPECT_EQ(fgetxattr(fd.get(), "user.k", buf, sizeof buf), 1);
  EXPECT_SYS(fsetxattr(fd.get(), "user.k2", "w", 1, 0));
  EXPECT_EQ(fgetxattr(fd.get(), "user.k2", buf, sizeof buf), 1);
}

}  // namespace
}  // namespace posix
