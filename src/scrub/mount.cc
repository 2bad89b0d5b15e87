// Mounting with check and repair (mount.h), and the public factories of daxfs/filesystem.h that
// need them.
#include "scrub/mount.h"

#include "device/device.h"
#include "scrub/check.h"
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
};

}  // namespace

fs::Scrubber* TheScrubber() {
  static FsScrubber scrubber;
  return &scrubber;
}

Result<std::unique_ptr<fs::FsImpl>> Mount(device::Device* device,
                                          std::unique_ptr<device::Device> owned,
                                          const MountOptions& options) {
  return fs::FsImpl::Mount(device, std::move(owned), options, TheScrubber());
}

}  // namespace scrub

Result<std::unique_ptr<Filesystem>> Filesystem::Open(const std::string& path,
                                                     const MountOptions& options) {
  ASSIGN_OR_RETURN(auto dev, device::OpenDevice(path, {.read_only = options.read_only}));
  device::Device* raw = dev.get();
  Result<std::unique_ptr<fs::FsImpl>> fs = scrub::Mount(raw, std::move(dev), options);
  if (!fs.ok()) return fs.status().WithContext(path);
  return std::unique_ptr<Filesystem>(std::move(*fs));
}

Result<std::unique_ptr<Filesystem>> Filesystem::Open(device::Device* device,
                                                     const MountOptions& options) {
  ASSIGN_OR_RETURN(auto fs, scrub::Mount(device, nullptr, options));
  return std::unique_ptr<Filesystem>(std::move(fs));
}

}  // namespace daxfs
