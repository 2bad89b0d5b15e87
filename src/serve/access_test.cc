// Permission checks of the daemon against Linux's generic_permission rules.
#include "serve/access.h"

#include <gtest/gtest.h>

namespace daxfs::serve {
namespace {

TEST(Access, OwnerGroupOtherClasses) {
  Credentials alice{1, 1000, 1000, {}};
  EXPECT_TRUE(MayAccess(alice, 1000, 0, 0600, kMayRead | kMayWrite, false));
  EXPECT_FALSE(MayAccess(alice, 1000, 0, 0066, kMayRead, false));  // owner class decides
  EXPECT_TRUE(MayAccess(alice, 0, 1000, 0040, kMayRead, false));
  EXPECT_FALSE(MayAccess(alice, 0, 1000, 0040, kMayWrite, false));
  EXPECT_TRUE(MayAccess(alice, 0, 0, 0004, kMayRead, false));
  EXPECT_FALSE(MayAccess(alice, 0, 0, 0640, kMayRead, false));
  Credentials bob{2, 1001, 1001, {1000, 6}};
  EXPECT_TRUE(MayAccess(bob, 0, 6, 0060, kMayRead | kMayWrite, false));  // supplementary group
}

TEST(Access, RootBypassesExceptExecuteWithoutAnyXBit) {
  Credentials root{1, 0, 0, {}};
  EXPECT_TRUE(MayAccess(root, 1000, 1000, 0000, kMayRead | kMayWrite, false));
  EXPECT_TRUE(MayAccess(root, 1000, 1000, 0000, kMayExec, true));
  EXPECT_FALSE(MayAccess(root, 1000, 1000, 0644, kMayExec, false));
  EXPECT_TRUE(MayAccess(root, 1000, 1000, 0744, kMayExec, false));
}

TEST(Access, ModeString) {
  EXPECT_EQ(ModeString(0750), "rwxr-x---");
  EXPECT_EQ(ModeString(0100644), "rw-r--r--");
}

}  // namespace
}  // namespace daxfs::serve
