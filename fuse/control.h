// Requests to a running daxfs daemon, carried as ioctls on a file or directory of its mount
// (FUSE hands an ioctl with a fixed-size argument to the daemon). Shared by the daemon and the
// `daxfs` command; a plain layout with no engine types.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>

namespace daxfs::fusefs {

// inject-error on a mounted image: mark device bytes bad (emulated poison) and route the failure
// through the daemon's DaxFs, as `daxfs inject-error` does on an unmounted image.
struct InjectErrorIoctl {
  uint64_t offset = 0;     // in: device offset, or file offset with kInjectAtFileOffset;
                           // out: the device offset routed
  uint64_t length = 0;     // in: bytes (whole 4 KiB blocks are marked); out: device bytes routed
  uint32_t flags = 0;      // in: kInject*
  uint32_t owners = 0;     // out: file owners that lost data
  uint32_t shut_down = 0;  // out: 1 when metadata was hit (the filesystem is now read-only)
  uint32_t reserved = 0;
};
static_assert(sizeof(InjectErrorIoctl) == 32);

// `offset` is a byte of the file the ioctl is issued on: the block behind it is made bad.
inline constexpr uint32_t kInjectAtFileOffset = 1;

inline constexpr unsigned long kIocInjectError = _IOWR('x', 0xd1, InjectErrorIoctl);

}  // namespace daxfs::fusefs
