// The client library against the daemon (src/serve) over a fake host: real client processes
// (tests/client/client_probe, fork/exec) connect, open, map ranges of a /dev/shm "device" file,
// see each other's stores and the device's, follow recalls in place, hear failures at their own
// addresses, trap on fenced pages; client crashes release leases; a dead daemon fences every
// mapping; non-root clients are refused what they may not open; malformed messages from one
// client close only its session. Limits, long layouts and version negotiation run in-process.
#include "daxfs/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/coding.h"
#include "base/random.h"
#include "fake_host.h"
#include "probe.h"
#include "proto/channel.h"
#include "proto/message.h"
#include "serve/server.h"
#include "status_assert.h"

namespace daxfs {
namespace {

using testing::FakeHost;
using testing::kPage;
using testing::Probe;

constexpr uint64_t kDeviceSize = 8 << 20;
constexpr uint64_t kDataA = 1 << 20;  // device bytes of /data/f pages 0..7
constexpr uint64_t kDataB = 2 << 20;  // of /data/f pages 12..15
constexpr uint64_t kSpare = 3 << 20;  // free device space for rewrites

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// The value after "key=" in a probe reply (up to the next space or comma).
std::string Field(const std::string& reply, const std::string& key, size_t from = 0) {
  size_t at = reply.find(key + "=", from);
  if (at == std::string::npos) return "";
  at += key.size() + 1;
  size_t end = reply.find_first_of(" ,", at);
  return reply.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/daxfs-client-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    static std::atomic<int> counter{0};
    device_ =
        "/dev/shm/daxfs-client-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    int fd = open(device_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kDeviceSize), 0);
    void* p = mmap(nullptr, kDeviceSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    dev_ = static_cast<uint8_t*>(p);
    close(fd);
    socket_ = dir_ + "/daxfs.sock";
    host_ = MakeHost();
    f_ = host_->Lookup(data_, "f")->ino;
  }

  // /data/f: 16 pages: 0..7 data at kDataA (bytes 0x11), 8..11 a hole, 12..15 data at kDataB.
  std::unique_ptr<FakeHost> MakeHost() {
    auto host = std::make_unique<FakeHost>(device_);
    data_ = host->AddDir(kRootIno, "data");
    Ino f = host->AddFile(data_, "f", 16, 0644);
    host->SetPages(f, 0, 8, LayoutKind::kData, kDataA);
    host->SetPages(f, 12, 4, LayoutKind::kData, kDataB);
    std::memset(dev_ + kDataA, 0x11, 8 * kPage);
    std::memset(dev_ + kDataB, 0x22, 4 * kPage);
    return host;
  }

  void TearDown() override {
    server_.reset();
    host_.reset();
    munmap(dev_, kDeviceSize);
    unlink(device_.c_str());
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }

  void StartServer(serve::ServerOptions options = {}) {
    options.socket_path = socket_;
    options.on_event = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(events_mu_);
      events_.push_back(line);
      events_cv_.notify_all();
    };
    auto server = serve::Server::Start(host_.get(), options);
    ASSERT_OK(server);
    server_ = std::move(*server);
  }

  bool HasEvent(const std::string& part) {
    std::lock_guard<std::mutex> lock(events_mu_);
    for (const auto& e : events_) {
      if (e.find(part) != std::string::npos) return true;
    }
    return false;
  }
  // Waits (at most 30 s, a guard against hangs) until an event line contains `part`.
  bool WaitForEvent(const std::string& part) {
    std::unique_lock<std::mutex> lock(events_mu_);
    return events_cv_.wait_for(lock, std::chrono::seconds(30), [&] {
      for (const auto& e : events_) {
        if (e.find(part) != std::string::npos) return true;
      }
      return false;
    });
  }
  std::string Events() {
    std::lock_guard<std::mutex> lock(events_mu_);
    std::string all;
    for (const auto& e : events_) all += e + "\n";
    return all;
  }

  // A probe connected to the daemon.
  std::unique_ptr<Probe> Connected() {
    auto p = std::make_unique<Probe>();
    EXPECT_TRUE(StartsWith(p->Cmd("connect " + socket_), "ok")) << Events();
    return p;
  }

  // ---- raw protocol, for the malformed-message and timeout tests -------------------------
  int RawConnect() {
    auto fd = proto::ConnectSocket(socket_);
    EXPECT_OK(fd);
    return fd.ok() ? *fd : -1;
  }
  Result<proto::Message> RawReceive(int fd, int* passed = nullptr) {
    std::vector<uint8_t> buf;
    int got = -1;
    RETURN_IF_ERROR(proto::ReceiveMessage(fd, &buf, &got, 30000));
    if (passed != nullptr) {
      *passed = got;
    } else if (got >= 0) {
      close(got);
    }
    return proto::Decode(buf);
  }
  void RawSend(int fd, const proto::Body& body, uint64_t id) {
    ASSERT_OK(proto::SendMessage(fd, proto::Encode(body, id), -1, 30000));
  }
  void RawHello(int fd) {
    RawSend(fd, proto::Hello{1, 1, 0, "raw"}, 1);
    auto m = RawReceive(fd);
    ASSERT_OK(m);
    ASSERT_EQ(m->header.type, proto::MessageType::kHelloReply);
  }
  // True when the daemon closed the session (end of stream).
  bool RawClosed(int fd) {
    for (;;) {
      std::vector<uint8_t> buf;
      Status s = proto::ReceiveMessage(fd, &buf, nullptr, 30000);
      if (s.code() == ECONNRESET) return true;
      if (!s.ok()) return false;
    }
  }

  std::string dir_, device_, socket_;
  uint8_t* dev_ = nullptr;
  std::unique_ptr<FakeHost> host_;
  std::unique_ptr<serve::Server> server_;
  Ino data_ = 0, f_ = 0;
  std::mutex events_mu_;
  std::condition_variable events_cv_;
  std::vector<std::string> events_;
};

// ---- across processes ---------------------------------------------------------------------------

TEST_F(ClientTest, DataIsSharedByClientsAndTheDevice) {
  StartServer();
  auto a = Connected();
  EXPECT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1 ino=" + std::to_string(f_)));
  const std::string ma = a->Cmd("map 1 0 65536 rw");
  ASSERT_TRUE(StartsWith(ma, "ok 1")) << ma;
  EXPECT_EQ(Field(ma, "len"), "65536");
  EXPECT_EQ(a->Cmd("read 1 0 4"), "ok 11111111");                              // the device's bytes
  EXPECT_EQ(a->Cmd("read 1 " + std::to_string(8 * kPage) + " 2"), "ok 0000");  // the hole
  EXPECT_EQ(a->Cmd("read 1 " + std::to_string(12 * kPage) + " 2"), "ok 2222");
  EXPECT_EQ(a->Cmd("fill 1 4096 4096 90"), "ok");
  EXPECT_EQ(a->Cmd("persist 1 4096 4096"), "ok");
  EXPECT_EQ(dev_[kDataA + kPage], 0x5a);
  EXPECT_EQ(dev_[kDataA + 2 * kPage - 1], 0x5a);
  EXPECT_TRUE(StartsWith(a->Cmd("persist 1 65536 1"), "err 22"));

  auto b = Connected();
  ASSERT_TRUE(StartsWith(b->Cmd("open /data/f rdonly"), "ok 1"));
  const std::string mb = b->Cmd("map 1 0 65536 r");
  ASSERT_TRUE(StartsWith(mb, "ok 1")) << mb;
  EXPECT_EQ(b->Cmd("read 1 4096 2"), "ok 5a5a");
  // A store by the test "engine" into the device is seen by both.
  dev_[kDataA + 3 * kPage] = 0x99;
  EXPECT_EQ(b->Cmd("read 1 12288 1"), "ok 99");
  EXPECT_EQ(a->Cmd("read 1 12288 1"), "ok 99");

  // Each MapAck told the daemon the client's own address (sent before Map returned, so a later
  // round trip of the same client is behind it on the socket).
  EXPECT_EQ(a->Cmd("sessions"), "ok 2");
  EXPECT_EQ(b->Cmd("sessions"), "ok 2");
  auto addrs = host_->client_addresses(f_);
  ASSERT_EQ(addrs.size(), 2u);
  std::vector<std::string> got;
  for (uint64_t x : addrs) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", reinterpret_cast<void*>(x));
    got.push_back(buf);
  }
  EXPECT_TRUE(std::find(got.begin(), got.end(), Field(ma, "addr")) != got.end()) << ma;
  EXPECT_TRUE(std::find(got.begin(), got.end(), Field(mb, "addr")) != got.end()) << mb;
}

TEST_F(ClientTest, RecallRemapsInPlace) {
  StartServer();
  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 r"), "ok 1"));
  EXPECT_EQ(a->Cmd("read 1 0 2"), "ok 1111");
  // A copy-on-write to a new block: the mapping shows the new bytes at the same address.
  std::memset(dev_ + kSpare, 0x77, kPage);
  host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare);  // returns once the client acked
  EXPECT_EQ(a->Cmd("read 1 0 2"), "ok 7777");
  EXPECT_EQ(a->Cmd("read 1 4096 2"), "ok 1111");  // untouched pages stay
  // Punch: zeros. Truncate: a load traps (EIO in the guard) and is reported.
  host_->SetPages(f_, 1, 1, LayoutKind::kZero);
  EXPECT_EQ(a->Cmd("read 1 4096 2"), "ok 0000");
  host_->SetPages(f_, 2, 1, LayoutKind::kBeyondEof);
  EXPECT_TRUE(StartsWith(a->Cmd("read 1 8192 1"), "err 5 ")) << Events();
  ASSERT_TRUE(host_->WaitUntil([&] {
    for (const auto& f : host_->faults()) {
      if (f.pid == a->pid() && f.fence_trap && f.offset == 8192) return true;
    }
    return false;
  }));
  // Data comes back where the file is written again.
  std::memset(dev_ + kSpare + kPage, 0x33, kPage);
  host_->SetPages(f_, 2, 1, LayoutKind::kData, kSpare + kPage);
  EXPECT_EQ(a->Cmd("read 1 8192 1"), "ok 33");
  EXPECT_EQ(server_->counters().recalls, 4u);
  EXPECT_EQ(server_->counters().cutoffs, 0u);
}

TEST_F(ClientTest, FailureReachesEveryMappingOfEveryOwnerAtItsOwnAddress) {
  // /data/g shares /data/f's first eight blocks (a reflink clone).
  Ino g = host_->AddFile(data_, "g", 8, 0644);
  host_->SetPages(g, 0, 8, LayoutKind::kData, kDataA);
  StartServer();
  auto a = Connected();
  auto b = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdonly"), "ok 1"));
  const std::string a1 = a->Cmd("map 1 0 65536 r");
  const std::string a2 = a->Cmd("map 1 4096 8192 r");
  ASSERT_TRUE(StartsWith(a2, "ok 2")) << a2;
  ASSERT_TRUE(StartsWith(b->Cmd("open /data/g rdonly"), "ok 1"));
  const std::string b1 = b->Cmd("map 1 0 32768 r");
  ASSERT_TRUE(StartsWith(b1, "ok 1")) << b1;
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 3; }));

  auto notices = host_->Fail(kDataA + kPage, kPage);  // the block behind file offset 4096
  EXPECT_EQ(notices.size(), 3u);
  const std::string na = a->Cmd("notices 2");
  ASSERT_TRUE(StartsWith(na, "ok 2")) << na;
  EXPECT_NE(na.find("map=1,addr="), std::string::npos) << na;
  EXPECT_NE(na.find(",off=4096,len=4096,fo=4096"), std::string::npos) << na;
  EXPECT_NE(na.find("map=2,addr=" + Field(a2, "addr") + ",off=0,len=4096,fo=4096"),
            std::string::npos)
      << na << " / " << a2;
  const std::string nb = b->Cmd("notices 1");
  ASSERT_TRUE(StartsWith(nb, "ok 1")) << nb;
  EXPECT_NE(nb.find("map=1,addr="), std::string::npos);
  EXPECT_NE(nb.find(",off=4096,len=4096,fo=4096"), std::string::npos) << nb;
  // No false victims: other pages read fine; the bad page traps and is reported.
  EXPECT_EQ(b->Cmd("read 1 0 1"), "ok 11");
  EXPECT_EQ(a->Cmd("read 1 8192 1"), "ok 11");
  EXPECT_TRUE(StartsWith(a->Cmd("read 1 4096 1"), "err 5 "));
  EXPECT_TRUE(StartsWith(b->Cmd("read 1 4096 1"), "err 5 "));
  ASSERT_TRUE(host_->WaitUntil([&] {
    int seen = 0;
    for (const auto& f : host_->faults()) {
      seen += f.fence_trap && f.offset == 4096 && (f.pid == a->pid() || f.pid == b->pid());
    }
    return seen == 2;
  }));
  EXPECT_EQ(server_->counters().notices, 3u);
}

TEST_F(ClientTest, AnUnguardedLoadOfAFencedPageIsReportedThenKillsByBus) {
  StartServer();
  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 r"), "ok 1"));
  host_->Fail(kDataA + 2 * kPage, kPage);
  ASSERT_TRUE(StartsWith(a->Cmd("notices 1"), "ok 1"));
  a->Send("load 1 8192");
  const int status = a->Wait();
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGBUS);
  ASSERT_TRUE(host_->WaitUntil([&] {
    for (const auto& f : host_->faults()) {
      if (f.pid == a->pid() && f.fence_trap && f.offset == 8192) return true;
    }
    return false;
  }));
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 0; }));
}

TEST_F(ClientTest, AStoreToAPunchedPageIsAPlainSegvNeverALoop) {
  // A punched page of a writable mapping is a read-only zero page: a store there is the
  // program's own fault. The handler retries it once (it might have raced with a remap), then
  // hands it on: the process dies by SIGSEGV, without reporting to the daemon.
  StartServer();
  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 rw"), "ok 1"));
  host_->SetPages(f_, 1, 1, LayoutKind::kZero);
  EXPECT_EQ(a->Cmd("read 1 4096 1"), "ok 00");
  EXPECT_EQ(a->Cmd("fill 1 0 1 7"), "ok");  // data pages still take stores
  a->Send("fill 1 4096 1 7");
  const int status = a->Wait();
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
  EXPECT_TRUE(host_->faults().empty());
  EXPECT_EQ(dev_[kDataA], 7);
}

TEST_F(ClientTest, AClientCrashReleasesItsLeases) {
  StartServer();
  auto a = Connected();
  auto b = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(b->Cmd("open /data/f rdonly"), "ok 1"));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 r"), "ok"));
  ASSERT_TRUE(StartsWith(b->Cmd("map 1 0 4096 r"), "ok"));
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 4; }));
  a->Send("crash");
  const int status = a->Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->leases_of(a->pid()) == 0; }));
  EXPECT_EQ(host_->leases_of(b->pid()), 1u);
  EXPECT_TRUE(WaitForEvent("released 3 mappings")) << Events();
  // The survivor still follows recalls (nobody waits on the dead client).
  std::memset(dev_ + kSpare, 0x44, kPage);
  host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare);
  EXPECT_EQ(b->Cmd("read 1 0 1"), "ok 44");
  // A clean exit releases too.
  EXPECT_EQ(b->Cmd("exit"), "ok");
  b->Wait();
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 0; }));
}

TEST_F(ClientTest, DaemonDeathFencesEveryMappingAndFailsLaterCalls) {
  // The daemon in its own process, so that it can be killed.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t daemon = fork();
  if (daemon == 0) {
    close(ready[0]);
    serve::ServerOptions o;
    o.socket_path = socket_;
    auto server = serve::Server::Start(host_.get(), o);
    char c = server.ok() ? 'r' : 'x';
    ssize_t n = write(ready[1], &c, 1);
    (void)n;
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(c, 'r');

  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 rw"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 r"), "ok 2"));
  EXPECT_EQ(a->Cmd("read 1 0 1"), "ok 11");
  kill(daemon, SIGKILL);
  waitpid(daemon, nullptr, 0);
  const std::string n = a->Cmd("notices 2");
  ASSERT_TRUE(StartsWith(n, "ok 2")) << n;
  EXPECT_NE(n.find("map=1,addr="), std::string::npos);
  EXPECT_NE(n.find("removal=1"), std::string::npos);
  EXPECT_EQ(n.find("removal=0"), std::string::npos) << n;
  EXPECT_TRUE(StartsWith(a->Cmd("read 1 0 1"), "err 5 "));  // writable mapping fenced
  EXPECT_TRUE(StartsWith(a->Cmd("read 2 0 1"), "err 5 "));  // read-only too
  EXPECT_TRUE(StartsWith(a->Cmd("fill 1 0 1 1"), "err 5 "));
  EXPECT_EQ(a->Cmd("connected"), "ok 0");
  EXPECT_TRUE(StartsWith(a->Cmd("open /data/f rdonly"), "err " + std::to_string(ESHUTDOWN)));
  EXPECT_TRUE(StartsWith(a->Cmd("persist 1 0 4096"), "err " + std::to_string(ESHUTDOWN)));
  EXPECT_EQ(a->Cmd("unmap 1"), "ok");

  // A restarted daemon replaces the stale socket and serves new clients.
  StartServer();
  auto b = Connected();
  ASSERT_TRUE(StartsWith(b->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(b->Cmd("map 1 0 4096 r"), "ok 1"));
  EXPECT_EQ(b->Cmd("read 1 0 1"), "ok 11");
}

TEST_F(ClientTest, NonRootClientsAreRefusedWhatTheyMayNotOpen) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to another uid";
  host_->AddFile(kRootIno, "secret", 1, 0600);
  host_->AddFile(kRootIno, "public", 1, 0644);
  host_->AddFile(kRootIno, "mine", 1, 0644, 65534, 65534);
  Ino priv = host_->AddDir(kRootIno, "private", 0700);
  host_->AddFile(priv, "f", 1, 0644);
  chmod(device_.c_str(), 0644);  // everyone may read the device, only root write it
  serve::ServerOptions o;
  o.socket_mode = 0666;
  StartServer(o);
  auto p = std::make_unique<Probe>();
  ASSERT_EQ(p->Cmd("setuid 65534 65534"), "ok");
  const std::string hello = p->Cmd("connect " + socket_);
  ASSERT_TRUE(StartsWith(hello, "ok")) << hello;
  EXPECT_EQ(Field(hello, "writable"), "0");
  EXPECT_TRUE(StartsWith(p->Cmd("open /secret rdonly"), "err 13 "));
  EXPECT_TRUE(StartsWith(p->Cmd("open /public rdwr"), "err 13 "));
  const std::string denied = p->Cmd("open /private/f rdonly");
  EXPECT_TRUE(StartsWith(denied, "err 13 /private")) << denied;
  ASSERT_TRUE(StartsWith(p->Cmd("open /public rdonly"), "ok 1"));
  EXPECT_TRUE(StartsWith(p->Cmd("map 1 0 4096 rw"), "err 13 "));  // a read-only open
  ASSERT_TRUE(StartsWith(p->Cmd("open /mine rdwr"), "ok 2"));
  EXPECT_TRUE(StartsWith(p->Cmd("map 2 0 4096 rw"), "err 13 "));  // read-only device access
  EXPECT_TRUE(StartsWith(p->Cmd("map 2 0 4096 r"), "ok 1"));
  EXPECT_TRUE(StartsWith(p->Cmd("map 1 0 4096 r"), "ok 2"));

  // Without read access to the device there are no direct maps at all.
  chmod(device_.c_str(), 0600);
  auto q = std::make_unique<Probe>();
  ASSERT_EQ(q->Cmd("setuid 65534 65534"), "ok");
  const std::string refused = q->Cmd("connect " + socket_);
  EXPECT_TRUE(StartsWith(refused, "err 13 ")) << refused;
  EXPECT_NE(refused.find("may not open the device"), std::string::npos) << refused;
}

TEST_F(ClientTest, MalformedMessagesCloseOnlyThatSession) {
  StartServer();
  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 r"), "ok 1"));

  int garbage = RawConnect();
  const char junk[] = "not a daxfs message";
  ASSERT_EQ(send(garbage, junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  EXPECT_TRUE(RawClosed(garbage));
  close(garbage);

  int before_hello = RawConnect();
  RawSend(before_hello, proto::Open{proto::kOpenRead, "/data/f"}, 3);
  auto err = RawReceive(before_hello);
  ASSERT_OK(err);
  EXPECT_EQ(err->header.type, proto::MessageType::kError);
  EXPECT_TRUE(RawClosed(before_hello));
  close(before_hello);

  int unknown = RawConnect();
  RawHello(unknown);
  std::vector<uint8_t> msg = proto::Encode(proto::Unmap{1}, 7);
  base::EncodeU16(msg.data() + 6, 99);  // type 99
  ASSERT_OK(proto::SendMessage(unknown, msg));
  auto reply = RawReceive(unknown);
  ASSERT_OK(reply);
  ASSERT_EQ(reply->header.type, proto::MessageType::kError);
  EXPECT_EQ(reply->header.request_id, 7u);
  EXPECT_EQ(std::get<proto::ErrorReply>(reply->body).code, static_cast<uint32_t>(EOPNOTSUPP));
  RawSend(unknown, proto::StatusRequest{}, 8);  // still served
  auto status = RawReceive(unknown);
  ASSERT_OK(status);
  EXPECT_EQ(status->header.type, proto::MessageType::kStatusReply);
  RawSend(unknown, proto::MapReply{}, 9);  // a daemon's message from a client
  EXPECT_TRUE(RawClosed(unknown));
  close(unknown);

  int truncated = RawConnect();
  RawHello(truncated);
  std::vector<uint8_t> cut = proto::Encode(proto::Map{1, 0, 4096, proto::kProtRead}, 4);
  cut.resize(cut.size() - 3);
  base::EncodeU32(cut.data() + 12, static_cast<uint32_t>(cut.size() - proto::kHeaderSize));
  ASSERT_OK(proto::SendMessage(truncated, cut));
  EXPECT_TRUE(RawClosed(truncated));
  close(truncated);

  int oversize = RawConnect();
  RawHello(oversize);
  std::vector<uint8_t> big = proto::Encode(proto::StatusRequest{}, 5);
  big.resize(proto::kMaxMessage + 100);
  base::EncodeU32(big.data() + 12, static_cast<uint32_t>(big.size() - proto::kHeaderSize));
  ASSERT_OK(proto::SendMessage(oversize, big));
  EXPECT_TRUE(RawClosed(oversize));
  close(oversize);

  int passing = RawConnect();
  RawHello(passing);
  ASSERT_OK(proto::SendMessage(passing, proto::Encode(proto::StatusRequest{}, 6), 0));  // an fd
  EXPECT_TRUE(RawClosed(passing));
  close(passing);

  // The well-behaved client never noticed: it reads, and follows a recall.
  EXPECT_EQ(a->Cmd("read 1 0 1"), "ok 11");
  std::memset(dev_ + kSpare, 0x66, kPage);
  host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare);
  EXPECT_EQ(a->Cmd("read 1 0 1"), "ok 66");
  EXPECT_EQ(a->Cmd("connected"), "ok 1");
  EXPECT_GE(server_->counters().cutoffs, 5u) << Events();
}

TEST_F(ClientTest, AnUnacknowledgedRecallCutsTheClientOff) {
  serve::ServerOptions o;
  o.recall_timeout_ms = 200;
  StartServer(o);
  int raw = RawConnect();
  RawHello(raw);
  RawSend(raw, proto::Open{proto::kOpenRead, "/data/f"}, 2);
  auto opened = RawReceive(raw);
  ASSERT_OK(opened);
  const uint64_t file = std::get<proto::OpenReply>(opened->body).file_id;
  RawSend(raw, proto::Map{file, 0, 65536, proto::kProtRead}, 3);
  auto mapped = RawReceive(raw);
  ASSERT_OK(mapped);
  ASSERT_EQ(mapped->header.type, proto::MessageType::kMapReply);
  ASSERT_EQ(host_->live_leases(), 1u);
  host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare);  // returns after the timeout
  EXPECT_EQ(server_->counters().cutoffs, 1u);
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 0; }));
  EXPECT_TRUE(HasEvent("not acknowledged within 200 ms")) << Events();
  auto recall = RawReceive(raw);
  ASSERT_OK(recall);
  EXPECT_EQ(recall->header.type, proto::MessageType::kLayoutRecall);
  EXPECT_EQ(std::get<proto::LayoutRecall>(recall->body).sequence, 1u);
  EXPECT_TRUE(RawClosed(raw));
  close(raw);
}

// A raw client (the test speaks the protocol itself) with /data/f mapped whole; returns the
// socket and the mapping id.
struct RawMapping {
  int fd = -1;
  uint64_t mapping_id = 0;
};

TEST_F(ClientTest, OneChangeRecallsEveryClientBeforeWaitingForAny) {
  // Three clients that acknowledge only once all three have their recall: they pass only if
  // the daemon sent every recall before waiting for the first acknowledgement (send, then
  // settle with one shared deadline). Waiting per client would cut the first one off.
  serve::ServerOptions o;
  o.recall_timeout_ms = 30000;
  StartServer(o);
  std::vector<RawMapping> raws(3);
  for (RawMapping& r : raws) {
    r.fd = RawConnect();
    RawHello(r.fd);
    RawSend(r.fd, proto::Open{proto::kOpenRead, "/data/f"}, 2);
    auto opened = RawReceive(r.fd);
    ASSERT_OK(opened);
    RawSend(
        r.fd,
        proto::Map{std::get<proto::OpenReply>(opened->body).file_id, 0, 65536, proto::kProtRead},
        3);
    auto mapped = RawReceive(r.fd);
    ASSERT_OK(mapped);
    ASSERT_EQ(mapped->header.type, proto::MessageType::kMapReply);
    r.mapping_id = std::get<proto::MapReply>(mapped->body).mapping_id;
  }
  std::thread change([&] { host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare); });
  std::vector<uint64_t> sequences;
  for (RawMapping& r : raws) {
    auto recall = RawReceive(r.fd);
    ASSERT_OK(recall);
    ASSERT_EQ(recall->header.type, proto::MessageType::kLayoutRecall);
    const auto& body = std::get<proto::LayoutRecall>(recall->body);
    EXPECT_EQ(body.mapping_id, r.mapping_id);
    EXPECT_EQ(body.file_offset, 0u);
    EXPECT_EQ(body.length, kPage);
    ASSERT_EQ(body.segments.size(), 1u);
    EXPECT_EQ(body.segments[0].device_offset, kSpare);
    sequences.push_back(body.sequence);
  }
  for (size_t i = 0; i < raws.size(); ++i) {
    RawSend(raws[i].fd, proto::RecallAck{raws[i].mapping_id, sequences[i], 0}, 0);
  }
  change.join();
  EXPECT_EQ(server_->counters().recalls, 3u);
  EXPECT_EQ(server_->counters().cutoffs, 0u) << Events();
  EXPECT_EQ(host_->live_leases(), 3u);
  for (RawMapping& r : raws) close(r.fd);
}

TEST_F(ClientTest, AnAcknowledgementGetsThroughWhileRequestsWaitOnTheFilesystemLock) {
  // While a change holds the filesystem lock waiting for this client's acknowledgement, the
  // client first sends a fault report and an Open (both need that lock in the engine), then
  // the acknowledgement: the session's reader must take the acknowledgement while its worker
  // waits on the lock, or the client would be cut off.
  serve::ServerOptions o;
  o.recall_timeout_ms = 30000;
  StartServer(o);
  int raw = RawConnect();
  RawHello(raw);
  RawSend(raw, proto::Open{proto::kOpenRead, "/data/f"}, 2);
  auto opened = RawReceive(raw);
  ASSERT_OK(opened);
  const uint64_t file = std::get<proto::OpenReply>(opened->body).file_id;
  RawSend(raw, proto::Map{file, 0, 65536, proto::kProtRead}, 3);
  auto mapped = RawReceive(raw);
  ASSERT_OK(mapped);
  const uint64_t mapping = std::get<proto::MapReply>(mapped->body).mapping_id;
  std::thread change([&] { host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare); });
  auto recall = RawReceive(raw);  // the change now holds the filesystem lock
  ASSERT_OK(recall);
  ASSERT_EQ(recall->header.type, proto::MessageType::kLayoutRecall);
  proto::ReportFault fault;
  fault.mapping_id = mapping;
  fault.offset = 2 * kPage;
  fault.signo = SIGSEGV;
  fault.code = 2;  // SEGV_ACCERR
  fault.flags = proto::kFaultFenceTrap;
  RawSend(raw, fault, 0);
  RawSend(raw, proto::Open{proto::kOpenRead, "/data/f"}, 4);
  RawSend(raw, proto::RecallAck{mapping, std::get<proto::LayoutRecall>(recall->body).sequence, 0},
          0);
  change.join();
  auto reopened = RawReceive(raw);
  ASSERT_OK(reopened);
  EXPECT_EQ(reopened->header.type, proto::MessageType::kOpenReply);
  EXPECT_EQ(reopened->header.request_id, 4u);
  EXPECT_EQ(server_->counters().cutoffs, 0u) << Events();
  ASSERT_EQ(host_->faults().size(), 1u);
  EXPECT_EQ(host_->faults()[0].offset, 2 * kPage);
  EXPECT_TRUE(host_->faults()[0].fence_trap);
  close(raw);
}

TEST_F(ClientTest, AHungClientIsCutOffAndFindsItsMappingsFencedWhenItRunsAgain) {
  serve::ServerOptions o;
  o.recall_timeout_ms = 200;
  StartServer(o);
  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 rw"), "ok 1"));
  ASSERT_EQ(a->Cmd("stop"), "ok");
  ASSERT_TRUE(a->WaitStopped());
  host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare);  // returns at the deadline
  EXPECT_EQ(server_->counters().cutoffs, 1u);
  EXPECT_EQ(server_->counters().kills, 0u);  // not asked to: the client lives on
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 0; }));
  kill(a->pid(), SIGCONT);
  // Running again, it applies the recall it had queued, then finds the end of the stream:
  // every page fenced, its handler told, later calls refused.
  const std::string n = a->Cmd("notices 1");
  ASSERT_TRUE(StartsWith(n, "ok 1")) << n;
  EXPECT_NE(n.find("removal=1"), std::string::npos) << n;
  EXPECT_TRUE(StartsWith(a->Cmd("read 1 4096 1"), "err 5 "));
  EXPECT_TRUE(StartsWith(a->Cmd("fill 1 4096 1 7"), "err 5 "));
  EXPECT_EQ(dev_[kDataA + kPage], 0x11);
  EXPECT_EQ(a->Cmd("connected"), "ok 0");
}

TEST_F(ClientTest, KillOnCutoffFencesAHungClientBeforeTheChangeCompletes) {
  serve::ServerOptions o;
  o.recall_timeout_ms = 200;
  o.kill_on_cutoff = true;
  StartServer(o);
  auto a = Connected();
  auto b = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 rw"), "ok 1"));
  ASSERT_TRUE(StartsWith(b->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(b->Cmd("map 1 0 65536 r"), "ok 1"));
  ASSERT_EQ(a->Cmd("stop"), "ok");
  ASSERT_TRUE(a->WaitStopped());
  std::memset(dev_ + kSpare, 0x55, kPage);
  host_->SetPages(f_, 0, 1, LayoutKind::kData, kSpare);
  // By the time the change completes, the hung process is dead (its address space gone).
  const int status = a->ExitedStatus();
  ASSERT_NE(status, -1) << Events();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(server_->counters().kills, 1u);
  EXPECT_EQ(server_->counters().cutoffs, 1u);
  EXPECT_TRUE(HasEvent("killed")) << Events();
  // The healthy client followed the same change and was left alone.
  EXPECT_EQ(b->Cmd("read 1 0 1"), "ok 55");
  EXPECT_EQ(b->Cmd("connected"), "ok 1");
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 1; }));
}

TEST_F(ClientTest, AForkedChildInheritsNoMappings) {
  StartServer();
  auto a = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 65536 rw"), "ok 1"));
  // MADV_DONTFORK: the child has nothing at the mapping's address; the client's fault handler
  // leaves its fault to the previous handler (the probe's, which exits 50 in a child) and
  // reports nothing to the daemon.
  EXPECT_EQ(a->Cmd("fork 1 0"), "ok exit=50");
  EXPECT_EQ(a->Cmd("fork 1 " + std::to_string(9 * kPage)), "ok exit=50");
  // A recall afterwards still reaches every area of the parent's mapping, and is not inherited.
  std::memset(dev_ + kSpare, 0x3c, kPage);
  host_->SetPages(f_, 1, 1, LayoutKind::kData, kSpare);
  EXPECT_EQ(a->Cmd("read 1 4096 1"), "ok 3c");
  EXPECT_EQ(a->Cmd("fork 1 4096"), "ok exit=50");
  EXPECT_EQ(a->Cmd("read 1 0 1"), "ok 11");
  EXPECT_TRUE(host_->faults().empty());
}

TEST_F(ClientTest, AWriteOnlyOpenCannotBeMappedAsInLinux) {
  // mmap(2) of a file opened O_WRONLY fails with EACCES whatever the protection.
  StartServer();
  auto c = Client::Connect(socket_);
  ASSERT_OK(c);
  auto w = (*c)->Open("/data/f", O_WRONLY);
  ASSERT_OK(w);
  EXPECT_ERRNO((*c)->Map(*w, 0, kPage, MapProt::kRead), EACCES);
  EXPECT_ERRNO((*c)->Map(*w, 0, kPage, MapProt::kReadWrite), EACCES);
  auto rw = (*c)->Open("/data/f", O_RDWR);
  ASSERT_OK(rw);
  EXPECT_OK((*c)->Map(*rw, 0, kPage, MapProt::kReadWrite));
  EXPECT_EQ(host_->live_leases(), 0u);  // the one mapping was released when its handle went
}

TEST_F(ClientTest, VersionNegotiation) {
  StartServer();
  int newer = RawConnect();
  RawSend(newer, proto::Hello{2, 5, 0, "future"}, 1);
  auto refused = RawReceive(newer);
  ASSERT_OK(refused);
  ASSERT_EQ(refused->header.type, proto::MessageType::kError);
  EXPECT_EQ(std::get<proto::ErrorReply>(refused->body).code,
            static_cast<uint32_t>(EPROTONOSUPPORT));
  close(newer);
  // A client of a later protocol only (its Hello's header says so too) is answered, not dropped.
  int later = RawConnect();
  std::vector<uint8_t> later_hello = proto::Encode(proto::Hello{7, 8, 0, "later"}, 1);
  base::EncodeU16(later_hello.data() + 4, 7);
  ASSERT_OK(proto::SendMessage(later, later_hello));
  auto answered = RawReceive(later);
  ASSERT_OK(answered);
  ASSERT_EQ(answered->header.type, proto::MessageType::kError);
  EXPECT_EQ(std::get<proto::ErrorReply>(answered->body).code,
            static_cast<uint32_t>(EPROTONOSUPPORT));
  EXPECT_TRUE(RawClosed(later));
  close(later);
  int wide = RawConnect();
  RawSend(wide, proto::Hello{1, 9, 0, "wide"}, 1);
  int fd = -1;
  auto hello = RawReceive(wide, &fd);
  ASSERT_OK(hello);
  ASSERT_EQ(hello->header.type, proto::MessageType::kHelloReply);
  EXPECT_EQ(std::get<proto::HelloReply>(hello->body).version, 1);
  EXPECT_EQ(std::get<proto::HelloReply>(hello->body).device_size, kDeviceSize);
  EXPECT_GE(fd, 0);
  close(fd);
  close(wide);
}

// ---- in-process (the client library in the test process) -------------------------------------

TEST_F(ClientTest, LimitsAndBadRequestsGetClearErrors) {
  host_->AddSymlink(kRootIno, "link", "/data/f");
  serve::ServerOptions o;
  o.max_files = 2;
  o.max_mappings = 2;
  StartServer(o);
  auto c = Client::Connect(socket_);
  ASSERT_OK(c);
  Client& client = **c;
  EXPECT_TRUE(client.device().writable);
  EXPECT_EQ(client.device().size, kDeviceSize);
  EXPECT_ERRNO(client.Open("/nope", O_RDONLY), ENOENT);
  EXPECT_ERRNO(client.Open("/data", O_RDONLY), EISDIR);
  EXPECT_ERRNO(client.Open("data/f", O_RDONLY), EINVAL);
  EXPECT_ERRNO(client.Open("/data/f/x", O_RDONLY), ENOTDIR);
  EXPECT_ERRNO(client.Open("/data/f", O_RDONLY | O_CREAT), EINVAL);
  auto f = client.Open("/link", O_RDONLY);
  ASSERT_OK(f);
  EXPECT_EQ(f->ino, f_);
  auto g = client.Open("/data/../data/./f", O_RDWR);
  ASSERT_OK(g);
  EXPECT_ERRNO(client.Open("/data/f", O_RDONLY), EMFILE);
  EXPECT_ERRNO(client.Close(ClientFile{999}), EBADF);
  EXPECT_ERRNO(client.Map(*f, 1, 4096, MapProt::kRead), EINVAL);
  EXPECT_ERRNO(client.Map(*f, 0, 17 * kPage, MapProt::kRead), EINVAL);
  EXPECT_ERRNO(client.Map(*f, 0, 0, MapProt::kRead), EINVAL);
  EXPECT_ERRNO(client.Map(*f, 0, 4096, MapProt::kReadWrite), EACCES);
  auto m1 = client.Map(*f, 0, 4096, MapProt::kRead);
  ASSERT_OK(m1);
  auto m2 = client.Map(*g, 0, 100, MapProt::kReadWrite);  // rounded up to a page
  ASSERT_OK(m2);
  EXPECT_EQ((*m2)->length(), kPage);
  EXPECT_TRUE((*m2)->writable());
  EXPECT_ERRNO(client.Map(*f, 0, 4096, MapProt::kRead), ENOMEM);
  m1->reset();
  ASSERT_TRUE(host_->WaitUntil([&] { return host_->live_leases() == 1; }));
  EXPECT_OK(client.Map(*f, 0, 4096, MapProt::kRead));  // room again (and released at once)
  EXPECT_OK(client.Close(*f));
  EXPECT_ERRNO(client.Close(*f), EBADF);
  EXPECT_EQ((*m2)->data()[0], 0x11);  // mappings outlive their file handle
  host_->SetReadOnly(true);
  EXPECT_ERRNO(client.Open("/data/f", O_RDWR), EROFS);
}

TEST_F(ClientTest, TheClientLimitRefusesWithEusersUntilASessionEnds) {
  serve::ServerOptions o;
  o.max_sessions = 1;
  StartServer(o);
  auto first = Client::Connect(socket_);
  ASSERT_OK(first);
  auto second = Client::Connect(socket_);
  EXPECT_ERRNO(second, EUSERS);
  first->reset();
  ASSERT_TRUE(WaitForEvent("closed (client closed the connection)")) << Events();
  auto third = Client::Connect(socket_);
  EXPECT_OK(third);
}

TEST_F(ClientTest, LongLayoutsArriveInPieces) {
  // 5,000 pages alternating data and holes: 5,000 segments, several messages each way.
  constexpr uint64_t kPages = 5000;
  Ino big = host_->AddFile(data_, "big", kPages, 0644);
  auto block = [](uint64_t n) { return kSpare + (n % 256) * kPage; };
  for (uint64_t n = 0; n < 256; ++n) dev_[block(n)] = static_cast<uint8_t>(n);
  host_->Rewrite(big, 0, kPages, [&](uint64_t i) {
    return i % 2 == 0 ? testing::FakePage{LayoutKind::kData, block(i / 2)} : testing::FakePage{};
  });
  StartServer();
  auto c = Client::Connect(socket_);
  ASSERT_OK(c);
  auto f = (*c)->Open("/data/big", O_RDONLY);
  ASSERT_OK(f);
  auto m = (*c)->Map(*f, 0, kPages * kPage, MapProt::kRead);
  ASSERT_OK(m);
  const uint8_t* p = (*m)->data();
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(p[i * kPage], i % 2 == 0 ? static_cast<uint8_t>(i / 2 % 256) : 0) << i;
  }
  // One recall of the whole range, every data page moved to another block.
  host_->Rewrite(big, 0, kPages, [&](uint64_t i) {
    return i % 2 == 0 ? testing::FakePage{LayoutKind::kData, block(i / 2 + 1)}
                      : testing::FakePage{};
  });
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(p[i * kPage], i % 2 == 0 ? static_cast<uint8_t>((i / 2 + 1) % 256) : 0) << i;
  }
  EXPECT_EQ(server_->counters().recalls, 1u);
  EXPECT_EQ(server_->counters().cutoffs, 0u);
}

TEST_F(ClientTest, RandomRecallsNeverShowAFreedOrReusedBlock) {
  // The engine's promise, end to end: a block a mapping stopped using is freed (here: filled
  // with garbage and handed out again) only after the client remapped. A reader thread loads
  // from two overlapping mappings all along; every load must see the page's own data (any
  // generation), zeros, or a trap (EIO in the guard), never garbage or another page's block.
  const uint64_t seed = base::SeedFromEnv(20261203);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with DAXFS_SEED)");
  base::Random rng(seed);
  constexpr uint64_t kPages = 32;
  constexpr uint64_t kGarbage = 0xdeaddeaddeaddeadULL;
  auto tag = [](uint64_t page, uint64_t generation) {
    return (0xa5ULL << 56) | (page << 32) | generation;
  };
  auto word = [&](uint64_t block) { return reinterpret_cast<uint64_t*>(dev_ + block); };
  std::vector<uint64_t> free_blocks;
  for (uint64_t b = kSpare; b < kDeviceSize; b += kPage) free_blocks.push_back(b);
  std::vector<uint64_t> block_of(kPages, 0);  // 0: no block (zero or past EOF)
  Ino r = host_->AddFile(data_, "r", kPages, 0644);
  for (uint64_t p = 0; p < kPages; ++p) {
    block_of[p] = free_blocks.back();
    free_blocks.pop_back();
    *word(block_of[p]) = tag(p, 0);
    host_->SetPages(r, p, 1, LayoutKind::kData, block_of[p]);
  }
  StartServer();
  auto c = Client::Connect(socket_);
  ASSERT_OK(c);
  auto f = (*c)->Open("/data/r", O_RDONLY);
  ASSERT_OK(f);
  auto whole = (*c)->Map(*f, 0, kPages * kPage, MapProt::kRead);
  ASSERT_OK(whole);
  auto middle = (*c)->Map(*f, 8 * kPage, 16 * kPage, MapProt::kRead);
  ASSERT_OK(middle);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> loads{0}, traps{0}, wrong{0};
  std::string first_wrong;
  std::thread reader([&] {
    base::Random rr(seed + 1);
    while (!stop.load()) {
      const bool in_middle = rr.OneIn(2);
      const uint64_t page = in_middle ? 8 + rr.Uniform(16) : rr.Uniform(kPages);
      const uint8_t* at =
          in_middle ? (*middle)->data() + (page - 8) * kPage : (*whole)->data() + page * kPage;
      uint64_t v = 0;
      Status s =
          GuardClientMediaErrors([&] { v = *reinterpret_cast<const volatile uint64_t*>(at); });
      loads.fetch_add(1);
      if (!s.ok()) {
        traps.fetch_add(1);
        continue;
      }
      const bool ok = v == 0 || (v >> 56 == 0xa5 && ((v >> 32) & 0xffffff) == page);
      if (!ok && wrong.fetch_add(1) == 0) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "page %lu read 0x%016lx", static_cast<unsigned long>(page),
                      static_cast<unsigned long>(v));
        first_wrong = buf;
      }
    }
  });
  for (uint64_t generation = 1; generation <= 1500; ++generation) {
    const uint64_t p = rng.Uniform(kPages);
    const uint64_t old = block_of[p];
    const uint64_t action = rng.Uniform(10);
    if (action < 7) {  // a write's copy-on-write to a (possibly just reused) block
      block_of[p] = free_blocks.front();
      free_blocks.erase(free_blocks.begin());
      *word(block_of[p]) = tag(p, generation);
      host_->SetPages(r, p, 1, LayoutKind::kData, block_of[p]);
    } else if (action < 9) {  // punch
      block_of[p] = 0;
      host_->SetPages(r, p, 1, LayoutKind::kZero);
    } else {  // cut off (truncate-like)
      block_of[p] = 0;
      host_->SetPages(r, p, 1, LayoutKind::kBeyondEof);
    }
    if (old != 0) {  // freed: garbage, then handed out again later
      *word(old) = kGarbage;
      free_blocks.push_back(old);
    }
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(wrong.load(), 0u) << first_wrong;
  EXPECT_GT(loads.load(), 0u);
  EXPECT_EQ(server_->counters().cutoffs, 0u) << Events();
  // At the end both mappings show exactly the model.
  for (uint64_t p = 0; p < kPages; ++p) {
    uint64_t v = ~0ULL;
    Status s = GuardClientMediaErrors(
        [&] { v = *reinterpret_cast<const volatile uint64_t*>((*whole)->data() + p * kPage); });
    if (block_of[p] != 0) {
      ASSERT_OK(s);
      EXPECT_EQ(v, *word(block_of[p])) << p;
    } else if (s.ok()) {
      EXPECT_EQ(v, 0u) << p;  // punched; past-EOF pages trap
    }
  }
  std::printf("random recalls: %lu loads (%lu traps) during 1500 changes\n",
              static_cast<unsigned long>(loads.load()), static_cast<unsigned long>(traps.load()));
}

TEST_F(ClientTest, InjectErrorsAndStatusThroughTheDaemon) {
  StartServer();
  auto c = Client::Connect(socket_);
  ASSERT_OK(c);
  auto f = (*c)->Open("/data/f", O_RDONLY);
  ASSERT_OK(f);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<MappingNotice> heard;
  auto m = (*c)->Map(*f, 0, 16 * kPage, MapProt::kRead, [&](const MappingNotice& n) {
    std::lock_guard<std::mutex> lock(mu);
    heard.push_back(n);
    cv.notify_all();
  });
  ASSERT_OK(m);
  ASSERT_OK((*c)->GetStatus());  // a round trip: the MapAck before it has been applied
  EXPECT_EQ(host_->client_addresses(f_),
            std::vector<uint64_t>{reinterpret_cast<uint64_t>((*m)->data())});
  EXPECT_ERRNO((*c)->InjectErrorAt("/data/f", 9 * kPage), ENXIO);  // a hole
  auto report = (*c)->InjectErrorAt("/data/f", 4096 + 17);
  ASSERT_OK(report);
  EXPECT_EQ(report->offset, kDataA + kPage);
  EXPECT_EQ(report->notices, 1u);
  ASSERT_EQ(report->owners.size(), 1u);
  EXPECT_EQ(report->owners[0].ino, f_);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return heard.size() == 1; }));
  }
  EXPECT_EQ(heard[0].address, (*m)->data() + kPage);
  EXPECT_EQ(heard[0].length, kPage);
  EXPECT_EQ(heard[0].file_offset, kPage);
  EXPECT_EQ(heard[0].device_offset, kDataA + kPage);
  EXPECT_EQ(heard[0].path, "/data/f");
  EXPECT_EQ(heard[0].ino, f_);
  volatile uint8_t sink = 0;
  Status trapped = GuardClientMediaErrors([&] { sink = (*m)->data()[kPage + 5]; });
  EXPECT_ERRNO(trapped, EIO);
  EXPECT_EQ((*m)->data()[0], 0x11);
  auto errors = (*c)->Errors();
  ASSERT_OK(errors);
  ASSERT_EQ(errors->bad.size(), 1u);
  EXPECT_EQ(errors->bad[0].offset, kDataA + kPage);
  auto st = (*c)->GetStatus();
  ASSERT_OK(st);
  EXPECT_EQ(st->sessions.size(), 1u);
  EXPECT_EQ(st->sessions[0].mappings, 1u);
  EXPECT_EQ(st->sessions[0].pid, getpid());
  EXPECT_EQ(st->notices, 1u);
  (void)sink;
}

TEST_F(ClientTest, AReplyTooLongForOneMessageIsCutAndSaysSo) {
  constexpr uint64_t kRanges = 10000;  // 16 bytes each: more than one 64 KiB message
  for (uint64_t i = 0; i < kRanges; ++i) host_->AddBad(i * 2 * kPage, kPage);
  StartServer();
  auto c = Client::Connect(socket_);
  ASSERT_OK(c);
  auto errors = (*c)->Errors();
  ASSERT_OK(errors);
  EXPECT_LT(errors->bad.size(), kRanges);
  EXPECT_GT(errors->bad.size(), kRanges / 3);  // cut to what fits, not far below
  EXPECT_EQ(errors->bad[1].offset, 2 * kPage);
  EXPECT_NE(errors->incomplete.find(std::to_string(kRanges - errors->bad.size()) + " more"),
            std::string::npos)
      << errors->incomplete;
  EXPECT_TRUE((*c)->connected());
}

TEST_F(ClientTest, TheSocketIsCreatedSafely) {
  serve::ServerOptions o;
  o.socket_mode = 0600;
  StartServer(o);
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second daemon on a live socket is refused; a non-socket file is never replaced.
  o.socket_path = socket_;
  EXPECT_ERRNO(serve::Server::Start(host_.get(), o), EADDRINUSE);
  const std::string file = dir_ + "/not-a-socket";
  close(open(file.c_str(), O_CREAT | O_WRONLY, 0600));
  o.socket_path = file;
  EXPECT_ERRNO(serve::Server::Start(host_.get(), o), EEXIST);
  unlink(file.c_str());
  // A directory others may write to (without the sticky bit) is refused.
  const std::string open_dir = dir_ + "/open";
  mkdir(open_dir.c_str(), 0777);
  chmod(open_dir.c_str(), 0777);
  o.socket_path = open_dir + "/s.sock";
  EXPECT_ERRNO(serve::Server::Start(host_.get(), o), EPERM);
  rmdir(open_dir.c_str());
  server_->Stop();
  EXPECT_NE(stat(socket_.c_str(), &st), 0);  // removed on stop
}

}  // namespace
}  // namespace daxfs
