// The `daxfs mount` options: comma-separated -o lists parsed into one MountConfig, and the option
// string libfuse and the kernel receive. Knows nothing about the engine or about libfuse calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::fusefs {

inline constexpr uint32_t kMaxIoBytes = 1 << 20;  // max_read / max_write / readahead: 1 MiB

struct MountConfig {
  std::string image;       // the image or device, absolute
  std::string mountpoint;  // absolute
  bool foreground = false;
  bool debug = false;  // libfuse's request trace and the adapter's debug log; implies foreground
  bool read_only = false;
  bool sync = false;                // every operation durable on return (Durability::kOnReturn)
  uint32_t commit_seconds = 5;      // group commit interval (ext4's commit=)
  uint32_t commit_ops = 1024;       // ... and a commit after this many operations
  bool default_permissions = true;  // the kernel checks permissions from mode, uid and gid
  bool allow_other = false;
  uint32_t max_threads = 16;              // request threads of fuse_session_loop_mt
  double timeout = 60.0;                  // entry and attribute cache timeout, seconds
  std::string fsname;                     // the source in /proc/mounts; empty: the image path
  std::string log_file;                   // daemon mode: stderr goes here (empty: /dev/null)
  // -o socket[=PATH]: also serve client processes (include/daxfs/client.h) on this Unix socket,
  // as `daxfs serve` does (empty with serve_clients: IMAGE.sock).
  bool serve_clients = false;
  std::string socket;
  std::vector<std::string> kernel_flags;  // standard flags passed through (nodev, noexec, ...)
};

// Applies one -o list ("ro,commit=10,allow_other") to `config`, left to right. EINVAL naming
// the bad option; `config` may then be partly changed (callers give up on error).
Status ApplyOptions(std::string_view list, MountConfig* config);

// Checks combinations that are wrong whatever the order (EINVAL).
Status ValidateConfig(const MountConfig& config);

// The "-o" string for fuse_session_new: fsname, subtype=daxfs, max_read and the kernel options.
std::string FuseOptionString(const MountConfig& config);

// The option list for `daxfs mount --help`, one line each.
const char* OptionsHelp();

}  // namespace daxfs::fusefs
