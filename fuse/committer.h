// The group-commit clock of a mounted filesystem: a thread that calls Sync() every interval, so
// an operation that returned is durable within about one interval (ext4's commit=). Knows only
// the public Filesystem API.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "daxfs/filesystem.h"

namespace daxfs::fusefs {

class Committer {
 public:
  // Starts the thread (with every signal blocked in it, so that signals reach the FUSE threads).
  Committer(Filesystem* fs, std::chrono::milliseconds interval);
  ~Committer() { Stop(); }
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Wakes the thread and waits for it; no commit of its own (Unmount commits).
  void Stop();
  uint64_t failures() const;

 private:
  void Run();

  Filesystem* fs_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  uint64_t failures_ = 0;
  std::thread thread_;
};

}  // namespace daxfs::fusefs
