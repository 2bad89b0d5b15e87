// The one-writer gate of a pool: at most one WriteTxn (or exclusive pool walk) at a time.
//
// Not a mutex: with group commit a write transaction is begun by the thread of one request and
// finished by another (a later request, or the group-commit thread), and a std::mutex may only be
// unlocked by the thread that locked it. The gate is a flag under a mutex, and any thread may
// release it.
#pragma once

#include <condition_variable>
#include <mutex>

namespace daxfs::txn {

class WriterGate {
 public:
  // Waits until no one holds the gate, then holds it.
  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    free_.wait(lock, [this] { return !held_; });
    held_ = true;
  }
  // Lets the next writer in; from any thread.
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    free_.notify_one();
  }

  // Holds the gate for a scope, on one thread (pool walks that must not race a writer).
  class Scoped {
   public:
    explicit Scoped(WriterGate& gate) : gate_(gate) { gate_.Acquire(); }
    ~Scoped() { gate_.Release(); }
    Scoped(const Scoped&) = delete;
    Scoped& operator=(const Scoped&) = delete;

   private:
    WriterGate& gate_;
  };

 private:
  std::mutex mu_;
  std::condition_variable free_;
  bool held_ = false;
};

}  // namespace daxfs::txn
