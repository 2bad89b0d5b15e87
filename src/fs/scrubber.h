// What the filesystem needs from the scrub layer above it (src/scrub): the consistency check and
// the offline repair of the reverse maps, handed in at mount (the scrub layer's factory mounts
// with it). And what that layer works with: the mount's operation runner and modules
// (ScrubAccess). The fs layer knows no checker or repair beyond this interface.
#pragma once

#include <functional>

#include "daxfs/filesystem.h"
#include "daxfs/scrub.h"
#include "fs/face.h"

namespace daxfs::txn {
class Pool;
}

namespace daxfs::fs {

class DataSpace;
class MetadataRepairs;
class OpRunner;
class Owners;
class PoisonIndex;

// The parts of a mounted filesystem that checking and repair read (and repair changes).
struct ScrubAccess {
  OpRunner* runner;
  txn::Pool* pool;
  DataSpace* data;
  const PoisonIndex* poison;
  const Owners* owners;
  const MetadataRepairs* repairs;
  bool has_rmap;
  bool has_reflink;
};

class Scrubber {
 public:
  virtual ~Scrubber() = default;
  // Filesystem::Check and Filesystem::RebuildReverseMaps of the mount `fs`.
  virtual Result<FsCheckResult> Check(const ScrubAccess& fs) = 0;
  virtual Result<RepairReport> RebuildReverseMaps(const ScrubAccess& fs) = 0;
  // FsFace::Scrub: the online scrub (src/scrub/online.cc).
  virtual Result<ScrubReport> Scrub(const ScrubAccess& fs, const ScrubOptions& options,
                                    const ScrubRoute& route) = 0;
};

}  // namespace daxfs::fs
