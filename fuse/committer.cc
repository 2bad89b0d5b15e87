// The group-commit thread: Sync() every interval until stopped. Knows only the Filesystem API.
#include "committer.h"

#include <fuse_log.h>
#include <signal.h>

namespace daxfs::fusefs {

Committer::Committer(Filesystem* fs, std::chrono::milliseconds interval)
    : fs_(fs), interval_(interval) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);  // inherited by the new thread
  thread_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Committer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Committer::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

void Committer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (wake_.wait_for(lock, interval_, [this] { return stop_; })) break;
    lock.unlock();
    Status s = fs_->Sync();
    lock.lock();
    if (!s.ok()) {
      // A failed commit shuts the engine down read-only; say so once.
      if (failures_++ == 0)
        fuse_log(FUSE_LOG_ERR, "daxfs: group commit failed: %s\n", s.ToString().c_str());
    }
  }
}

}  // namespace daxfs::fusefs
