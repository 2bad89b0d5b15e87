// Offline repair of the reverse map and the refcount tree (daxfs repair), as xfs_repair rebuilds
// its rmapbt and refcountbt: the extent maps and the chunk table are the truth; both trees are
// emptied and rebuilt from them in one write operation. Works on a mount through
// fs::ScrubAccess.
#pragma once

#include <cstdint>
#include <vector>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/op.h"
#include "fs/scrubber.h"

namespace daxfs::scrub {

class Repairer {
 public:
  explicit Repairer(const fs::ScrubAccess& fs) : a_(fs) {}

  Result<RepairReport> Run();

 private:
  // Makes sure the pool can give the nodes of deleting every record of the rmap and refcount
  // trees and inserting `rmap_records` and `refcount_records` new ones.
  Status ReserveRebuild(fs::WriteOp& op, uint64_t rmap_records, uint64_t refcount_records);
  // Makes the data allocator's free space (built at mount from the reverse map as it was) the
  // DATA chunks minus `file_owners`. Offline only: leaked blocks are given back only when
  // nothing is deferred.
  void ResyncDataSpace(const std::vector<format::RmapRecord>& file_owners);

  fs::ScrubAccess a_;
};

}  // namespace daxfs::scrub
