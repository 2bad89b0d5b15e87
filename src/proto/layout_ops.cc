// Layout checks and splicing for the protocol (see layout_ops.h). Pure arithmetic.
#include "proto/layout_ops.h"

#include <algorithm>
#include <string>

namespace daxfs::proto {
namespace {

Status Bad(size_t i, const std::string& why) {
  return Status::Error(EPROTO, "layout segment " + std::to_string(i) + ": " + why);
}

// The piece of `s` inside [lo, hi) (which must overlap it).
Segment Cut(const Segment& s, uint64_t lo, uint64_t hi) {
  Segment out = s;
  const uint64_t start = std::max(s.file_offset, lo);
  const uint64_t end = std::min(s.file_offset + s.length, hi);
  out.file_offset = start;
  out.length = end - start;
  if (s.device_offset != kNoDevice) out.device_offset = s.device_offset + (start - s.file_offset);
  return out;
}

}  // namespace

Status ValidateLayout(uint64_t offset, uint64_t length, const std::vector<Segment>& segments,
                      uint64_t device_size) {
  if (length == 0 || offset % kPageSize != 0 || length % kPageSize != 0 ||
      offset + length < offset) {
    return Status::Error(EPROTO, "layout range [" + std::to_string(offset) + ", +" +
                                     std::to_string(length) + ") is not whole pages");
  }
  uint64_t at = offset;
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    if (s.file_offset != at) {
      return Bad(i,
                 "starts at " + std::to_string(s.file_offset) + ", expected " + std::to_string(at));
    }
    if (s.length == 0 || s.length % kPageSize != 0) return Bad(i, "length is not whole pages");
    if (s.length > offset + length - at) return Bad(i, "runs past the end of the range");
    if (s.kind == SegmentKind::kData) {
      if (s.device_offset == kNoDevice || s.device_offset % kPageSize != 0) {
        return Bad(i, "data segment without a page-aligned device offset");
      }
      if (s.device_offset > device_size || s.length > device_size - s.device_offset) {
        return Bad(i, "device range [" + std::to_string(s.device_offset) + ", +" +
                          std::to_string(s.length) + ") is outside the device (" +
                          std::to_string(device_size) + " bytes)");
      }
    }
    at += s.length;
  }
  if (at != offset + length) {
    return Status::Error(EPROTO, "layout covers " + std::to_string(at - offset) + " of " +
                                     std::to_string(length) + " bytes");
  }
  return Status::Ok();
}

std::vector<Segment> SliceLayout(const std::vector<Segment>& layout, uint64_t offset,
                                 uint64_t length) {
  std::vector<Segment> out;
  const uint64_t end = offset + length;
  for (const Segment& s : layout) {
    if (s.file_offset + s.length <= offset || s.file_offset >= end) continue;
    out.push_back(Cut(s, offset, end));
  }
  return out;
}

void SpliceLayout(std::vector<Segment>* layout, uint64_t offset, uint64_t length,
                  const std::vector<Segment>& change) {
  if (layout->empty()) return;
  const uint64_t lo = std::max(offset, layout->front().file_offset);
  const uint64_t hi = std::min(offset + length, layout->back().file_offset + layout->back().length);
  if (lo >= hi) return;
  std::vector<Segment> out;
  out.reserve(layout->size() + change.size() + 2);
  bool inserted = false;
  for (const Segment& s : *layout) {
    const uint64_t s_end = s.file_offset + s.length;
    if (s.file_offset < lo) out.push_back(Cut(s, s.file_offset, std::min(s_end, lo)));
    if (s_end > lo && !inserted && s.file_offset < hi) {
      for (const Segment& c : change) {
        if (c.file_offset + c.length <= lo || c.file_offset >= hi) continue;
        out.push_back(Cut(c, lo, hi));
      }
      inserted = true;
    }
    if (s_end > hi) out.push_back(Cut(s, std::max(s.file_offset, hi), s_end));
  }
  *layout = std::move(out);
}

std::vector<std::vector<Segment>> ChunkSegments(const std::vector<Segment>& segments) {
  std::vector<std::vector<Segment>> out;
  for (size_t i = 0; i < segments.size(); i += kMaxSegmentsPerMessage) {
    const size_t end = std::min(segments.size(), i + kMaxSegmentsPerMessage);
    out.emplace_back(segments.begin() + i, segments.begin() + end);
  }
  if (out.empty()) out.emplace_back();
  return out;
}

}  // namespace daxfs::proto
