// Online scrub (docs/scrub.md): read everything the filesystem holds while it stays usable --
// both copies of every metadata node, the index cross-checks of `check`, and every allocated data
// block against the device's bad-block list -- repairing what twins can repair and routing every
// newly found bad range through the failure chain. The types here; DaxFs::Scrub runs it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daxfs/media.h"

namespace daxfs {

// The phases, in order.
enum class ScrubPhase : uint8_t {
  kMetadata = 0,  // every metadata node slot in use: both copies verified; bad ones repaired
  kIndex = 1,     // the cross-checks of Filesystem::Check (trees against each other)
  kData = 2,      // every allocated DATA block read; bad ones routed as media failures
  kDone = 3,
};
const char* ScrubPhaseName(ScrubPhase phase);  // "metadata", "index", "data", "done"

// Where a scrub stopped: the phase and, inside it, the next device block to look at.
struct ScrubPosition {
  ScrubPhase phase = ScrubPhase::kMetadata;
  uint64_t block = 0;
};

struct ScrubProgress {
  ScrubPhase phase = ScrubPhase::kMetadata;
  uint64_t done_bytes = 0;   // of this phase
  uint64_t total_bytes = 0;  // of this phase (an estimate for the index phase)
  uint64_t read_bytes = 0;   // bytes actually read so far in this phase (free slots are not)
  double seconds = 0;        // in this phase so far
  bool phase_done = false;   // the last call of the phase
};

struct ScrubOptions {
  // Bytes per second read by the metadata and data phases (0: as fast as possible).
  uint64_t max_rate = 0;
  // Bytes looked at per slice: each slice holds the filesystem lock once.
  uint64_t slice_bytes = 1 << 20;
  // Start here (a position an earlier, stopped scrub reported).
  ScrubPosition resume;
  // Checked between slices: when it becomes true the scrub stops cleanly (stopped, resume).
  const std::atomic<bool>* stop = nullptr;
  // Called after every slice and at the end of each phase (not under the filesystem lock).
  std::function<void(const ScrubProgress&)> progress;
};

struct ScrubPhaseReport {
  bool ran = false;         // false: skipped (resumed past it) or stopped before it
  uint64_t checked = 0;     // metadata: node copies verified; index: records; data: blocks read
  uint64_t bytes = 0;       // bytes read
  uint64_t found = 0;       // metadata: bad copies; index: problems; data: bad blocks found
  uint64_t repaired = 0;    // metadata: slots repaired; data: bad ranges routed
  uint64_t unread_bad = 0;  // data: bad blocks on the device list outside allocated data (free
                            // space, unallocated chunks), routed without reading
  std::vector<std::string> problems;  // what is wrong and was not repaired
  double seconds = 0;
};

struct ScrubReport {
  ScrubPhaseReport metadata, index, data;
  std::vector<MetadataRepair> repairs;  // done during the scrub (any cause)
  std::vector<FileRangeLoss> lost;      // file ranges found lost by the data phase (with paths)
  std::vector<DeviceRange> retired;     // free space retired by the data phase
  std::vector<DeviceRange> bad_found;   // bad ranges the data phase routed
  bool stopped = false;                 // by ScrubOptions::stop
  ScrubPosition resume;                 // stopped: where to go on (ScrubOptions::resume)
  bool read_only = false;               // the filesystem is (now) read-only
  std::string read_only_reason;
  // Nothing is wrong that the scrub could not repair or route (lost file ranges it found are
  // recorded damage, like check's: listed, not problems).
  bool clean() const {
    return metadata.problems.empty() && index.problems.empty() && data.problems.empty() &&
           !read_only;
  }
};

}  // namespace daxfs
