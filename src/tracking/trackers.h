// The tracking designs (docs/failure.md), all behind dax::OwnerTracker: fs-rmap, the design
// chosen upstream (nothing tracked; at failure time the filesystem names the owners from its
// reverse map, or by the full-scan owner lookup); the two designs the kernel rejected in 2020,
// kept so the choice is backed by numbers: page-rmap (the RFC: per device page, a tree of
// (mapping, page index), filled at map time, emptied at unmap) and extent-space (one registry
// per mapped device extent that every mapper joins, split and merged as mappings change); and
// the null design (no tracking at all, the benchmarks' baseline).
#pragma once

#include <memory>

#include "dax/tracker.h"

namespace daxfs::dax {
class MappingTable;
}
namespace daxfs::fs {
class FsFace;
}

namespace daxfs::tracking {

// fs-rmap (tracking/fs_rmap.cc): the owners of a failed range come from `fs`'s Fsmap (with
// `full_scan`, from FsmapByFullScan: the no-rmap baseline), the mapped pages from each owner
// file's mapping index in `table`. Both must outlive the tracker.
std::unique_ptr<dax::OwnerTracker> NewFsRmapTracker(fs::FsFace* fs, const dax::MappingTable* table,
                                                    bool full_scan);
// Tracks nothing and finds nothing.
std::unique_ptr<dax::OwnerTracker> NewNullTracker();

std::unique_ptr<dax::OwnerTracker> NewPageRmapTracker();
std::unique_ptr<dax::OwnerTracker> NewExtentSpaceTracker();

}  // namespace daxfs::tracking
