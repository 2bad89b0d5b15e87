// Parses `daxfs mount -o` lists and builds the option string libfuse receives.
// Knows nothing about the engine or about libfuse calls.
#include "options.h"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace daxfs::fusefs {
namespace {

// Standard mount flags that reach the kernel unchanged and change nothing daxfs promises.
constexpr std::string_view kPassThrough[] = {
    "nodev",    "dev",        "nosuid",      "suid",          "noexec",       "exec",
    "noatime",  "atime",      "relatime",    "norelatime",    "nodiratime",   "diratime",
    "lazytime", "nolazytime", "strictatime", "nostrictatime", "auto_unmount",
};

// Splits at commas; a backslash keeps the next character (so "fsname=a\,b" is one option).
std::vector<std::string> SplitOptions(std::string_view list) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] == '\\' && i + 1 < list.size()) {
      out.back() += list[++i];
    } else if (list[i] == ',') {
      out.emplace_back();
    } else {
      out.back() += list[i];
    }
  }
  return out;
}

Status Bad(std::string_view option, std::string_view why) {
  return Status::Invalid(fmt::format("-o {}: {}", option, why));
}

Result<uint32_t> ParseCount(std::string_view option, std::string_view value, uint32_t min,
                            uint32_t max) {
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return Bad(option, fmt::format("'{}' is not a whole number", value));
  }
  if (n < min || n > max) return Bad(option, fmt::format("must be from {} to {}", min, max));
  return n;
}

Result<double> ParseSeconds(std::string_view option, std::string_view value) {
  std::string text(value);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0 ||
      v > 86400 * 365.0) {
    return Bad(option, fmt::format("'{}' is not a number of seconds", value));
  }
  return v;
}

std::string EscapeOption(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

Status ApplyOne(const std::string& option, MountConfig* c) {
  size_t eq = option.find('=');
  std::string_view key = std::string_view(option).substr(0, eq);
  std::string_view value =
      eq == std::string::npos ? std::string_view() : std::string_view(option).substr(eq + 1);
  const bool has_value = eq != std::string::npos;
  auto flag = [&](bool* field, bool v) -> Status {
    if (has_value) return Bad(option, "takes no value");
    *field = v;
    return Status::Ok();
  };
  if (key.empty()) return Status::Ok();  // "ro,,sync" or a trailing comma
  if (key == "ro") return flag(&c->read_only, true);
  if (key == "rw") return flag(&c->read_only, false);
  if (key == "sync") return flag(&c->sync, true);
  if (key == "async") return flag(&c->sync, false);
  if (key == "default_permissions") return flag(&c->default_permissions, true);
  if (key == "no_default_permissions") return flag(&c->default_permissions, false);
  if (key == "allow_other") return flag(&c->allow_other, true);
  if (key == "debug") return flag(&c->debug, true);
  if (key == "defaults") return has_value ? Bad(option, "takes no value") : Status::Ok();
  if (key == "commit") {
    ASSIGN_OR_RETURN(uint32_t s, ParseCount(option, value, 0, 86400));
    c->commit_seconds = s == 0 ? 5 : s;  // as ext4: 0 means the default
    return Status::Ok();
  }
  if (key == "commit_ops") {
    ASSIGN_OR_RETURN(c->commit_ops, ParseCount(option, value, 1, 1 << 20));
    return Status::Ok();
  }
  if (key == "max_threads") {
    ASSIGN_OR_RETURN(c->max_threads, ParseCount(option, value, 1, 256));
    return Status::Ok();
  }
  if (key == "timeout") {
    ASSIGN_OR_RETURN(c->timeout, ParseSeconds(option, value));
    return Status::Ok();
  }
  if (key == "fsname") {
    if (value.empty()) return Bad(option, "needs a name");
    c->fsname = std::string(value);
    return Status::Ok();
  }
  if (key == "log") {
    if (value.empty()) return Bad(option, "needs a file name");
    c->log_file = std::string(value);
    return Status::Ok();
  }
  if (key == "socket") {
    c->serve_clients = true;
    c->socket = std::string(value);
    return Status::Ok();
  }
  if (key == "dirsync") {
    return Bad(option, "not supported: use -o sync to make every operation durable on return");
  }
  if (std::find(std::begin(kPassThrough), std::end(kPassThrough), key) != std::end(kPassThrough)) {
    if (has_value) return Bad(option, "takes no value");
    c->kernel_flags.emplace_back(key);
    return Status::Ok();
  }
  return Status::Invalid(
      fmt::format("-o {}: unknown mount option (see 'daxfs mount --help')", option));
}

}  // namespace

Status ApplyOptions(std::string_view list, MountConfig* config) {
  for (const std::string& option : SplitOptions(list)) RETURN_IF_ERROR(ApplyOne(option, config));
  return Status::Ok();
}

Status ValidateConfig(const MountConfig& config) {
  if (!config.default_permissions && config.allow_other) {
    return Status::Invalid(
        "-o no_default_permissions with allow_other: nothing would check permissions, so every "
        "user could change every file (drop one of them)");
  }
  return Status::Ok();
}

std::string FuseOptionString(const MountConfig& config) {
  std::string s =
      fmt::format("fsname={},subtype=daxfs,max_read={}",
                  EscapeOption(config.fsname.empty() ? config.image : config.fsname), kMaxIoBytes);
  if (config.default_permissions) s += ",default_permissions";
  if (config.allow_other) s += ",allow_other";
  if (config.read_only) s += ",ro";
  for (const std::string& f : config.kernel_flags) s += "," + f;
  return s;
}

const char* OptionsHelp() {
  return R"(Mount options (-o, comma separated; later ones win):
  ro / rw                 read-only (the image is opened read-only too) / read-write (default)
  sync                    every operation is durable when it returns
  async                   group commit (default): operations become durable together, every
                          commit= seconds, after commit_ops= operations, and at every
                          fsync, fdatasync, fsyncdir or unmount (each commits everything before it)
  commit=SECONDS          group commit interval (default 5, like ext4; 0 means the default)
  commit_ops=N            also commit after N operations (default 1024)
  default_permissions     the kernel checks permissions from mode, owner and group (default)
  no_default_permissions  nothing checks permissions (only the mounting user can reach the
                          mount; not allowed with allow_other)
  allow_other             let every user reach the mount (permissions still apply)
  max_threads=N           threads serving requests (default 16, at most 256)
  timeout=SECONDS         how long the kernel caches names and attributes (default 60;
                          the daemon is the only writer, so cached answers stay right)
  fsname=NAME             the source shown in /proc/mounts (default: the image path;
                          'daxfs umount' waits for the image only when this is the image path)
  log=FILE                daemon mode: append the daemon's messages to FILE (default: discard)
  socket[=PATH]           also serve client processes that map files directly on this Unix
                          socket (default IMAGE.sock), as 'daxfs serve' does; a mount reader
                          then sees a client's stores from its next open of the file
  debug                   print every request (libfuse's trace); implies -f
  nodev, nosuid, noexec, noatime, relatime, lazytime, auto_unmount (and their opposites):
                          standard flags, passed to the kernel)";
}

}  // namespace daxfs::fusefs
