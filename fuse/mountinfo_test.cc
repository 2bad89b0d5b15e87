// Parsing /proc/self/mountinfo: fields, optional tags, escapes, the topmost mount.
#include "mountinfo.h"

#include <gtest/gtest.h>

namespace daxfs::fusefs {
namespace {

TEST(MountInfo, ParsesFieldsTagsAndEscapes) {
  const char* text =
      "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
      "90 22 0:52 / /mnt/my\\040dir rw,nosuid,nodev,relatime shared:40 master:2 - fuse.daxfs "
      "/dev/shm/a\\040b.img rw,user_id=0,group_id=0,default_permissions\n"
      "garbage line\n"
      "91 90 0:53 / /mnt/my\\040dir rw - fuse.daxfs /dev/shm/c.img rw\n";
  std::vector<MountEntry> m = ParseMountInfo(text);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].mount_point, "/proc");
  EXPECT_EQ(m[0].fstype, "proc");
  EXPECT_EQ(m[1].mount_point, "/mnt/my dir");
  EXPECT_EQ(m[1].fstype, kDaxfsFsType);
  EXPECT_EQ(m[1].source, "/dev/shm/a b.img");
  EXPECT_EQ(m[1].major, 0u);
  EXPECT_EQ(m[1].minor, 52u);
  const MountEntry* top = FindMount(m, "/mnt/my dir");
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(top->source, "/dev/shm/c.img");
  EXPECT_EQ(FindMount(m, "/mnt"), nullptr);
}

TEST(MountInfo, ReadsThisProcess) {
  Result<std::vector<MountEntry>> m = ReadMountInfo();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_NE(FindMount(*m, "/"), nullptr);
}

}  // namespace
}  // namespace daxfs::fusefs
