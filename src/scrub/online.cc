// The online scrub's phases (online.h): node copies, the checker's cross-checks, data blocks.
#include "scrub/online.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "base/log.h"
#include "device/device.h"
#include "format/records.h"
#include "fs/blocks.h"
#include "fs/data_space.h"
#include "fs/metadata_repairs.h"
#include "fs/op_runner.h"
#include "fs/poison.h"
#include "scrub/check.h"
#include "txn/pool.h"

namespace daxfs {

const char* ScrubPhaseName(ScrubPhase phase) {
  switch (phase) {
    case ScrubPhase::kMetadata:
      return "metadata";
    case ScrubPhase::kIndex:
      return "index";
    case ScrubPhase::kData:
      return "data";
    case ScrubPhase::kDone:
      return "done";
  }
  return "?";
}

namespace scrub {
namespace {

using fs::kBlock;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// The [first, end) block ranges of the chunks of `type`, ascending.
std::vector<space::Run> ChunkRuns(const txn::Pool& pool, format::ChunkType type) {
  format::Superblock sb = pool.superblock();
  std::vector<space::Run> out;
  for (const auto& chunk : pool.Chunks()) {
    if (chunk.second != type) continue;
    out.push_back({sb.ChunkFirstBlock(chunk.first), sb.ChunkBlockCount(chunk.first)});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.start < b.start; });
  return out;
}

uint64_t TotalBlocks(const std::vector<space::Run>& runs) {
  uint64_t n = 0;
  for (const space::Run& r : runs) n += r.count;
  return n;
}

bool InRuns(const std::vector<space::Run>& runs, uint64_t block) {
  auto it = std::upper_bound(runs.begin(), runs.end(), block,
                             [](uint64_t b, const space::Run& r) { return b < r.start; });
  return it != runs.begin() && std::prev(it)->start + std::prev(it)->count > block;
}

void AddRun(std::vector<space::Run>* runs, uint64_t block) {
  if (!runs->empty() && runs->back().start + runs->back().count == block) {
    ++runs->back().count;
  } else {
    runs->push_back({block, 1});
  }
}

}  // namespace

void OnlineScrub::Slice(ScrubPhase phase, uint64_t done, uint64_t total, Clock::time_point start,
                        uint64_t bytes_read, bool last) {
  if (o_.max_rate > 0 && !last) {
    double want = static_cast<double>(bytes_read) / static_cast<double>(o_.max_rate);
    double ahead = want - Seconds(start);
    if (ahead > 0) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
  }
  if (o_.progress) {
    o_.progress({.phase = phase,
                 .done_bytes = done,
                 .total_bytes = total,
                 .read_bytes = bytes_read,
                 .seconds = Seconds(start),
                 .phase_done = last});
  }
}

Result<std::vector<space::Run>> OnlineScrub::KnownBad() {
  std::vector<space::Run> runs;
  RETURN_IF_ERROR(a_.runner->Read([&](const fs::ReadOp& op) -> Status {
    ASSIGN_OR_RETURN(std::vector<format::BadRecord> bad, a_.poison->BadRecords(op, 0, fs::kNoEnd));
    for (const format::BadRecord& r : bad) runs.push_back({r.device_block, r.blocks});
    for (const space::Run& r : a_.poison->kept_bad()) runs.push_back(r);
    return Status::Ok();
  }));
  std::sort(runs.begin(), runs.end(), [](auto& a, auto& b) { return a.start < b.start; });
  return runs;
}

// ---- Phase 1: both copies of every node slot in use; a bad copy is queued for repair (as a
// read finding it would) and the repairs are committed after each slice.
Result<bool> OnlineScrub::MetadataPhase(uint64_t from) {
  ScrubPhaseReport& rep = report_.metadata;
  rep.ran = true;
  Clock::time_point start = Clock::now();
  std::vector<space::Run> chunks = ChunkRuns(*a_.pool, format::ChunkType::kMetadata);
  const uint64_t copies = a_.pool->metadata_dup() ? 2 : 1;
  const uint64_t total = TotalBlocks(chunks) * kBlock * copies;
  const uint64_t per_slice = std::max<uint64_t>(1, o_.slice_bytes / kBlock / copies);
  uint64_t done = 0;
  for (const space::Run& c : chunks) {
    if (c.start + c.count <= from) {
      done += c.count * kBlock * copies;
      continue;
    }
    if (c.start < from) done += (from - c.start) * kBlock * copies;
    for (uint64_t b = std::max(c.start, from); b < c.start + c.count;) {
      if (StopRequested()) {
        report_.stopped = true;
        report_.resume = {ScrubPhase::kMetadata, b};
        return false;
      }
      const uint64_t end = std::min(c.start + c.count, b + per_slice);
      done += (end - b) * kBlock * copies;
      a_.runner->Exclusive([&] {
        for (; b < end; ++b) {
          if (a_.pool->SlotState(b) != space::NodeState::kUsed) continue;
          auto [primary, twin] = a_.pool->ScrubNode(b);
          const bool has_twin = a_.pool->TwinBlock(b) != 0;
          rep.checked += has_twin ? 2 : 1;
          rep.bytes += (has_twin ? 2 : 1) * kBlock;
          if (primary.ok() && twin.ok()) continue;
          ++rep.found;
          // One bad copy: queued by ScrubNode, repaired by the commit below. Both (or a bad
          // node without a twin): the loss that shuts down.
          if (primary.ok() || (has_twin && twin.ok())) continue;
          std::string why =
              fmt::format("metadata node {}: {}: primary: {}{}", b,
                          has_twin ? "both copies are bad" : "bad, and it has no twin",
                          primary.message(), has_twin ? "; twin: " + twin.message() : "");
          rep.problems.push_back(why);
          if (!a_.runner->read_only())
            a_.runner->ShutDown(Status::IoError("scrub: " + why + ": filesystem shut down"));
        }
      });
      // The repairs this slice queued become durable now (a write of their own).
      if (!a_.runner->read_only()) {
        Status committed = a_.runner->CommitIfWanted();
        if (!committed.ok()) rep.problems.push_back("repair commit: " + committed.ToString());
      }
      Slice(ScrubPhase::kMetadata, done, total, start, rep.bytes, false);
    }
  }
  rep.seconds = Seconds(start);
  Slice(ScrubPhase::kMetadata, total, total, start, rep.bytes, true);
  return true;
}

// ---- Phase 2: the checker's cross-checks (one read operation: not sliced yet).
Result<bool> OnlineScrub::IndexPhase() {
  ScrubPhaseReport& rep = report_.index;
  rep.ran = true;
  if (StopRequested()) {
    report_.stopped = true;
    report_.resume = {ScrubPhase::kIndex, 0};
    return false;
  }
  Clock::time_point start = Clock::now();
  ASSIGN_OR_RETURN(FsCheckResult check, Checker(a_).Run());
  rep.checked = check.nodes_checked;
  rep.found = check.problems.size();
  rep.problems = check.problems;
  rep.seconds = Seconds(start);
  Slice(ScrubPhase::kIndex, 1, 1, start, 0, true);
  return true;
}

// ---- Phase 3: every allocated block of every DATA chunk is read (into a buffer) unless the
// device lists it bad; bad blocks not known yet are routed through the failure chain.
Result<bool> OnlineScrub::DataPhase(uint64_t from) {
  ScrubPhaseReport& rep = report_.data;
  rep.ran = true;
  Clock::time_point start = Clock::now();
  std::vector<space::Run> chunks = ChunkRuns(*a_.pool, format::ChunkType::kData);
  ASSIGN_OR_RETURN(std::vector<space::Run> known, KnownBad());
  uint64_t total = 0, done = 0;
  a_.runner->Exclusive([&] {
    for (const space::Run& c : chunks) {
      for (uint64_t b = c.start; b < c.start + c.count; ++b) {
        if (a_.data->blocks().IsFree(b)) continue;
        total += kBlock;
        if (b < from) done += kBlock;
      }
    }
  });
  const uint64_t per_slice = std::max<uint64_t>(1, o_.slice_bytes / kBlock);
  buffer_.resize(per_slice * kBlock);
  const device::Device* dev = a_.pool->device();
  for (const space::Run& c : chunks) {
    if (c.start + c.count <= from) continue;
    for (uint64_t b = std::max(c.start, from); b < c.start + c.count;) {
      if (StopRequested()) {
        report_.stopped = true;
        report_.resume = {ScrubPhase::kData, b};
        return false;
      }
      // Looks at up to 4 slices' worth of blocks, reads up to one slice of allocated ones.
      uint64_t end = std::min(c.start + c.count, b + 4 * per_slice);
      std::vector<space::Run> fresh_bad;
      // Shared: reads of files go on beside the slice; no write can free a block under it.
      a_.runner->Shared([&] {
        uint64_t in_buffer = 0;
        for (; b < end && in_buffer < per_slice; ++b) {
          if (a_.data->blocks().IsFree(b)) continue;
          done += kBlock;
          if (InRuns(known, b)) continue;  // known bad: never loaded
          if (dev->IsBad(b * kBlock, kBlock)) {
            AddRun(&fresh_bad, b);
            continue;
          }
          std::memcpy(buffer_.data() + in_buffer * kBlock, dev->At(b * kBlock), kBlock);
          uint64_t word;
          std::memcpy(&word, buffer_.data() + in_buffer * kBlock, sizeof word);
          sink_ ^= word;
          ++in_buffer;
          ++rep.checked;
          rep.bytes += kBlock;
        }
      });
      for (const space::Run& r : fresh_bad) {
        rep.found += r.count;
        Route(r, &known);
      }
      Slice(ScrubPhase::kData, done, total, start, rep.bytes, false);
    }
  }
  // The rest of the device's bad list that nothing has recorded (free space, unallocated chunks,
  // metadata the mount did not queue): routed too, so no program is handed a bad block.
  std::vector<space::Run> rest;
  for (const device::BadRange& r : dev->BadRanges()) {
    uint64_t first = r.offset / kBlock, end = std::min((r.offset + r.length + kBlock - 1) / kBlock,
                                                       a_.pool->superblock().total_blocks());
    for (uint64_t b = first; b < end; ++b) {
      if (!InRuns(known, b)) AddRun(&rest, b);
    }
  }
  for (const space::Run& r : rest) {
    rep.unread_bad += r.count;
    Route(r, &known);
  }
  rep.seconds = Seconds(start);
  Slice(ScrubPhase::kData, total, total, start, rep.bytes, true);
  return true;
}

void OnlineScrub::Route(const space::Run& r, std::vector<space::Run>* known) {
  ScrubPhaseReport& rep = report_.data;
  report_.bad_found.push_back({r.start * kBlock, r.count * kBlock});
  Result<MediaFailureRecord> routed = route_(r.start * kBlock, r.count * kBlock);
  if (!routed.ok()) {
    rep.problems.push_back(fmt::format("device blocks {}+{}: routing the failure: {}", r.start,
                                       r.count, routed.status().ToString()));
    return;
  }
  ++rep.repaired;
  for (const FileRangeLoss& l : routed->owners) report_.lost.push_back(l);
  for (const DeviceRange& d : routed->retired) report_.retired.push_back(d);
  if (routed->metadata_hit) rep.problems.push_back(routed->message);
  known->push_back(r);
  std::sort(known->begin(), known->end(), [](auto& x, auto& y) { return x.start < y.start; });
}

Result<ScrubReport> OnlineScrub::Run() {
  RETURN_IF_ERROR(a_.runner->Sync());
  const size_t mark = a_.runner->Exclusive([&] { return a_.repairs->reported(); });
  ScrubPhase from = o_.resume.phase;
  bool went_on = true;
  if (from <= ScrubPhase::kMetadata) {
    ASSIGN_OR_RETURN(went_on, MetadataPhase(from == ScrubPhase::kMetadata ? o_.resume.block : 0));
  }
  if (went_on && from <= ScrubPhase::kIndex) {
    ASSIGN_OR_RETURN(went_on, IndexPhase());
  }
  if (went_on && from <= ScrubPhase::kData) {
    ASSIGN_OR_RETURN(went_on, DataPhase(from == ScrubPhase::kData ? o_.resume.block : 0));
  }
  if (went_on) report_.resume = {ScrubPhase::kDone, 0};
  a_.runner->Exclusive([&] {
    report_.repairs = a_.repairs->Since(mark);
    report_.metadata.repaired = 0;
    for (const MetadataRepair& r : report_.repairs) {
      if (r.kind != MetadataRepair::Kind::kLost) ++report_.metadata.repaired;
    }
    report_.read_only = a_.runner->read_only();
    if (report_.read_only) report_.read_only_reason = a_.runner->shutdown_reason().ToString();
  });
  return report_;
}

}  // namespace scrub
}  // namespace daxfs
