// `daxfs mount -o` parsing: every option, bad values and the string libfuse receives.
#include "options.h"

#include <gtest/gtest.h>

#include "status_assert.h"

namespace daxfs::fusefs {
namespace {

TEST(MountOptions, DefaultsAreGroupCommitEveryFiveSecondsWithKernelPermissions) {
  MountConfig c;
  EXPECT_FALSE(c.read_only);
  EXPECT_FALSE(c.sync);
  EXPECT_EQ(c.commit_seconds, 5u);
  EXPECT_TRUE(c.default_permissions);
  EXPECT_FALSE(c.allow_other);
}

TEST(MountOptions, AppliesEveryOptionLeftToRight) {
  MountConfig c;
  ASSERT_OK(
      ApplyOptions("ro,sync,commit=10,commit_ops=64,allow_other,max_threads=4,timeout=0.5,"
                   "fsname=pool,log=/tmp/x.log,nodev,noexec",
                   &c));
  EXPECT_TRUE(c.read_only);
  EXPECT_TRUE(c.sync);
  EXPECT_EQ(c.commit_seconds, 10u);
  EXPECT_EQ(c.commit_ops, 64u);
  EXPECT_TRUE(c.allow_other);
  EXPECT_EQ(c.max_threads, 4u);
  EXPECT_DOUBLE_EQ(c.timeout, 0.5);
  EXPECT_EQ(c.fsname, "pool");
  EXPECT_EQ(c.log_file, "/tmp/x.log");
  EXPECT_EQ(c.kernel_flags, (std::vector<std::string>{"nodev", "noexec"}));
  ASSERT_OK(ApplyOptions("rw,async,commit=0", &c));
  EXPECT_FALSE(c.read_only);
  EXPECT_FALSE(c.sync);
  EXPECT_EQ(c.commit_seconds, 5u) << "commit=0 means the default, as on ext4";
}

TEST(MountOptions, BadOptionsAreNamed) {
  MountConfig c;
  struct Case {
    const char* list;
    const char* says;
  } cases[] = {
      {"bogus", "-o bogus: unknown mount option"},
      {"commit=abc", "-o commit=abc: 'abc' is not a whole number"},
      {"commit=-1", "is not a whole number"},
      {"commit=100000", "must be from 0 to 86400"},
      {"max_threads=0", "must be from 1 to 256"},
      {"timeout=x", "is not a number of seconds"},
      {"timeout=-1", "is not a number of seconds"},
      {"ro=1", "takes no value"},
      {"nodev=1", "takes no value"},
      {"fsname=", "needs a name"},
      {"dirsync", "use -o sync"},
  };
  for (const Case& k : cases) {
    Status s = ApplyOptions(k.list, &c);
    EXPECT_ERRNO(s, EINVAL) << k.list;
    EXPECT_NE(s.message().find(k.says), std::string::npos) << k.list << ": " << s.message();
  }
}

TEST(MountOptions, EmptyItemsAndEscapedCommas) {
  MountConfig c;
  ASSERT_OK(ApplyOptions(",ro,,fsname=a\\,b,", &c));
  EXPECT_TRUE(c.read_only);
  EXPECT_EQ(c.fsname, "a,b");
}

TEST(MountOptions, NoPermissionChecksWithAllowOtherIsRefused) {
  MountConfig c;
  ASSERT_OK(ApplyOptions("no_default_permissions", &c));
  EXPECT_OK(ValidateConfig(c));
  ASSERT_OK(ApplyOptions("allow_other", &c));
  EXPECT_ERRNO(ValidateConfig(c), EINVAL);
}

TEST(MountOptions, FuseOptionString) {
  MountConfig c;
  c.image = "/dev/shm/a,b.img";
  EXPECT_EQ(FuseOptionString(c),
            "fsname=/dev/shm/a\\,b.img,subtype=daxfs,max_read=1048576,default_permissions");
  ASSERT_OK(ApplyOptions("ro,allow_other,fsname=pool,noatime,no_default_permissions", &c));
  EXPECT_EQ(FuseOptionString(c),
            "fsname=pool,subtype=daxfs,max_read=1048576,allow_other,ro,noatime");
}

}  // namespace
}  // namespace daxfs::fusefs
