// The client's mapping directory and fault handler (fault_handler.h).
//
// Inside the handler only async-signal-safe work happens: atomics, mprotect, send, write,
// sigaction, sigprocmask, raise, siglongjmp. The directory is static storage; a slot's page
// array is freed only after the slot is closed and no handler is reading it (a reader count).
//
// What a fault inside a client mapping does:
//  - SIGBUS BUS_MCEERR_AO: reported (not action required); execution goes on.
//  - any kernel fault on a fenced page: reported as a fence trap, then back to the innermost
//    GuardClientMediaErrors of the thread, or one line on stderr and death by SIGBUS.
//  - SIGBUS BUS_MCEERR_AR or BUS_ADRERR on a data page: the page is fenced (PROT_NONE), the
//    fault reported, then the same exit as a fence trap (never re-executing the bad access).
//  - a fault on a page that is accessible by now (the receiver remapped it between the fault
//    and the handler): the access is retried; if it faults again with no change in between, it
//    is a real one (a store to a zero page or to a read-only mapping) and is chained.
//  - anything else (a sent signal, an address outside every client mapping): chained.
#include "client/fault_handler.h"

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/signal_chain.h"
#include "daxfs/client.h"
#include "proto/channel.h"
#include "proto/message.h"

namespace daxfs::client {
namespace {

constexpr uintptr_t kPage = 4096;

enum SlotState : uint32_t { kFree = 0, kClaimed = 1, kLive = 2, kClosing = 3 };

struct Slot {
  std::atomic<uint32_t> state{kFree};
  std::atomic<uint32_t> readers{0};
  std::atomic<uintptr_t> base{0};
  std::atomic<uint64_t> length{0};
  std::atomic<uint64_t> mapping_id{0};
  std::atomic<int> sock{-1};
  std::atomic<uint16_t> version{0};  // the session's protocol version
  std::atomic<pid_t> pid{0};         // the process that made the mapping (a forked child has none)
  std::atomic<uint64_t> changes{0};  // odd while a change of its pages is in progress
  std::atomic<std::atomic<uint8_t>*> pages{nullptr};
};
Slot g_slots[kMaxDirectorySlots];
constinit std::atomic<size_t> g_high{0};  // slots at or past this were never used

struct Found {
  uint64_t mapping_id = 0;
  uintptr_t base = 0;
  uint64_t page = 0;  // index inside the mapping
  int sock = -1;
  uint16_t version = 0;
  PageState state = kPageData;
  uint64_t changes = 0;
  size_t slot = 0;
};

// Async-signal-safe. Only mappings of this process: a child forked from it inherits the
// directory but not the mappings (MADV_DONTFORK), so its faults there are its own business.
bool Lookup(uintptr_t addr, Found* out) {
  const pid_t self = getpid();
  const size_t high = g_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; ++i) {
    Slot& s = g_slots[i];
    if (s.state.load(std::memory_order_acquire) != kLive) continue;
    // Sequentially consistent with UnregisterMapping's store-then-load of the same two
    // variables: one of them sees the other (a release/acquire pair would not guarantee it).
    s.readers.fetch_add(1);
    bool hit = false;
    if (s.state.load() == kLive) {
      const uintptr_t base = s.base.load();
      const uint64_t length = s.length.load();
      if (addr >= base && addr - base < length && s.pid.load() == self) {
        out->mapping_id = s.mapping_id.load();
        out->base = base;
        out->page = (addr - base) / kPage;
        out->sock = s.sock.load();
        out->version = s.version.load();
        out->changes = s.changes.load();
        out->state = static_cast<PageState>(s.pages.load()[out->page].load());
        out->slot = i;
        hit = true;
      }
    }
    s.readers.fetch_sub(1);
    if (hit) return true;
  }
  return false;
}

// ---- guards ----------------------------------------------------------------------------------
struct GuardFrame {
  sigjmp_buf env;
  GuardFrame* prev = nullptr;
};
__attribute__((tls_model("initial-exec"))) thread_local GuardFrame* tl_guard = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local uintptr_t tl_trap_address = 0;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t tl_trap_mapping = 0;
__attribute__((tls_model("initial-exec"))) thread_local int tl_trap_code = 0;
// The last fault retried because its page looked accessible: its address and the slot's change
// count then. The same fault again with no change since is a real one.
__attribute__((tls_model("initial-exec"))) thread_local uintptr_t tl_retry_address = 0;
__attribute__((tls_model("initial-exec"))) thread_local uint64_t tl_retry_changes = 0;

// ---- previous actions --------------------------------------------------------------------------
struct sigaction g_prev_bus;
struct sigaction g_prev_segv;
constinit std::atomic<bool> g_installed{false};
std::mutex g_install_mu;

void Chain(int signo, siginfo_t* si, void* context) {
  base::ChainSignal(signo == SIGBUS ? g_prev_bus : g_prev_segv, signo, si, context);
}

void Report(const Found& f, uintptr_t addr, int signo, int code, int lsb, bool fence_trap) {
  proto::ReportFault fault;
  fault.mapping_id = f.mapping_id;
  fault.offset = addr - f.base;
  fault.signo = static_cast<uint32_t>(signo);
  fault.code = code;
  fault.flags = fence_trap ? uint32_t{proto::kFaultFenceTrap} : 0u;
  fault.address_lsb = static_cast<uint8_t>(lsb);
  uint8_t buf[proto::kHeaderSize + 64];
  const size_t n = proto::EncodeReportFault(fault, buf, sizeof buf, f.version);
  if (n > 0 && f.sock >= 0) proto::SendMessageNow(f.sock, buf, n);
}

void AddHex(char* buf, size_t* len, size_t cap, uint64_t v, unsigned base) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0 && *len < cap) buf[(*len)++] = digits[--n];
}
void AddText(char* buf, size_t* len, size_t cap, const char* s) {
  while (*s != '\0' && *len < cap) buf[(*len)++] = *s++;
}

// One report per fencing of a page: the first trap on it moves it to kPageFencedReported.
bool ClaimReport(size_t slot, uint64_t page) {
  std::atomic<uint8_t>& p = g_slots[slot].pages.load()[page];
  uint8_t expected = kPageFenced;
  return p.compare_exchange_strong(expected, kPageFencedReported);
}

[[noreturn]] void TrapExit(uintptr_t addr, const Found& f, int code) {
  if (GuardFrame* frame = tl_guard; frame != nullptr) {
    tl_trap_address = addr;
    tl_trap_mapping = f.mapping_id;
    tl_trap_code = code;
    siglongjmp(frame->env, 1);
  }
  char line[200];
  size_t len = 0;
  AddText(line, &len, sizeof line, "daxfs client: access to a fenced page at 0x");
  AddHex(line, &len, sizeof line, addr, 16);
  AddText(line, &len, sizeof line, " (mapping ");
  AddHex(line, &len, sizeof line, f.mapping_id, 10);
  AddText(line, &len, sizeof line, ", offset ");
  AddHex(line, &len, sizeof line, addr - f.base, 10);
  AddText(line, &len, sizeof line, "): killed\n");
  ssize_t n = write(STDERR_FILENO, line, len);
  (void)n;
  base::RestoreDefaultAndUnblock(SIGBUS);
  raise(SIGBUS);
  _exit(128 + SIGBUS);
}

void Handler(int signo, siginfo_t* si, void* context) {
  const int saved_errno = errno;
  Found f;
  const uintptr_t addr = si != nullptr ? reinterpret_cast<uintptr_t>(si->si_addr) : 0;
  if (si == nullptr || si->si_code <= 0 || !Lookup(addr, &f)) {
    errno = saved_errno;
    Chain(signo, si, context);
    return;
  }
  const int code = si->si_code;
  const bool ao = signo == SIGBUS && code == BUS_MCEERR_AO;
  const bool ar = signo == SIGBUS && code == BUS_MCEERR_AR;
  const bool adrerr = signo == SIGBUS && code == BUS_ADRERR;
  const int lsb = (ao || ar) && si->si_addr_lsb > 0 ? si->si_addr_lsb : 12;
  if (ao) {
    Report(f, addr, signo, code, lsb, false);
  } else if (f.state == kPageFenced || f.state == kPageFencedReported) {
    if (ClaimReport(f.slot, f.page)) Report(f, addr, signo, code, lsb, true);
    TrapExit(addr, f, code);
  } else if (ar || adrerr) {
    SetPages(f.slot, f.page, 1, kPageFenced);
    mprotect(reinterpret_cast<void*>(f.base + f.page * kPage), kPage, PROT_NONE);
    Report(f, addr, signo, code, lsb, false);
    TrapExit(addr, f, code);
  } else if ((f.changes & 1) != 0 || tl_retry_address != addr || tl_retry_changes != f.changes) {
    tl_retry_address = addr;  // remapped since the fault, or being remapped: try again
    tl_retry_changes = f.changes;
  } else {
    tl_retry_address = 0;
    errno = saved_errno;
    Chain(signo, si, context);
    return;
  }
  errno = saved_errno;
}

}  // namespace

Result<size_t> RegisterMapping(uint8_t* base, uint64_t length, uint64_t mapping_id, int sock,
                               uint16_t version) {
  const uint64_t pages = length / kPage;
  auto* states = new std::atomic<uint8_t>[pages];
  for (uint64_t i = 0; i < pages; ++i) states[i].store(kPageFenced);
  for (size_t i = 0; i < kMaxDirectorySlots; ++i) {
    Slot& s = g_slots[i];
    uint32_t expected = kFree;
    if (!s.state.compare_exchange_strong(expected, kClaimed)) continue;
    s.base.store(reinterpret_cast<uintptr_t>(base));
    s.length.store(length);
    s.mapping_id.store(mapping_id);
    s.sock.store(sock);
    s.version.store(version);
    s.pid.store(getpid());
    s.pages.store(states);
    size_t high = g_high.load();
    while (high < i + 1 && !g_high.compare_exchange_weak(high, i + 1)) {
    }
    s.state.store(kLive, std::memory_order_release);
    return i;
  }
  delete[] states;
  return Status::Error(ENOMEM, "the client's mapping directory is full (" +
                                   std::to_string(kMaxDirectorySlots) + " live mappings)");
}

void SetPages(size_t slot, uint64_t first, uint64_t count, PageState state) {
  std::atomic<uint8_t>* pages = g_slots[slot].pages.load();
  for (uint64_t i = first; i < first + count; ++i) pages[i].store(state);
}

void BeginChange(size_t slot) { g_slots[slot].changes.fetch_add(1); }
void EndChange(size_t slot) { g_slots[slot].changes.fetch_add(1); }

PageState GetPage(size_t slot, uint64_t page) {
  return static_cast<PageState>(g_slots[slot].pages.load()[page].load());
}

void UnregisterMapping(size_t slot) {
  Slot& s = g_slots[slot];
  s.state.store(kClosing);  // sequentially consistent: see Lookup
  while (s.readers.load() != 0) {
    // A handler on another thread is reading this slot: it takes a few instructions.
  }
  delete[] s.pages.exchange(nullptr);
  s.state.store(kFree, std::memory_order_release);
}

Status InstallFaultHandler() {
  std::lock_guard<std::mutex> lock(g_install_mu);
  if (g_installed.load()) return Status::Ok();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = Handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, &g_prev_bus) != 0) {
    return Status::Error(errno, std::string("sigaction(SIGBUS): ") + std::strerror(errno));
  }
  if (sigaction(SIGSEGV, &sa, &g_prev_segv) != 0) {
    const int err = errno;
    sigaction(SIGBUS, &g_prev_bus, nullptr);
    return Status::Error(err, std::string("sigaction(SIGSEGV): ") + std::strerror(err));
  }
  g_installed.store(true);
  return Status::Ok();
}

bool FaultHandlerInstalled() { return g_installed.load(); }

}  // namespace daxfs::client

namespace daxfs {

Status GuardClientMediaErrors(const std::function<void()>& fn) {
  using namespace client;
  if (!FaultHandlerInstalled()) {
    fn();  // nothing can be caught: a trap then is the plain signal
    return Status::Ok();
  }
  GuardFrame frame;
  frame.prev = tl_guard;
  if (sigsetjmp(frame.env, 1) == 0) {
    tl_guard = &frame;
    fn();
    tl_guard = frame.prev;
    return Status::Ok();
  }
  tl_guard = frame.prev;
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%lx", static_cast<unsigned long>(tl_trap_address));
  return Status::IoError(std::string("media error: access at ") + addr + " in mapping " +
                         std::to_string(tl_trap_mapping) +
                         " trapped on a fenced page (lost data, past EOF, or the daemon is gone)");
}

}  // namespace daxfs
