// A kernel filesystem (XFS, btrfs) on a loop device over an image file in /dev/shm, for the
// scenario benchmarks' baselines: make, mount, and undo it all again, also from a SIGINT/SIGTERM
// handler. Shared by fs_bench, reflink_bench and dax_bench; knows nothing of daxfs beyond Status.
#pragma once

#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "daxfs/status.h"

extern char** environ;

namespace daxfs::bench {

inline Status Errno(const std::string& what) {
  int err = errno;
  return Status::Error(err, what + ": " + std::strerror(err));
}

// What a loop mount left outside the process, in fixed buffers so that a signal handler can undo
// it with async-signal-safe calls only (fork, execve, waitpid, unlink, rmdir). Each field is
// cleared once undone. One loop mount at a time per process.
struct LoopLeftovers {
  char umount_bin[64] = "";
  char losetup_bin[64] = "";
  char mount_dir[256] = "";
  char loop_dev[64] = "";
  char image[256] = "";
};
inline LoopLeftovers g_loop;

inline void SetField(char* field, size_t size, const std::string& value) {
  std::snprintf(field, size, "%s", value.c_str());
}

// Runs argv quietly (output to /dev/null); true on exit status 0. Async-signal-safe.
inline bool RunQuiet(const char* bin, const char* const* argv) {
  if (bin[0] == '\0') return false;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    execve(bin, const_cast<char* const*>(argv), environ);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Unmounts (lazily if it must), detaches the loop device and removes its image. Async-signal-safe;
// safe to call when nothing is mounted.
inline void CleanUpLoop() {
  LoopLeftovers& l = g_loop;
  if (l.mount_dir[0]) {
    const char* um[] = {"umount", l.mount_dir, nullptr};
    const char* lazy[] = {"umount", "-l", l.mount_dir, nullptr};
    if (RunQuiet(l.umount_bin, um) || RunQuiet(l.umount_bin, lazy)) {
      rmdir(l.mount_dir);
      l.mount_dir[0] = '\0';
    }
  }
  if (l.loop_dev[0]) {
    const char* detach[] = {"losetup", "-d", l.loop_dev, nullptr};
    RunQuiet(l.losetup_bin, detach);
    l.loop_dev[0] = '\0';
  }
  if (l.image[0]) {
    unlink(l.image);
    l.image[0] = '\0';
  }
}

// The full path of an executable in the usual system directories, or "".
inline std::string FindBinary(const std::string& name) {
  for (const char* d :
       {"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"}) {
    std::string p = std::string(d) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Runs argv (setup only) and returns its combined stdout and stderr, trailing blanks trimmed; EIO
// naming the command and its output when it fails.
inline Result<std::string> Run(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) return Errno("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    return Status::Error(err, argv[0] + ": " + std::strerror(err));
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return Status::Error(EIO, fmt::format("`{}` failed (status {}): {}", cmd, status, out));
  }
  return out;
}

// Makes `fstype` ("xfs": mkfs.xfs -f -m reflink=1,rmapbt=1; "btrfs": mkfs.btrfs -f) on a loop
// device over a sparse image of `size` bytes in `dir` (named <tool>-<fstype>-<pid>.img) and mounts
// it on a fresh directory /tmp/<tool>-<fstype>-XXXXXX, which it returns. Everything made is
// recorded in g_loop, also on failure: call CleanUpLoop() afterwards either way. Fails with the
// reason (not root, no loop devices, a tool missing) when it cannot be set up.
inline Result<std::string> MountLoop(const std::string& tool, const std::string& dir,
                                     const std::string& fstype, uint64_t size) {
  if (geteuid() != 0) return Status::Error(EPERM, "not root (losetup and mount need root)");
  if (access("/dev/loop-control", F_OK) != 0) return Status::NotFound("no /dev/loop-control");
  std::string mkfs = FindBinary("mkfs." + fstype);
  if (mkfs.empty()) {
    std::string package = fstype == "xfs" ? "xfsprogs" : fstype == "btrfs" ? "btrfs-progs" : fstype;
    return Status::NotFound(fmt::format("mkfs.{} not found (install {})", fstype, package));
  }
  std::string losetup = FindBinary("losetup"), umount = FindBinary("umount");
  if (losetup.empty() || umount.empty()) return Status::NotFound("losetup or umount not found");
  SetField(g_loop.losetup_bin, sizeof g_loop.losetup_bin, losetup);
  SetField(g_loop.umount_bin, sizeof g_loop.umount_bin, umount);

  std::string image = fmt::format("{}/{}-{}-{}.img", dir, tool, fstype, getpid());
  int fd = open(image.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return Errno("create " + image);
  SetField(g_loop.image, sizeof g_loop.image, image);
  bool sized = ftruncate(fd, static_cast<off_t>(size)) == 0;
  close(fd);
  if (!sized) return Errno("truncate " + image);

  ASSIGN_OR_RETURN(std::string loop, Run({losetup, "--find", "--show", image}));
  if (loop.rfind("/dev/loop", 0) != 0) return Status::IoError("losetup printed " + loop);
  SetField(g_loop.loop_dev, sizeof g_loop.loop_dev, loop);
  if (fstype == "xfs") {
    RETURN_IF_ERROR(Run({mkfs, "-f", "-m", "reflink=1,rmapbt=1", loop}).status());
  } else {
    RETURN_IF_ERROR(Run({mkfs, "-f", loop}).status());
  }

  std::string tmpl = fmt::format("/tmp/{}-{}-XXXXXX", tool, fstype);
  if (mkdtemp(tmpl.data()) == nullptr) return Errno("mkdtemp");
  auto mounted = Run({"mount", "-t", fstype, loop, tmpl});
  if (!mounted.ok()) {
    rmdir(tmpl.c_str());
    return mounted.status();
  }
  SetField(g_loop.mount_dir, sizeof g_loop.mount_dir, tmpl);
  return tmpl;
}

}  // namespace daxfs::bench
