// Who may do what: a peer's credentials (SO_PEERCRED plus supplementary groups) checked against
// an owner, group and mode the way Linux's generic_permission does, including root's bypass.
// Pure: knows nothing of sockets, sessions or the engine.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace daxfs::serve {

struct Credentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)
  bool InGroup(gid_t g) const;
  std::string Describe() const;  // "pid 123 uid 1000 gid 1000"
};

enum Access : uint32_t { kMayExec = 1, kMayWrite = 2, kMayRead = 4 };

// generic_permission: the owner class if uid matches, else the group class if the gid or a
// supplementary group matches, else other; every bit of `want` must be granted by that class.
// uid 0 may read and write anything, search every directory, and execute a file with any x bit.
bool MayAccess(const Credentials& who, uint32_t uid, uint32_t gid, uint32_t mode, uint32_t want,
               bool is_directory);

// "rwxr-x---" for the low nine bits.
std::string ModeString(uint32_t mode);

}  // namespace daxfs::serve
