// The signal source: self-sent machine-check reports (rt_tgsigqueueinfo), real faults on a
// registered memfd mapping (a fence trap, a load past the end of the file), guards, chaining
// to a handler installed before, the unguarded kill (in a forked child) and queue overflow.
#include "failure/signals.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "daxfs/dax.h"
#include "dax/address_directory.h"

namespace daxfs::failure {
namespace {

constexpr Ino kIno = 42;
constexpr uint64_t kFileOffset = 16 * fs::kPageBytes;
using fs::SegmentKind;

// Every test registers its mapping under a fresh id, so nothing one test fenced leaks into another.
uint64_t NextMappingId() {
  static std::atomic<uint64_t> next{100};
  return next.fetch_add(1);
}

void SendSelf(int signo, int code, void* addr, int lsb) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  info.si_signo = signo;
  info.si_code = code;
  info.si_addr = addr;
  info.si_addr_lsb = static_cast<short>(lsb);
  ASSERT_EQ(syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), signo, &info), 0)
      << std::strerror(errno);
}

uint8_t Load(const uint8_t* p) { return *static_cast<const volatile uint8_t*>(p); }

// A memfd of kFilePages pages mapped as kPages pages (the last ones past the end of the file):
//   page 0-3 kData (device 100..103), page 4 kLost (device 200, PROT_NONE), page 5 kLost (no
//   device, PROT_NONE), page 6 kData but past the memfd's end (a load gets SIGBUS BUS_ADRERR),
//   page 7 kBeyondEof (PROT_NONE).
class SignalsTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kPages = 8;
  static constexpr uint64_t kFilePages = 6;

  void SetUp() override {
    fd_ = memfd_create("daxfs-signals-test", MFD_CLOEXEC);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(ftruncate(fd_, kFilePages * fs::kPageBytes), 0);
    void* p = mmap(nullptr, kPages * fs::kPageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    ASSERT_NE(p, MAP_FAILED);
    base_ = static_cast<uint8_t*>(p);
    std::memset(base_, 0x5a, kFilePages * fs::kPageBytes);
    ASSERT_EQ(mprotect(base_ + 4 * fs::kPageBytes, 2 * fs::kPageBytes, PROT_NONE), 0);
    ASSERT_EQ(mprotect(base_ + 7 * fs::kPageBytes, fs::kPageBytes, PROT_NONE), 0);
    fs::MapLayout layout = {
        {kFileOffset, 4 * fs::kPageBytes, SegmentKind::kData, 100 * fs::kPageBytes},
        {kFileOffset + 4 * fs::kPageBytes, fs::kPageBytes, SegmentKind::kLost, 200 * fs::kPageBytes},
        {kFileOffset + 5 * fs::kPageBytes, fs::kPageBytes, SegmentKind::kLost, fs::kNoDevice},
        {kFileOffset + 6 * fs::kPageBytes, fs::kPageBytes, SegmentKind::kData, 300 * fs::kPageBytes},
        {kFileOffset + 7 * fs::kPageBytes, fs::kPageBytes, SegmentKind::kBeyondEof, fs::kNoDevice},
    };
    mapping_id_ = NextMappingId();
    auto slot = dax::AddressDirectory::Register(mapping_id_, kIno, base_, kFileOffset,
                                                kPages * fs::kPageBytes, layout);
    ASSERT_TRUE(slot.ok()) << slot.status().ToString();
    slot_ = *slot;
  }

  void TearDown() override {
    UninstallSignalHandler();
    dax::AddressDirectory::Unregister(slot_);
    munmap(base_, kPages * fs::kPageBytes);
    close(fd_);
  }

  void Install() {
    ASSERT_TRUE(InstallSignalHandler([this](const SignalEvent& e) {
                  std::lock_guard<std::mutex> lock(mu_);
                  events_.push_back(e);
                }).ok());
  }

  std::vector<SignalEvent> Events() {
    EXPECT_TRUE(WaitForSignalEvents().ok());
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t mapping_id_ = 0;
  size_t slot_ = 0;
  std::mutex mu_;
  std::vector<SignalEvent> events_;
};

TEST_F(SignalsTest, SentActionRequiredIsQueuedAndFencesThePage) {
  Install();
  uint8_t* addr = base_ + 2 * fs::kPageBytes + 100;
  SendSelf(SIGBUS, BUS_MCEERR_AR, addr, 12);
  std::vector<SignalEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  const SignalEvent& e = events[0];
  EXPECT_EQ(e.signo, SIGBUS);
  EXPECT_EQ(e.code, BUS_MCEERR_AR);
  EXPECT_EQ(e.address, reinterpret_cast<uintptr_t>(addr));
  EXPECT_EQ(e.address_lsb, 12);
  EXPECT_TRUE(e.action_required);
  EXPECT_FALSE(e.fence_trap);
  EXPECT_EQ(e.info.mapping_id, mapping_id_);
  EXPECT_EQ(e.info.ino, kIno);
  EXPECT_EQ(e.info.page, base_ + 2 * fs::kPageBytes);
  EXPECT_EQ(e.info.file_offset, kFileOffset + 2 * fs::kPageBytes);
  EXPECT_EQ(e.info.device_offset, 102 * fs::kPageBytes);
  EXPECT_EQ(e.info.kind, SegmentKind::kData);

  // The page was fenced: a load there now traps on the fence.
  Status status = GuardMediaErrors([&] { Load(addr); });
  EXPECT_EQ(status.code(), EIO);
  events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[1].fence_trap);
  EXPECT_EQ(events[1].info.device_offset, 102 * fs::kPageBytes);
}

TEST_F(SignalsTest, SentActionOptionalIsQueuedWithoutFencing) {
  Install();
  uint8_t* addr = base_ + fs::kPageBytes + 8;
  SendSelf(SIGBUS, BUS_MCEERR_AO, addr, 21);
  std::vector<SignalEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].code, BUS_MCEERR_AO);
  EXPECT_FALSE(events[0].action_required);
  EXPECT_FALSE(events[0].fence_trap);
  EXPECT_EQ(events[0].address_lsb, 21);
  EXPECT_EQ(events[0].info.device_offset, 101 * fs::kPageBytes);
  EXPECT_EQ(events[0].info.file_offset, kFileOffset + fs::kPageBytes);
  // Not consumed, so not fenced: the page still reads.
  uint8_t value = 0;
  EXPECT_TRUE(GuardMediaErrors([&] { value = Load(addr); }).ok());
  EXPECT_EQ(value, 0x5a);
  EXPECT_EQ(Events().size(), 1u);
}

TEST_F(SignalsTest, SentAddressErrorIsActionRequired) {
  Install();
  SendSelf(SIGBUS, BUS_ADRERR, base_ + 3 * fs::kPageBytes, 0);
  std::vector<SignalEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].code, BUS_ADRERR);
  EXPECT_TRUE(events[0].action_required);
  EXPECT_EQ(events[0].address_lsb, 12);
  EXPECT_EQ(events[0].info.device_offset, 103 * fs::kPageBytes);
}

TEST_F(SignalsTest, GuardedLoadFromLostPageReturnsEioAndQueuesFenceTrap) {
  Install();
  uint8_t* addr = base_ + 4 * fs::kPageBytes + 5;
  Status status = GuardMediaErrors([&] { Load(addr); });
  ASSERT_EQ(status.code(), EIO);
  char expected[128];
  std::snprintf(expected, sizeof expected, "load from a bad page at %p (inode 42, file offset %llu)",
                static_cast<void*>(addr), static_cast<unsigned long long>(kFileOffset + 4 * fs::kPageBytes + 5));
  EXPECT_EQ(status.message(), expected);
  std::vector<SignalEvent> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].signo, SIGSEGV);
  EXPECT_EQ(events[0].code, SEGV_ACCERR);
  EXPECT_TRUE(events[0].fence_trap);
  EXPECT_TRUE(events[0].action_required);
  EXPECT_EQ(events[0].info.kind, SegmentKind::kLost);
  EXPECT_EQ(events[0].info.device_offset, 200 * fs::kPageBytes);
  EXPECT_EQ(events[0].info.mapping_id, mapping_id_);

  // Beyond EOF and a lost page without device bytes trap the same way.
  EXPECT_EQ(GuardMediaErrors([&] { Load(base_ + 5 * fs::kPageBytes); }).code(), EIO);
  EXPECT_EQ(GuardMediaErrors([&] { Load(base_ + 7 * fs::kPageBytes); }).code(), EIO);
  events = Events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].info.device_offset, fs::kNoDevice);
  EXPECT_EQ(events[2].info.kind, SegmentKind::kBeyondEof);
}

TEST_F(SignalsTest, NestedGuardsCatchInTheInnermost) {
  Install();
  Status inner;
  Status outer = GuardMediaErrors([&] {
    inner = GuardMediaErrors([&] { Load(base_ + 4 * fs::kPageBytes); });
    Load(base_);  // fine
  });
  EXPECT_TRUE(outer.ok());
  EXPECT_EQ(inner.code(), EIO);
  // And the outer guard still works after the inner one returned.
  EXPECT_EQ(GuardMediaErrors([&] { GuardMediaErrors([] {}).IgnoreError(); Load(base_ + 4 * fs::kPageBytes); })
                .code(),
            EIO);
}

TEST_F(SignalsTest, RealLoadPastTheFileIsFencedThenTraps) {
  Install();
  // Page 6 is kData in the layout but past the memfd's end: the kernel sends BUS_ADRERR; the
  // handler fences the page and returns; the load re-executes and traps on the fence.
  uint8_t* addr = base_ + 6 * fs::kPageBytes + 12;
  EXPECT_EQ(GuardMediaErrors([&] { Load(addr); }).code(), EIO);
  std::vector<SignalEvent> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].signo, SIGBUS);
  EXPECT_EQ(events[0].code, BUS_ADRERR);
  EXPECT_TRUE(events[0].action_required);
  EXPECT_FALSE(events[0].fence_trap);
  EXPECT_EQ(events[0].info.device_offset, 300 * fs::kPageBytes);
  EXPECT_TRUE(events[1].fence_trap);
  EXPECT_EQ(events[1].info.device_offset, 300 * fs::kPageBytes);
}

// A handler of the test's own, installed before daxfs's.
std::atomic<uintptr_t> g_chained_address{0};
std::atomic<int> g_chained_calls{0};
uint8_t* g_own_page = nullptr;
void OwnHandler(int, siginfo_t* si, void*) {
  g_chained_calls.fetch_add(1);
  g_chained_address.store(reinterpret_cast<uintptr_t>(si->si_addr));
  mprotect(g_own_page, fs::kPageBytes, PROT_READ);  // the load re-executes and succeeds
}

TEST_F(SignalsTest, FaultsOutsideDaxfsGoToThePreviousHandler) {
  void* p = mmap(nullptr, fs::kPageBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  g_own_page = static_cast<uint8_t*>(p);
  struct sigaction own, old_segv, old_bus;
  std::memset(&own, 0, sizeof own);
  own.sa_sigaction = OwnHandler;
  own.sa_flags = SA_SIGINFO;
  sigemptyset(&own.sa_mask);
  ASSERT_EQ(sigaction(SIGSEGV, &own, &old_segv), 0);
  ASSERT_EQ(sigaction(SIGBUS, &own, &old_bus), 0);
  Install();

  EXPECT_EQ(Load(g_own_page + 3), 0);
  EXPECT_EQ(g_chained_address.load(), reinterpret_cast<uintptr_t>(g_own_page + 3));
  // A machine-check report for memory that is not daxfs's goes there too.
  SendSelf(SIGBUS, BUS_MCEERR_AO, g_own_page + 9, 12);
  EXPECT_EQ(g_chained_address.load(), reinterpret_cast<uintptr_t>(g_own_page + 9));
  // A signal sent by a process (si_code <= 0) carries no address: never daxfs's, even when
  // the bytes where si_addr would be happen to point into a daxfs mapping.
  const int calls = g_chained_calls.load();
  ASSERT_EQ(sigqueue(getpid(), SIGBUS, sigval{}), 0);
  EXPECT_EQ(g_chained_calls.load(), calls + 1);
  SendSelf(SIGBUS, SI_QUEUE, base_ + fs::kPageBytes, 12);
  EXPECT_EQ(g_chained_calls.load(), calls + 2);
  EXPECT_TRUE(Events().empty());

  UninstallSignalHandler();
  struct sigaction now;
  ASSERT_EQ(sigaction(SIGSEGV, nullptr, &now), 0);
  EXPECT_EQ(now.sa_sigaction, &OwnHandler);  // uninstall restored the previous action
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  munmap(p, fs::kPageBytes);
}

TEST_F(SignalsTest, UnguardedFenceTrapKillsWithSigbus) {
  Install();
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  uint8_t* addr = base_ + 4 * fs::kPageBytes + 7;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    Load(addr);
    _exit(0);  // not reached
  }
  close(pipe_fds[1]);
  std::string output;
  char buf[256];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "exit status " << wstatus;
  EXPECT_EQ(WTERMSIG(wstatus), SIGBUS);
  char expected[160];
  std::snprintf(expected, sizeof expected,
                "daxfs: load from a bad page at %p (inode 42, file offset %llu): killed\n",
                static_cast<void*>(addr), static_cast<unsigned long long>(kFileOffset + 4 * fs::kPageBytes + 7));
  EXPECT_NE(output.find(expected), std::string::npos) << output;
}

TEST_F(SignalsTest, OneOwnerAtATime) {
  Install();
  EXPECT_EQ(InstallSignalHandler([](const SignalEvent&) {}).code(), EBUSY);
  UninstallSignalHandler();
  Install();
}

TEST_F(SignalsTest, WaitFromTheCallbackIsRefused) {
  std::atomic<int> code{0};
  ASSERT_TRUE(InstallSignalHandler([&](const SignalEvent&) { code = WaitForSignalEvents().code(); })
                  .ok());
  SendSelf(SIGBUS, BUS_MCEERR_AO, base_, 12);
  ASSERT_TRUE(WaitForSignalEvents().ok());
  EXPECT_EQ(code.load(), EDEADLK);
}

TEST_F(SignalsTest, OverflowIsCountedAndReported) {
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<uint64_t> delivered{0}, reported_drops{0};
  ASSERT_TRUE(InstallSignalHandler([&](const SignalEvent& e) {
                std::unique_lock<std::mutex> lock(gate_mu);
                gate_cv.wait(lock, [&] { return open; });  // the first event holds the monitor
                delivered.fetch_add(1);
                reported_drops.fetch_add(e.dropped);
              }).ok());
  const uint64_t dropped_before = DroppedSignalEvents();
  const uint64_t kSent = kSignalQueueSize + 100;
  // The callback holds the monitor on its first event, so the ring fills: whether or not the
  // monitor took the first event before the rest came, every event is kept or counted.
  SendSelf(SIGBUS, BUS_MCEERR_AO, base_, 12);
  for (uint64_t i = 1; i < kSent; ++i) SendSelf(SIGBUS, BUS_MCEERR_AO, base_ + (i % 4) * fs::kPageBytes, 12);
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  ASSERT_TRUE(WaitForSignalEvents().ok());
  const uint64_t dropped = DroppedSignalEvents() - dropped_before;
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(delivered.load() + dropped, kSent);
  EXPECT_EQ(reported_drops.load(), dropped);
  EXPECT_GE(delivered.load(), kSignalQueueSize);
}

}  // namespace
}  // namespace daxfs::failure
