// Mounting with check and repair (mount.h), and the public factories of daxfs/filesystem.h that
// need them.
#include "scrub/mount.h"

#include "device/device.h"
#include "fs/fs_impl.h"
#include "fs/scrubber.h"
#include "scrub/check.h"
#include "scrub/online.h"
#include "scrub/repair.h"

namespace daxfs {
namespace scrub {
namespace {

class FsScrubber final : public fs::Scrubber {
 public:
  Result<FsCheckResult> Check(const fs::ScrubAccess& fs) override { return Checker(fs).Run(); }
  Result<RepairReport> RebuildReverseMaps(const fs::ScrubAccess& fs) override {
    return Repairer(fs).Run();
  }
  Result<ScrubReport> Scrub(const fs::ScrubAccess& fs, const ScrubOptions& options,
                            const fs::ScrubRoute& route) override {
    return OnlineScrub(fs, options, route).Run();
  }
};

// The scrub layer's half of a mount: check and repair (stateless; one for every mount).
fs::Scrubber* TheScrubber() {
  static FsScrubber scrubber;
  return &scrubber;
}

}  // namespace

Result<std::unique_ptr<fs::FsFace>> Mount(device::Device* device,
                                          std::unique_ptr<device::Device> owned,
                                          const MountOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<fs::FsImpl> fs,
                   fs::FsImpl::Mount(device, std::move(owned), options, TheScrubber()));
  return std::unique_ptr<fs::FsFace>(std::move(fs));
}

}  // namespace scrub

Result<std::unique_ptr<Filesystem>> Filesystem::Open(const std::string& path,
                                                     const MountOptions& options) {
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path, {.read_only = options.read_only}));
  device::Device* raw = dev.get();
  Result<std::unique_ptr<fs::FsFace>> fs = scrub::Mount(raw, std::move(dev), options);
  if (!fs.ok()) return fs.status().WithContext(path);
  return std::unique_ptr<Filesystem>(std::move(*fs));
}

Result<std::unique_ptr<Filesystem>> Filesystem::Open(device::Device* device,
                                                     const MountOptions& options) {
  ASSIGN_OR_RETURN(auto fs, scrub::Mount(device, nullptr, options));
  return std::unique_ptr<Filesystem>(std::move(fs));
}

}  // namespace daxfs
