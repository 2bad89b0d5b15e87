// The JSON-lines event log of media failures: one line per event (a routed failure, a trap on a
// fenced page, a device removal, the bad-block scan at mount), naming the device range, every
// owner with path and offset, every mapping notified and the actions taken (docs/failure.md).
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "daxfs/dax.h"
#include "daxfs/status.h"

namespace daxfs::failure {

// One event as a JSON object (no newline). `event` names it: "failure", "trap", "removal".
std::string EventJson(std::string_view event, const FailureReport& report);

class EventLog {
 public:
  // Appends to `path`, which is created (0644) at the first event. Each line is written whole
  // and fdatasync'd, so a crash loses no event that was reported as logged.
  explicit EventLog(std::string path) : path_(std::move(path)) {}
  ~EventLog();
  Status Append(std::string_view event, const FailureReport& report);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::mutex mu_;
};

}  // namespace daxfs::failure
