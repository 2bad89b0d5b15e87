// The online scrub (daxfs/scrub.h, docs/scrub.md): three phases over a mounted filesystem, each
// in slices that hold the filesystem lock once, so operations go on in between. Works through
// fs::ScrubAccess and the route the DAX layer hands in; knows nothing of mappings or signals.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <vector>

#include "daxfs/scrub.h"
#include "fs/scrubber.h"
#include "space/extent_allocator.h"

namespace daxfs::scrub {

class OnlineScrub {
 public:
  OnlineScrub(const fs::ScrubAccess& fs, const ScrubOptions& options, const fs::ScrubRoute& route)
      : a_(fs), o_(options), route_(route) {}

  Result<ScrubReport> Run();

 private:
  using Clock = std::chrono::steady_clock;
  // Each returns false when the stop flag ended it (report_.resume says where).
  Result<bool> MetadataPhase(uint64_t from);
  Result<bool> IndexPhase();
  Result<bool> DataPhase(uint64_t from);

  bool StopRequested() const { return o_.stop != nullptr && o_.stop->load(); }
  // After a slice: progress, then sleep as long as --max-rate asks.
  void Slice(ScrubPhase phase, uint64_t done, uint64_t total, Clock::time_point start,
             uint64_t bytes_read, bool last);
  // Routes bad blocks `r` through the failure chain; they join `known`.
  void Route(const space::Run& r, std::vector<space::Run>* known);
  // Bad device blocks already known (poison tree, the in-memory overlay), as sorted runs.
  Result<std::vector<space::Run>> KnownBad();

  fs::ScrubAccess a_;
  ScrubOptions o_;
  const fs::ScrubRoute& route_;
  ScrubReport report_;
  std::vector<uint8_t> buffer_;  // the data phase reads into it (so the rate is real)
  uint64_t sink_ = 0;            // ... and folds a word of each block here
};

}  // namespace daxfs::scrub
