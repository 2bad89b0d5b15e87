// Mounting the whole filesystem: the fs engine with the scrub layer's checker and repair
// (src/scrub is the top of the filesystem stack). Filesystem::Open (daxfs/filesystem.h) and
// the DAX engine mount through here.
#pragma once

#include <memory>

#include "daxfs/filesystem.h"
#include "fs/face.h"

namespace daxfs::scrub {

// Mounts the filesystem on `device` with check and repair. `owned` (may be null) is kept alive
// as long as the filesystem.
Result<std::unique_ptr<fs::FsFace>> Mount(device::Device* device,
                                          std::unique_ptr<device::Device> owned,
                                          const MountOptions& options);

}  // namespace daxfs::scrub
