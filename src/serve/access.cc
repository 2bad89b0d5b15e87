// Permission checks of the daemon (access.h), after Linux's generic_permission.
#include "serve/access.h"

#include <algorithm>

namespace daxfs::serve {

bool Credentials::InGroup(gid_t g) const {
  return gid == g || std::find(groups.begin(), groups.end(), g) != groups.end();
}

std::string Credentials::Describe() const {
  return "pid " + std::to_string(pid) + " uid " + std::to_string(uid) + " gid " +
         std::to_string(gid);
}

bool MayAccess(const Credentials& who, uint32_t uid, uint32_t gid, uint32_t mode, uint32_t want,
               bool is_directory) {
  want &= 7;
  if (who.uid == 0) {
    if ((want & kMayExec) == 0 || is_directory) return true;
    return (mode & 0111) != 0;
  }
  uint32_t granted;
  if (who.uid == uid) {
    granted = (mode >> 6) & 7;
  } else if (who.InGroup(gid)) {
    granted = (mode >> 3) & 7;
  } else {
    granted = mode & 7;
  }
  return (granted & want) == want;
}

std::string ModeString(uint32_t mode) {
  std::string s = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if ((mode & (1u << (8 - i))) == 0) s[i] = '-';
  }
  return s;
}

}  // namespace daxfs::serve
