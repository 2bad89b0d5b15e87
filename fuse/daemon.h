// `daxfs mount` and `daxfs umount`: the daemon's life from options to a clean unmount of the
// image, the start-up handshake that brings mount errors back to the invoking shell, and the
// unmount that waits until the daemon has let go of the image. Knows libfuse's session API,
// include/daxfs/ and the adapter; nothing about the command line.
#pragma once

#include <string>

#include "daxfs/status.h"
#include "options.h"

namespace daxfs::fusefs {

// Mounts `config.image` on `config.mountpoint` and serves requests until the mount goes away
// (fusermount3 -u, daxfs umount, umount) or SIGINT / SIGTERM / SIGHUP; then the kernel mount and
// the image are unmounted cleanly. Foreground: returns when done. Daemon mode: forks; the parent
// returns as soon as the daemon reports "mounted" or its error. Warnings (a read-only fallback
// and why, bad blocks routed at mount) are printed to stderr as "daxfs: mount: ...".
Status Mount(const MountConfig& config);

// Unmounts the daxfs mount at `mountpoint` (umount2 as root, fusermount3 -u otherwise) and, unless
// `lazy`, waits until its daemon has unmounted the image (the image's lock is free), so the next
// command on the image finds it clean. `lazy`: detach now, the daemon finishes when the last
// user of the mount goes away.
Status Unmount(const std::string& mountpoint, bool lazy);

}  // namespace daxfs::fusefs
