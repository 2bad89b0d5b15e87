// The SIGBUS/SIGSEGV handler, its event queue and monitor thread, and GuardMediaErrors.
// Knows the address directory (what an address is) but nothing of routing policy: each event
// goes to the owner's callback, which decides what a failure means.
//
// Inside the handler only async-signal-safe work happens: atomics, AddressDirectory::Lookup
// (lock-free, no allocation), mprotect, write, sigaction, sigprocmask, raise, siglongjmp.
// Everything the handler reads is constant-initialised static storage that is never freed
// (the ring, the fence set, the previous actions, the eventfd, which stays open for good), so a
// handler still running on another thread while Uninstall runs touches nothing that went away.
//
// What each fault inside a daxfs mapping does (a fault elsewhere goes to the previous handler):
//  - SIGBUS BUS_MCEERR_AO: queue an event (not action required); no fence.
//  - SIGBUS BUS_MCEERR_AR or BUS_ADRERR on a page that is not fenced: queue an event (action
//    required) and fence the page (PROT_NONE, remembered in the fence set) so that the access,
//    re-executed on return, traps on the fence instead of consuming bad data again.
//  - Any kernel fault (si_code > 0) on a fenced page (kind kLost/kBeyondEof, or in the fence
//    set), other than AO: a fence trap. Queue an event (fence_trap, action required), then
//    siglongjmp to the innermost GuardMediaErrors of the thread, or else write one line to
//    stderr and die by SIGBUS as the kernel's action-required kill would.
//  - Anything else (a store to a read-only page, a sent signal with si_code <= 0): chained.
#include "failure/signals.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "base/signal_chain.h"
#include "daxfs/dax.h"

namespace daxfs::failure {
namespace {


// ---- the event ring: a bounded multi-producer queue (a sequence number per cell) ----------
// Producers are signal handlers on any thread, possibly nested; the one consumer is the monitor.
// Cell i is free for position p when seq == p, holds the event of position p when seq == p + 1.
struct Cell {
  std::atomic<uint64_t> seq{0};
  SignalEvent event;
};
Cell g_ring[kSignalQueueSize];
constinit std::atomic<uint64_t> g_tail{0};     // next position a producer claims
constinit std::atomic<uint64_t> g_head{0};     // next position the monitor takes
constinit std::atomic<uint64_t> g_dropped{0};  // events lost to a full ring, in total
constinit std::atomic<int> g_eventfd{-1};      // the monitor sleeps on it; never closed
std::once_flag g_ring_once;

void InitRing() {
  for (size_t i = 0; i < kSignalQueueSize; ++i) g_ring[i].seq.store(i);
}

// Async-signal-safe.
void Enqueue(const SignalEvent& event) {
  uint64_t pos = g_tail.load(std::memory_order_relaxed);
  Cell* cell;
  for (;;) {
    cell = &g_ring[pos % kSignalQueueSize];
    uint64_t seq = cell->seq.load(std::memory_order_acquire);
    int64_t diff = static_cast<int64_t>(seq - pos);
    if (diff == 0) {
      if (g_tail.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    } else if (diff < 0) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    } else {
      pos = g_tail.load(std::memory_order_relaxed);
    }
  }
  cell->event = event;
  cell->seq.store(pos + 1, std::memory_order_release);
  uint64_t one = 1;
  ssize_t n = write(g_eventfd.load(), &one, sizeof one);
  (void)n;  // a full eventfd counter still wakes the monitor
}

// Monitor only: takes the event at g_head if it is published.
bool Dequeue(SignalEvent* out) {
  uint64_t pos = g_head.load(std::memory_order_relaxed);
  Cell& cell = g_ring[pos % kSignalQueueSize];
  if (cell.seq.load(std::memory_order_acquire) != pos + 1) return false;
  *out = cell.event;
  cell.seq.store(pos + kSignalQueueSize, std::memory_order_release);
  g_head.store(pos + 1, std::memory_order_release);
  return true;
}

// ---- the fence set: pages the handler fenced itself, before the layout says kLost ----------
// Claimed with a CAS (0 -> kClaiming -> page); cleared by the monitor once the directory shows
// the page lost (or the mapping gone).
constexpr size_t kFenceSetSize = 256;
constexpr uintptr_t kClaiming = 1;
struct FencedPage {
  std::atomic<uintptr_t> page{0};
  std::atomic<uint64_t> mapping_id{0};
};
FencedPage g_fenced[kFenceSetSize];

bool InFenceSet(const dax::AddressInfo& info) {
  const uintptr_t page = reinterpret_cast<uintptr_t>(info.page);
  for (FencedPage& f : g_fenced) {
    if (f.page.load() == page && f.mapping_id.load() == info.mapping_id) return true;
  }
  return false;
}

// Async-signal-safe. False when the set is full or mprotect fails (then nothing is fenced).
bool FencePage(const dax::AddressInfo& info) {
  for (FencedPage& f : g_fenced) {
    uintptr_t expected = 0;
    if (!f.page.compare_exchange_strong(expected, kClaiming)) continue;
    f.mapping_id.store(info.mapping_id);
    f.page.store(reinterpret_cast<uintptr_t>(info.page));
    if (mprotect(info.page, fs::kPageBytes, PROT_NONE) == 0) return true;
    f.page.store(0);
    return false;
  }
  return false;
}

// Monitor only: forgets pages whose fence the layout now carries.
void PruneFenceSet() {
  for (FencedPage& f : g_fenced) {
    uintptr_t page = f.page.load();
    if (page == 0 || page == kClaiming) continue;
    dax::AddressInfo info;
    bool live = dax::AddressDirectory::Lookup(reinterpret_cast<void*>(page), &info) &&
                info.mapping_id == f.mapping_id.load();
    if (!live || info.kind == fs::SegmentKind::kLost || info.kind == fs::SegmentKind::kBeyondEof) {
      f.page.compare_exchange_strong(page, 0);
    }
  }
}

// ---- guards ----------------------------------------------------------------------------------
struct GuardFrame {
  sigjmp_buf env;
  GuardFrame* prev = nullptr;
  uintptr_t address = 0;
  Ino ino = 0;
  uint64_t file_offset = 0;
};
// initial-exec: reading it in a handler never allocates (no lazy TLS block).
__attribute__((tls_model("initial-exec"))) thread_local GuardFrame* tl_guard = nullptr;

// ---- previous actions and installation state -------------------------------------------------
struct sigaction g_prev_bus;
struct sigaction g_prev_segv;
constinit std::atomic<bool> g_installed{false};

struct sigaction& PreviousAction(int signo) { return signo == SIGBUS ? g_prev_bus : g_prev_segv; }

// The signal is not daxfs's: hand it to whoever had it before.
void Chain(int signo, siginfo_t* si, void* context) {
  base::ChainSignal(PreviousAction(signo), signo, si, context);
}

// ---- async-signal-safe formatting --------------------------------------------------------------
struct Line {
  char buf[256];
  size_t len = 0;
  void Add(const char* s) {
    while (*s != '\0' && len < sizeof buf) buf[len++] = *s++;
  }
  void AddNumber(uint64_t v, unsigned base) {
    char digits[24];
    size_t n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v != 0);
    while (n > 0 && len < sizeof buf) buf[len++] = digits[--n];
  }
};

// A consumed access of lost data: back to the guard, or die like an action-required kill.
void FenceTrapExit(uintptr_t address, const dax::AddressInfo& info) {
  if (GuardFrame* frame = tl_guard; frame != nullptr) {
    frame->address = address;
    frame->ino = info.ino;
    frame->file_offset = info.file_offset + (address & (fs::kPageBytes - 1));
    siglongjmp(frame->env, 1);
  }
  Line line;
  line.Add("daxfs: load from a bad page at 0x");
  line.AddNumber(address, 16);
  line.Add(" (inode ");
  line.AddNumber(info.ino, 10);
  line.Add(", file offset ");
  line.AddNumber(info.file_offset + (address & (fs::kPageBytes - 1)), 10);
  line.Add("): killed\n");
  ssize_t n = write(STDERR_FILENO, line.buf, line.len);
  (void)n;
  base::RestoreDefaultAndUnblock(SIGBUS);
  raise(SIGBUS);
  _exit(128 + SIGBUS);  // not reached: SIGBUS by default terminates
}

bool IsFenced(const dax::AddressInfo& info) {
  return info.kind == fs::SegmentKind::kLost || info.kind == fs::SegmentKind::kBeyondEof ||
         InFenceSet(info);
}

void Handler(int signo, siginfo_t* si, void* context) {
  const int saved_errno = errno;
  dax::AddressInfo info;
  const bool ours = g_installed.load() && si != nullptr && si->si_code > 0 &&
                    dax::AddressDirectory::Lookup(si->si_addr, &info);
  if (!ours) {
    errno = saved_errno;
    Chain(signo, si, context);
    return;
  }
  const int code = si->si_code;
  const bool ao = signo == SIGBUS && code == BUS_MCEERR_AO;
  const bool ar = signo == SIGBUS && code == BUS_MCEERR_AR;
  const bool adrerr = signo == SIGBUS && code == BUS_ADRERR;

  SignalEvent event;
  event.signo = signo;
  event.code = code;
  event.address = reinterpret_cast<uintptr_t>(si->si_addr);
  event.address_lsb = (ao || ar) && si->si_addr_lsb > 0 ? si->si_addr_lsb : 12;
  event.info = info;

  if (ao) {  // detected, not consumed: report only
    Enqueue(event);
  } else if (IsFenced(info)) {
    event.fence_trap = true;
    event.action_required = true;
    Enqueue(event);
    FenceTrapExit(event.address, info);
  } else if (ar || adrerr) {
    event.action_required = true;
    Enqueue(event);
    // Returning re-executes the access; without a fence it would consume the bad data again.
    if (!FencePage(info)) FenceTrapExit(event.address, info);
  } else {
    errno = saved_errno;
    Chain(signo, si, context);
    return;
  }
  errno = saved_errno;
}

// ---- the owner and its monitor thread --------------------------------------------------------
struct Owner {
  std::function<void(const SignalEvent&)> on_event;
  std::thread monitor;
  std::thread::id monitor_id;
  std::mutex mu;
  std::condition_variable handled_cv;
  uint64_t handled = 0;  // every position below this one was handed to on_event (or discarded)
  uint64_t reported_drops = 0;  // g_dropped when the last event was delivered (monitor only)
  bool stop = false;
  bool stopped = false;
};
std::mutex g_admin_mu;
std::shared_ptr<Owner> g_owner;  // under g_admin_mu

void DrainOnce(Owner& owner) {
  SignalEvent event;
  while (Dequeue(&event)) {
    uint64_t dropped = g_dropped.load();
    event.dropped = dropped - owner.reported_drops;
    owner.reported_drops = dropped;
    if (owner.on_event) owner.on_event(event);
    PruneFenceSet();
    std::lock_guard<std::mutex> lock(owner.mu);
    owner.handled = g_head.load();
    owner.handled_cv.notify_all();
  }
}

void MonitorLoop(Owner* owner) {
  EnsureSignalStack();
  for (;;) {
    DrainOnce(*owner);
    {
      std::lock_guard<std::mutex> lock(owner->mu);
      if (owner->stop) break;
    }
    uint64_t count;
    ssize_t n = read(g_eventfd.load(), &count, sizeof count);
    if (n < 0 && errno != EINTR && errno != EAGAIN) break;
  }
  DrainOnce(*owner);
  std::lock_guard<std::mutex> lock(owner->mu);
  owner->stopped = true;
  owner->handled_cv.notify_all();
}

Status ErrnoStatus(const char* what) {
  return Status::Error(errno, std::string("signal handler: ") + what + ": " + std::strerror(errno));
}

// Events left in the ring by an earlier owner are not this owner's: skip them.
void DiscardStaleEvents() {
  SignalEvent event;
  while (Dequeue(&event)) {
  }
}

}  // namespace

void EnsureSignalStack() {
  struct AltStack {
    void* memory = nullptr;
    size_t size = 0;
    ~AltStack() {
      if (memory == nullptr) return;
      stack_t current;
      if (sigaltstack(nullptr, &current) == 0 &&
          static_cast<char*>(current.ss_sp) == static_cast<char*>(memory) + fs::kPageBytes) {
        stack_t off;
        std::memset(&off, 0, sizeof off);
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, nullptr);
      }
      munmap(memory, size);
    }
  };
  thread_local AltStack alt;
  if (alt.memory != nullptr) return;
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;
  const size_t usable = 64 * 1024;
  void* memory = mmap(nullptr, usable + fs::kPageBytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return;  // best effort: the handler then runs on the thread's stack
  mprotect(memory, fs::kPageBytes, PROT_NONE);  // guard page below the stack
  stack_t stack;
  std::memset(&stack, 0, sizeof stack);
  stack.ss_sp = static_cast<char*>(memory) + fs::kPageBytes;
  stack.ss_size = usable;
  if (sigaltstack(&stack, nullptr) != 0) {
    munmap(memory, usable + fs::kPageBytes);
    return;
  }
  alt.memory = memory;
  alt.size = usable + fs::kPageBytes;
}

Status InstallSignalHandler(std::function<void(const SignalEvent&)> on_event) {
  std::lock_guard<std::mutex> lock(g_admin_mu);
  if (g_owner != nullptr) return Status::Busy("signal handler: another owner has it installed");
  std::call_once(g_ring_once, InitRing);
  if (g_eventfd.load() < 0) {
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return ErrnoStatus("eventfd");
    g_eventfd.store(fd);
  }
  DiscardStaleEvents();
  auto owner = std::make_shared<Owner>();
  owner->on_event = std::move(on_event);
  owner->handled = g_head.load();
  owner->reported_drops = g_dropped.load();  // before the handler can drop anything for us

  // Remember the previous actions before ours can run, so the handler always has them.
  if (sigaction(SIGBUS, nullptr, &g_prev_bus) != 0) return ErrnoStatus("sigaction(SIGBUS)");
  if (sigaction(SIGSEGV, nullptr, &g_prev_segv) != 0) return ErrnoStatus("sigaction(SIGSEGV)");
  EnsureSignalStack();
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = Handler;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  g_installed.store(true);
  if (sigaction(SIGBUS, &action, nullptr) != 0) {
    g_installed.store(false);
    return ErrnoStatus("sigaction(SIGBUS)");
  }
  if (sigaction(SIGSEGV, &action, nullptr) != 0) {
    Status status = ErrnoStatus("sigaction(SIGSEGV)");
    sigaction(SIGBUS, &g_prev_bus, nullptr);
    g_installed.store(false);
    return status;
  }
  Owner* raw = owner.get();
  owner->monitor = std::thread([raw] { MonitorLoop(raw); });
  owner->monitor_id = owner->monitor.get_id();
  g_owner = std::move(owner);
  return Status::Ok();
}

void UninstallSignalHandler() {
  std::shared_ptr<Owner> owner;
  {
    std::lock_guard<std::mutex> lock(g_admin_mu);
    if (g_owner == nullptr) return;
    owner = std::move(g_owner);
    g_installed.store(false);
    sigaction(SIGBUS, &g_prev_bus, nullptr);
    sigaction(SIGSEGV, &g_prev_segv, nullptr);
  }
  {
    std::lock_guard<std::mutex> lock(owner->mu);
    owner->stop = true;
  }
  uint64_t one = 1;
  ssize_t n = write(g_eventfd.load(), &one, sizeof one);
  (void)n;
  if (owner->monitor.joinable()) owner->monitor.join();
}

Status WaitForSignalEvents() {
  std::shared_ptr<Owner> owner;
  {
    std::lock_guard<std::mutex> lock(g_admin_mu);
    owner = g_owner;
  }
  if (owner == nullptr) return Status::Ok();
  if (std::this_thread::get_id() == owner->monitor_id) {
    return Status::Error(EDEADLK, "WaitForSignalEvents called from the signal event callback");
  }
  const uint64_t target = g_tail.load();
  std::unique_lock<std::mutex> lock(owner->mu);
  owner->handled_cv.wait(lock, [&] { return owner->handled >= target || owner->stopped; });
  return Status::Ok();
}

uint64_t DroppedSignalEvents() { return g_dropped.load(); }

}  // namespace daxfs::failure

namespace daxfs {

Status GuardMediaErrors(const std::function<void()>& fn) {
  failure::EnsureSignalStack();
  failure::GuardFrame frame;
  frame.prev = failure::tl_guard;
  if (sigsetjmp(frame.env, 1) != 0) {
    // Back from a fence trap in fn (the handler filled the frame).
    volatile failure::GuardFrame* trapped = &frame;
    failure::tl_guard = trapped->prev;
    char message[160];
    std::snprintf(message, sizeof message,
                  "load from a bad page at 0x%lx (inode %llu, file offset %llu)",
                  static_cast<unsigned long>(trapped->address),
                  static_cast<unsigned long long>(trapped->ino),
                  static_cast<unsigned long long>(trapped->file_offset));
    return Status::IoError(message);
  }
  failure::tl_guard = &frame;
  fn();
  failure::tl_guard = frame.prev;
  return Status::Ok();
}

}  // namespace daxfs
