// Pure operations on protocol layouts (lists of Segment): checking that one covers its range
// exactly and stays inside the device, splicing a changed range into a layout, and cutting a
// layout into message-sized pieces. Knows nothing of mappings or sockets.
#pragma once

#include <cstdint>
#include <vector>

#include "daxfs/status.h"
#include "proto/message.h"

namespace daxfs::proto {

inline constexpr uint64_t kPageSize = 4096;

// OK when `segments` are in file order, contiguous, each a positive whole number of pages,
// cover exactly [offset, +length), and every kData segment's device range is page-aligned and
// inside [0, device_size). EPROTO otherwise, saying which segment and why.
Status ValidateLayout(uint64_t offset, uint64_t length, const std::vector<Segment>& segments,
                      uint64_t device_size);

// Replaces the part of `layout` (which covers its own range) inside [offset, +length) with
// `change` (which covers exactly that range, clipped to the layout's range): segments crossing
// the boundaries are split (a kData piece keeps its device offset shifted by the cut).
void SpliceLayout(std::vector<Segment>* layout, uint64_t offset, uint64_t length,
                  const std::vector<Segment>& change);

// The part of `layout` inside [offset, +length), cut at the boundaries.
std::vector<Segment> SliceLayout(const std::vector<Segment>& layout, uint64_t offset,
                                 uint64_t length);

// `segments` cut into runs of at most kMaxSegmentsPerMessage (at least one run, maybe empty).
std::vector<std::vector<Segment>> ChunkSegments(const std::vector<Segment>& segments);

}  // namespace daxfs::proto
