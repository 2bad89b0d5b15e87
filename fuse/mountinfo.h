// /proc/self/mountinfo as a list of mounts: where, what type, from which source. Used to refuse
// a second mount on a daxfs mount point and by `daxfs umount`. Knows nothing about the engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::fusefs {

struct MountEntry {
  std::string mount_point;  // unescaped
  std::string fstype;       // "fuse.daxfs" for daxfs mounts
  std::string source;       // unescaped; daxfs: the fsname (the image path by default)
  unsigned major = 0;       // FUSE: 0 and the connection number (/sys/fs/fuse/connections/N)
  unsigned minor = 0;
};

inline constexpr std::string_view kDaxfsFsType = "fuse.daxfs";

// Lines that do not parse are skipped.
std::vector<MountEntry> ParseMountInfo(std::string_view text);
Result<std::vector<MountEntry>> ReadMountInfo();
// The topmost mount at `mount_point` (an absolute, canonical path), if any.
const MountEntry* FindMount(const std::vector<MountEntry>& mounts, std::string_view mount_point);

}  // namespace daxfs::fusefs
