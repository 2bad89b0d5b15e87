// The two designs the kernel rejected in 2020, kept so the choice is backed by numbers
// (docs/failure.md): page-rmap (the RFC: per device page, a tree of (mapping, page index),
// filled at map time, emptied at unmap) and extent-space (one registry per mapped device extent
// that every mapper joins, split and merged as mappings change). Both behind dax::OwnerTracker.
#pragma once

#include <memory>

#include "dax/tracker.h"

namespace daxfs::tracking {

std::unique_ptr<dax::OwnerTracker> NewPageRmapTracker();
std::unique_ptr<dax::OwnerTracker> NewExtentSpaceTracker();

}  // namespace daxfs::tracking
