// The fs-rmap design (chosen upstream): nothing is tracked per mapping or per page; at failure
// time the filesystem's reverse map names every (file, offset) owner of the bad range and each
// owner file's mapping index names the mapped pages. With `full_scan`, the owners come from
// scanning every extent map instead (the no-rmap baseline).
#pragma once

#include <memory>

#include "dax/mapping_table.h"
#include "dax/tracker.h"

namespace daxfs::dax {

std::unique_ptr<OwnerTracker> NewFsRmapTracker(fs::FsImpl* fs, const MappingTable* table,
                                               bool full_scan);
// Tracks nothing and finds nothing (the "no tracking at all" baseline of the benchmarks).
std::unique_ptr<OwnerTracker> NewNullTracker();

}  // namespace daxfs::dax
