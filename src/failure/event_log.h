// The JSON-lines event log of media failures: one line per event (a routed failure, a trap on a
// fenced page, a device removal, the bad-block scan at mount, a metadata repair from a twin),
// naming the device range, every owner with path and offset, every mapping notified and the actions
// taken (docs/failure.md).
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daxfs/dax.h"
#include "daxfs/media.h"
#include "daxfs/status.h"

namespace daxfs::failure {

// One event as a JSON object (no newline). `event` names it: "failure", "trap", "removal".
std::string EventJson(std::string_view event, const FailureReport& report);
// A metadata repair from a twin as a JSON object: event "repair" (docs/failure.md).
std::string RepairJson(const MetadataRepair& repair);

class EventLog {
 public:
  // Appends to `path`, which is created (0644) at the first event. Each line is written whole
  // and fdatasync'd, so a crash loses no event that was reported as logged.
  explicit EventLog(std::string path) : path_(std::move(path)) {}
  ~EventLog();
  Status Append(std::string_view event, const FailureReport& report);
  // One "repair" line per metadata repair.
  Status AppendRepairs(const std::vector<MetadataRepair>& repairs);
  const std::string& path() const { return path_; }

 private:
  Status AppendLine(std::string line);

  std::string path_;
  int fd_ = -1;
  std::mutex mu_;
};

}  // namespace daxfs::failure
