// The scrub a daemon runs for `daxfs scrub --mount` (control.h kIocScrub*): DaxFs::Scrub on a
// thread of its own, its progress kept for status requests and its JSON summary for summary
// requests. Knows include/daxfs/ only.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "control.h"
#include "daxfs/dax.h"

namespace daxfs::fusefs {

class ScrubControl {
 public:
  explicit ScrubControl(DaxFs* dax) : dax_(dax) {}
  ~ScrubControl() { Shutdown(); }
  ScrubControl(const ScrubControl&) = delete;
  ScrubControl& operator=(const ScrubControl&) = delete;

  // EBUSY while a scrub runs; ENOENT for kScrubResume with no stopped scrub; EINVAL for unknown
  // flags. Nothing changes on an error.
  Status Start(const ScrubStartIoctl& request);
  // ENOENT when no scrub runs.
  Status Stop();
  ScrubStatusIoctl GetStatus() const;
  // A chunk of the JSON summary (ENOENT when none is ready; EINVAL for an offset past its end).
  Status Summary(ScrubSummaryIoctl* io) const;
  // Stops a running scrub and waits for its thread (before the engine unmounts).
  void Shutdown();

 private:
  void Run(ScrubOptions options);

  DaxFs* dax_;
  mutable std::mutex mu_;
  std::thread thread_;  // joined by the next Start or Shutdown
  std::atomic<bool> stop_{false};
  ScrubStatusIoctl status_;
  std::string summary_;
  std::optional<ScrubPosition> resume_;
};

}  // namespace daxfs::fusefs
