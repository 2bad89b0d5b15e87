// The FUSE front end's commands: mount (serve an image on a directory until unmounted), umount,
// and inject-error on a mounted image (through the daemon). The work is in fuse/ (daemon.h,
// control.h); this file only parses arguments. Uses only include/daxfs/ and fuse/.
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "cli.h"
#include "fuse/control.h"
#include "fuse/daemon.h"
#include "fuse/mountinfo.h"
#include "fuse/options.h"

namespace daxfs::cli {
namespace {

struct MountArgs {
  std::string image, mountpoint;
  std::vector<std::string> options;
  bool foreground = false, debug = false;
};

Status RunMount(const MountArgs& a) {
  fusefs::MountConfig c;
  c.image = a.image;
  c.mountpoint = a.mountpoint;
  for (const std::string& list : a.options) RETURN_IF_ERROR(fusefs::ApplyOptions(list, &c));
  c.foreground = c.foreground || a.foreground;
  c.debug = c.debug || a.debug;
  return fusefs::Mount(c);
}

struct UmountArgs {
  std::string mountpoint;
  bool lazy = false;
};

}  // namespace

Runner SetupMount(CLI::App* sub) {
  auto a = std::make_shared<MountArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("MOUNTPOINT", a->mountpoint, "An existing directory to mount the image on")
      ->required();
  sub->add_option("-o", a->options, "Mount options, comma separated (below); may be repeated");
  sub->add_flag("-f,--foreground", a->foreground,
                "Stay in the foreground (default: become a daemon once mounted)");
  sub->add_flag("-d,--debug", a->debug, "Print every request (implies -f)");
  sub->footer(fmt::format(
      "{}\n\nThe image stays open (and locked) until the mount goes away ('daxfs umount "
      "MOUNTPOINT',\n'fusermount3 -u MOUNTPOINT', or SIGINT/SIGTERM to the daemon); then it is "
      "unmounted cleanly.\nWithout -f, the command returns once the daemon has mounted; an error "
      "before that is\nprinted here, exit code 1. README.md, 'Mounting', tells about durability "
      "and crashes.\n\n{}",
      fusefs::OptionsHelp(), sub->get_footer()));
  return [a](Reporter&) { return RunMount(*a); };
}

Runner SetupUmount(CLI::App* sub) {
  auto a = std::make_shared<UmountArgs>();
  sub->add_option("MOUNTPOINT", a->mountpoint, "Where a daxfs image is mounted")->required();
  sub->add_flag("-l,--lazy", a->lazy,
                "Detach now even if busy; the daemon unmounts the image when the last user is "
                "done (no waiting)");
  sub->footer(fmt::format(
      "Unlike fusermount3 -u, waits until the daemon has unmounted the image cleanly (when the "
      "mount's source is the image path, the default fsname).\n\n{}",
      sub->get_footer()));
  return [a](Reporter&) { return fusefs::Unmount(a->mountpoint, a->lazy); };
}

bool IsDaxfsMount(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) return false;
  Result<std::vector<fusefs::MountEntry>> mounts = fusefs::ReadMountInfo();
  if (!mounts.ok()) return false;
  const fusefs::MountEntry* top = fusefs::FindMount(*mounts, real);
  return top != nullptr && top->fstype == fusefs::kDaxfsFsType;
}

Status InjectErrorThroughMount(const std::string& mountpoint, const std::string& offset,
                               const std::string& length, const std::string& at, bool latent) {
  fusefs::InjectErrorIoctl io;
  std::string target = mountpoint;
  if (!at.empty()) {
    size_t colon = at.rfind(':');
    if (colon == std::string::npos)
      return Status::Invalid(fmt::format("'{}' is not PATH:OFFSET", at));
    RETURN_IF_ERROR(CheckAbsolute(at.substr(0, colon)));
    target = JoinPath(mountpoint, at.substr(1, colon - 1));
    ASSIGN_OR_RETURN(io.offset, ParseSizeArg("--at", at.substr(colon + 1)));
    io.flags = fusefs::kInjectAtFileOffset;
  } else {
    ASSIGN_OR_RETURN(io.offset, ParseSizeArg("--offset", offset));
  }
  ASSIGN_OR_RETURN(io.length, ParseSizeArg("--length", length));
  if (latent) io.flags |= fusefs::kInjectLatent;
  int fd = ::open(target.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return HostError(target, errno);
  int rc = ::ioctl(fd, fusefs::kIocInjectError, &io);
  int err = errno;
  ::close(fd);
  if (rc != 0) return At(target, Errno(err, "inject-error through the daxfs daemon"));
  if (latent) {
    fmt::print("device bytes {}+{} marked bad (latent: not routed) by the daemon of {}\n",
               io.offset, io.length, mountpoint);
    return Status::Ok();
  }
  fmt::print("media failure at device bytes {}+{}, simulated, routed by the daemon of {}\n",
             io.offset, io.length, mountpoint);
  fmt::print("  file owners that lost data: {}\n", io.owners);
  if (io.shut_down) fmt::print("  - metadata hit: the filesystem is now read-only\n");
  fmt::print("  (the whole report is in the daemon's event log)\n");
  return Status::Ok();
}

}  // namespace daxfs::cli
