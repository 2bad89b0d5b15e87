// The consistency checker (daxfs check): the pool's node-level check plus every cross-structure
// rule of the filesystem (entries, link counts, parents, sizes, extents, data space), the scrub
// of the reverse map and refcount tree against the extent maps and the chunk table, and of the
// poison tree. Read-only; reports every discrepancy with what and where. Works on a mount
// through fs::ScrubAccess; where online scrub will live.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "daxfs/filesystem.h"
#include "format/records.h"
#include "fs/scrubber.h"

namespace daxfs::scrub {

class Checker {
 public:
  explicit Checker(const fs::ScrubAccess& fs) : a_(fs) {}

  // Commits pending work first, then checks the committed state.
  Result<FsCheckResult> Run();

 private:
  // The scrub rules of the reverse map and refcount tree (`file_owners` from the extent walk).
  void CheckReverseMaps(const std::vector<format::RmapRecord>& file_owners,
                        const std::vector<format::RmapRecord>& rmap,
                        const std::vector<format::RefcountRecord>& refcounts,
                        FsCheckResult* result);
  // The poison tree (lost records, bad ranges, retired space) and the metadata damage
  // (`regular_files`: inode -> is a regular file; `used` in extent-key order).
  void CheckMediaDamage(const std::map<uint64_t, bool>& regular_files,
                        const std::vector<format::RmapRecord>& used,
                        const std::vector<format::LostRecord>& lost,
                        const std::vector<format::BadRecord>& bad_ranges,
                        const std::vector<format::RmapRecord>& retired, FsCheckResult* result);

  fs::ScrubAccess a_;
};

// Every difference between the reverse maps as they should be (`want_*`, sorted) and as they are
// (`have_*`, in tree order), one line each naming device blocks and owners.
void DiffReverseMaps(const std::vector<format::RmapRecord>& want_rmap,
                     const std::vector<format::RmapRecord>& have_rmap,
                     const std::vector<format::RefcountRecord>& want_refcount,
                     const std::vector<format::RefcountRecord>& have_refcount,
                     std::vector<std::string>* out);

}  // namespace daxfs::scrub
