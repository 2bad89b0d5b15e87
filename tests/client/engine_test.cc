// The daemon over the real engine (OpenLayoutHost on a mounted DaxFs, images in /dev/shm) with
// real client processes (tests/client/client_probe): data written through one client's mapping
// is read by another, by the engine and after remount; every client hears every failure of
// every owner it maps at its own address (ground truth from bmap), no false victims, and the
// event log names each client's pid and uid; fenced loads trap and are reported; layout recalls
// under a seeded run of rewrites, punches and block reuse never show a client a freed or reused
// block; a writable lease keeps the file's blocks unshared; a crashed client releases its
// leases; a non-root client is refused what it may not open.
#include <fcntl.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/random.h"
#include "daxfs/dax.h"
#include "daxfs/layout.h"
#include "device/device.h"
#include "probe.h"
#include "serve/server.h"
#include "status_assert.h"

namespace daxfs {
namespace {

using testing::Probe;
constexpr uint64_t kBlock = 4096;

bool StartsWith(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::string Field(const std::string& reply, const std::string& key, size_t from = 0) {
  size_t at = reply.find(key + "=", from);
  if (at == std::string::npos) return "";
  at += key.size() + 1;
  size_t end = reply.find_first_of(" ,", at);
  return reply.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// Every "key=value" of `key` in a reply, in order.
std::vector<std::string> Fields(const std::string& reply, const std::string& key) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = reply.find(key + "=", at)) != std::string::npos) {
    out.push_back(Field(reply, key, at));
    at += key.size() + 1;
  }
  return out;
}

std::string HexOf(uint8_t byte, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", byte);
  return s;
}

class EngineServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    image_ = fmt::format("/dev/shm/daxfs-engine-serve-{}-{}.img", getpid(), counter++);
    log_ = image_ + ".events.jsonl";
    std::remove(log_.c_str());
    std::remove((image_ + ".badblocks").c_str());
    ASSERT_OK(device::CreateDeviceFile(image_, 64 << 20, true));
    ASSERT_OK(Filesystem::Format(image_, {.chunk_size = 1 << 20}));
    chmod(image_.c_str(), 0660);
    char tmpl[] = "/tmp/daxfs-engine-serve-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    socket_ = dir_ + "/daxfs.sock";
    Mount();
  }
  void TearDown() override {
    StopAll();
    std::remove(image_.c_str());
    std::remove(log_.c_str());
    std::remove((image_ + ".badblocks").c_str());
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }

  void Mount() {
    DaxOptions o;
    o.event_log = log_;
    o.shadow_tracking = {Tracking::kPageRmap, Tracking::kExtentSpace};
    auto dax = DaxFs::Open(image_, o);
    ASSERT_OK(dax);
    dax_ = std::move(*dax);
  }
  void Serve(serve::ServerOptions options = {}) {
    auto host = OpenLayoutHost(*dax_, image_);
    ASSERT_OK(host);
    host_ = std::move(*host);
    options.socket_path = socket_;
    options.on_event = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(line);
      cv_.notify_all();
    };
    auto server = serve::Server::Start(host_.get(), options);
    ASSERT_OK(server);
    server_ = std::move(*server);
  }
  void StopAll() {
    if (server_) server_->Stop();
    server_.reset();
    host_.reset();
    if (dax_) EXPECT_OK(dax_->Unmount());
    dax_.reset();
  }
  // Waits (at most 30 s, a guard against hangs) until `count` event lines contain `part`.
  bool WaitForEvent(const std::string& part, size_t count = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] {
      size_t n = 0;
      for (const auto& e : events_) n += e.find(part) != std::string::npos ? 1 : 0;
      return n >= count;
    });
  }

  Filesystem& fs() { return dax_->fs(); }
  Ino Dir(const std::string& name) {
    auto a = fs().Mkdir(kRootIno, name, 0755);
    EXPECT_OK(a);
    return a.ok() ? a->ino : 0;
  }
  Ino File(Ino dir, const std::string& name, uint64_t blocks, uint8_t byte, uint32_t mode = 0644) {
    auto a = fs().Create(dir, name, mode);
    EXPECT_OK(a);
    if (!a.ok()) return 0;
    std::vector<uint8_t> data(blocks * kBlock, byte);
    EXPECT_OK(fs().Write(a->ino, 0, data));
    return a->ino;
  }
  std::vector<uint8_t> Read(Ino ino, uint64_t offset, size_t n) {
    std::vector<uint8_t> out(n);
    auto got = fs().Read(ino, offset, out);
    EXPECT_OK(got);
    return out;
  }
  std::unique_ptr<Probe> Connected() {
    auto p = std::make_unique<Probe>();
    std::string r = p->Cmd("connect " + socket_);
    EXPECT_TRUE(StartsWith(r, "ok")) << r;
    return p;
  }
  std::vector<nlohmann::json> Log() {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }

  std::string image_, log_, dir_, socket_;
  std::unique_ptr<DaxFs> dax_;
  std::unique_ptr<LayoutHost> host_;
  std::unique_ptr<serve::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

TEST_F(EngineServeTest, DataWrittenThroughOneClientIsReadByAnotherByTheEngineAndAfterRemount) {
  Ino data = Dir("data");
  Ino f = File(data, "f", 8, 0x11);
  Serve();
  auto a = Connected();
  auto b = Connected();
  ASSERT_TRUE(StartsWith(a->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(b->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(a->Cmd("map 1 0 32768 rw"), "ok 1"));
  ASSERT_TRUE(StartsWith(b->Cmd("map 1 0 32768 r"), "ok 1"));
  EXPECT_EQ(b->Cmd("read 1 4096 4"), "ok " + HexOf(0x11, 4));
  EXPECT_EQ(a->Cmd("fill 1 4096 8192 90"), "ok");  // 0x5a
  EXPECT_EQ(a->Cmd("persist 1 4096 8192"), "ok");
  EXPECT_EQ(b->Cmd("read 1 4096 4"), "ok " + HexOf(0x5a, 4));
  EXPECT_EQ(b->Cmd("read 1 12284 4"), "ok " + HexOf(0x5a, 4));
  EXPECT_EQ(b->Cmd("read 1 12288 4"), "ok " + HexOf(0x11, 4));
  EXPECT_EQ(Read(f, 4096, 8192), std::vector<uint8_t>(8192, 0x5a));
  // A writable lease keeps the file's blocks private, as a local writable mapping does.
  auto g = fs().Create(data, "g", 0644);
  ASSERT_OK(g);
  EXPECT_ERRNO(fs().Clone(f, g->ino), ETXTBSY);
  EXPECT_EQ(a->Cmd("exit"), "ok");
  EXPECT_EQ(b->Cmd("exit"), "ok");
  StopAll();
  Mount();
  EXPECT_EQ(Read(f, 0, 3 * kBlock)[kBlock], 0x5a);
  EXPECT_EQ(Read(f, 3 * kBlock, kBlock), std::vector<uint8_t>(kBlock, 0x11));
}

TEST_F(EngineServeTest, EveryClientHearsEveryFailureOfEveryOwnerAtItsOwnAddress) {
  Ino data = Dir("data");
  Ino f = File(data, "f", 16, 0x33);
  std::vector<Ino> files = {f};
  for (const char* name : {"g", "h"}) {
    auto c = fs().Create(data, name, 0644);
    ASSERT_OK(c);
    ASSERT_OK(fs().Clone(f, c->ino));
    files.push_back(c->ino);
  }
  Ino other = File(data, "other", 16, 0x44);
  // Each clone maps a different window, so the shared block sits at a different lease offset.
  const std::vector<std::string> paths = {"/data/f", "/data/g", "/data/h"};
  const std::vector<uint64_t> starts = {0, 4 * kBlock, 8 * kBlock};
  Serve();
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<std::string> addresses;
  for (size_t i = 0; i < 3; ++i) {
    probes.push_back(Connected());
    ASSERT_TRUE(StartsWith(probes[i]->Cmd("open " + paths[i] + " rdonly"), "ok 1"));
    std::string m = probes[i]->Cmd(fmt::format("map 1 {} {} r", starts[i], 8 * kBlock));
    ASSERT_TRUE(StartsWith(m, "ok 1")) << m;
    addresses.push_back(Field(m, "addr"));
  }
  auto bystander = Connected();
  ASSERT_TRUE(StartsWith(bystander->Cmd("open /data/other rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(bystander->Cmd("map 1 0 65536 r"), "ok 1"));

  // Block 9 of f: shared by all three, inside the windows of g (offset 5) and h (offset 1), not f.
  auto extents = fs().Bmap(f);
  ASSERT_OK(extents);
  uint64_t device = 0;
  for (const FileExtent& e : *extents) {
    if (e.file_offset <= 9 * kBlock && 9 * kBlock < e.file_offset + e.length)
      device = e.device_offset + (9 * kBlock - e.file_offset);
  }
  ASSERT_NE(device, 0u);
  // Ground truth: for each client, the pages of its window that map that device block.
  std::vector<std::set<uint64_t>> expected(3);
  for (size_t i = 0; i < 3; ++i) {
    auto ex = fs().Bmap(files[i]);
    ASSERT_OK(ex);
    for (const FileExtent& e : *ex) {
      if (device < e.device_offset || device >= e.device_offset + e.length) continue;
      uint64_t fo = e.file_offset + (device - e.device_offset);
      if (fo >= starts[i] && fo < starts[i] + 8 * kBlock) expected[i].insert(fo - starts[i]);
    }
  }
  EXPECT_TRUE(expected[0].empty());
  EXPECT_EQ(expected[1], std::set<uint64_t>{5 * kBlock});
  EXPECT_EQ(expected[2], std::set<uint64_t>{1 * kBlock});

  auto report = host_->InjectError(device + 100, 1);
  ASSERT_OK(report);
  EXPECT_EQ(report->media.owners.size(), 3u);  // all three files lost it
  for (size_t i = 1; i < 3; ++i) {
    std::string n = probes[i]->Cmd(fmt::format("notices {}", expected[i].size()));
    EXPECT_EQ(Fields(n, "off"), std::vector<std::string>{std::to_string(*expected[i].begin())})
        << n;
    EXPECT_EQ(Field(n, "len"), "4096");
    EXPECT_EQ(Field(n, "fo"), std::to_string(9 * kBlock));
    // The page is fenced in that client: a guarded read is EIO, and the trap is reported.
    std::string r = probes[i]->Cmd(fmt::format("read 1 {} 1", *expected[i].begin()));
    EXPECT_TRUE(StartsWith(r, "err 5")) << r;
  }
  // No false victims: a round trip orders the check after any notice queued before it.
  for (auto* p : {probes[0].get(), bystander.get()}) {
    EXPECT_TRUE(StartsWith(p->Cmd("sessions"), "ok"));
    EXPECT_EQ(p->Cmd("notices 0"), "ok 0");
  }
  EXPECT_EQ(probes[0]->Cmd("read 1 0 2"), "ok 3333");
  EXPECT_EQ(bystander->Cmd("read 1 0 2"), "ok 4444");
  (void)other;

  // The event log names every notified client mapping with the client's pid, uid and address.
  std::vector<nlohmann::json> log = Log();
  ASSERT_FALSE(log.empty());
  const nlohmann::json& failure = log.front();
  EXPECT_EQ(failure["event"], "failure");
  std::set<int> pids;
  for (const auto& m : failure["mappings"]) {
    EXPECT_TRUE(m["client"].get<bool>());
    EXPECT_EQ(m["uid"].get<uint32_t>(), getuid());
    pids.insert(m["pid"].get<int>());
  }
  EXPECT_EQ(pids, (std::set<int>{probes[1]->pid(), probes[2]->pid()}));
  std::set<std::string> logged;
  for (const auto& m : failure["mappings"]) logged.insert(m["address"].get<std::string>());
  // Each client's address of the bad page is its base plus the page's offset in its window.
  for (size_t i = 1; i < 3; ++i) {
    uint64_t base = std::strtoull(addresses[i].c_str(), nullptr, 16);
    EXPECT_EQ(logged.count(fmt::format("{:#x}", base + *expected[i].begin())), 1u)
        << failure.dump();
  }
  // The two fence traps were reported by the clients and logged as consumed traps of their pids.
  ASSERT_TRUE(WaitForEvent(": routed", 2));  // the session logs it after the engine routed it
  std::set<int> trapped;
  for (const auto& e : Log()) {
    if (e["event"] != "trap") continue;
    for (const auto& m : e["mappings"]) {
      if (m["consumed"].get<bool>()) trapped.insert(m["pid"].get<int>());
    }
  }
  EXPECT_EQ(trapped, (std::set<int>{probes[1]->pid(), probes[2]->pid()}));
}

TEST_F(EngineServeTest, AnUnguardedLoadOfAFencedPageKillsTheClientAndIsReported) {
  Ino data = Dir("data");
  Ino f = File(data, "f", 4, 0x55);
  Serve();
  auto p = Connected();
  ASSERT_TRUE(StartsWith(p->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(p->Cmd("map 1 0 16384 r"), "ok 1"));
  auto ex = fs().Bmap(f);
  ASSERT_OK(ex);
  ASSERT_OK(dax_->InjectError(ex->front().device_offset + 2 * kBlock, kBlock));
  EXPECT_TRUE(StartsWith(p->Cmd("notices 1"), "ok 1"));
  p->Send("load 1 8192");
  int status = p->Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) << status;
  ASSERT_TRUE(WaitForEvent(": routed"));
  ASSERT_TRUE(WaitForEvent("closed"));
  bool trap = false;
  for (const auto& e : Log()) {
    if (e["event"] != "trap") continue;
    for (const auto& m : e["mappings"]) trap = trap || m["pid"].get<int>() == p->pid();
  }
  EXPECT_TRUE(trap);
  EXPECT_EQ(host_->GetStatus().live_leases, 0u);
}

// Rewrites (copy-on-write), punches and truncations under a client's mapping, each change's
// freed blocks immediately reused by another file and filled with garbage: after every change
// the client sees exactly the file's contents, never a freed or reused block.
TEST_F(EngineServeTest, RecallsUnderChangesNeverShowAFreedOrReusedBlock) {
  constexpr uint64_t kPages = 16;
  Ino data = Dir("data");
  Ino f = File(data, "f", kPages, 1);
  auto junk = fs().Create(data, "junk", 0644);
  ASSERT_OK(junk);
  Serve();
  auto p = Connected();
  ASSERT_TRUE(StartsWith(p->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(p->Cmd(fmt::format("map 1 0 {} r", kPages * kBlock)), "ok 1"));
  uint64_t seed =
      std::getenv("DAXFS_SEED") ? std::strtoull(std::getenv("DAXFS_SEED"), nullptr, 10) : 20261203;
  base::Random rng(seed);
  std::vector<uint8_t> expect(kPages, 1);
  uint64_t size = kPages * kBlock;
  uint64_t junk_at = 0;
  for (int round = 0; round < 150; ++round) {
    uint64_t page = rng.Uniform(kPages);
    uint64_t what = rng.Uniform(10);
    if (what < 7) {  // rewrite: copy-on-write to a new block, the old one freed
      uint8_t byte = static_cast<uint8_t>(2 + rng.Uniform(200));
      std::vector<uint8_t> buf(kBlock, byte);
      ASSERT_OK(fs().Write(f, page * kBlock, buf));
      expect[page] = byte;
      size = std::max(size, (page + 1) * kBlock);
    } else if (what < 9) {  // punch
      ASSERT_OK(fs().Fallocate(f, kFallocPunchHole | kFallocKeepSize, page * kBlock, kBlock));
      expect[page] = 0;
    } else {  // truncate and grow back
      ASSERT_OK(fs().Truncate(f, page * kBlock));
      ASSERT_OK(fs().Truncate(f, kPages * kBlock));
      for (uint64_t i = page; i < kPages; ++i) expect[i] = 0;
    }
    // Reuse whatever was freed: new blocks of another file, filled with garbage.
    std::vector<uint8_t> garbage(4 * kBlock, 0xee);
    ASSERT_OK(fs().Write(junk->ino, junk_at, garbage));
    junk_at += 4 * kBlock;
    std::string r = p->Cmd(fmt::format("read 1 {} {}", page * kBlock, 1));
    ASSERT_EQ(r, "ok " + HexOf(expect[page], 1)) << "round " << round << " seed " << seed;
    if (round % 10 == 9) {
      for (uint64_t i = 0; i < kPages; ++i) {
        std::string all = p->Cmd(fmt::format("read 1 {} 4", i * kBlock));
        ASSERT_EQ(all, "ok " + HexOf(expect[i], 4)) << "page " << i << " seed " << seed;
      }
    }
  }
  EXPECT_EQ(p->Cmd("notices 0"), "ok 0");
}

// The same under a client thread reading the whole mapping over and over while the changes
// happen: no byte of a reused block (0xee) is ever seen.
TEST_F(EngineServeTest, AConcurrentReaderNeverSeesAReusedBlock) {
  constexpr uint64_t kPages = 32;
  Ino data = Dir("data");
  Ino f = File(data, "f", kPages, 1);
  auto junk = fs().Create(data, "junk", 0644);
  ASSERT_OK(junk);
  Serve();
  auto p = Connected();
  ASSERT_TRUE(StartsWith(p->Cmd("open /data/f rdonly"), "ok 1"));
  ASSERT_TRUE(StartsWith(p->Cmd(fmt::format("map 1 0 {} r", kPages * kBlock)), "ok 1"));
  ASSERT_EQ(p->Cmd("watch 1 238"), "ok");  // 0xee
  uint64_t seed =
      std::getenv("DAXFS_SEED") ? std::strtoull(std::getenv("DAXFS_SEED"), nullptr, 10) : 20261204;
  base::Random rng(seed);
  std::vector<uint8_t> expect(kPages, 1);
  uint64_t junk_at = 0;
  for (int round = 0; round < 300; ++round) {
    uint64_t page = rng.Uniform(kPages);
    if (rng.Uniform(4) != 0) {
      uint8_t byte = static_cast<uint8_t>(2 + rng.Uniform(200));
      std::vector<uint8_t> buf(kBlock, byte);
      ASSERT_OK(fs().Write(f, page * kBlock, buf));
      expect[page] = byte;
    } else {
      ASSERT_OK(fs().Fallocate(f, kFallocPunchHole | kFallocKeepSize, page * kBlock, kBlock));
      expect[page] = 0;
    }
    std::vector<uint8_t> garbage(2 * kBlock, 0xee);
    ASSERT_OK(fs().Write(junk->ino, junk_at, garbage));
    junk_at += 2 * kBlock;
    if (round % 50 == 49) ASSERT_OK(fs().Truncate(junk->ino, 0));  // and free them again
  }
  std::string r = p->Cmd("watchstop");
  ASSERT_TRUE(StartsWith(r, "ok")) << r;
  EXPECT_EQ(Field(r, "bad"), "0") << r << " seed " << seed;
  EXPECT_NE(Field(r, "rounds"), "0") << r;
  for (uint64_t i = 0; i < kPages; ++i) {
    ASSERT_EQ(p->Cmd(fmt::format("read 1 {} 4", i * kBlock)), "ok " + HexOf(expect[i], 4))
        << "page " << i << " seed " << seed;
  }
}

TEST_F(EngineServeTest, ACrashedClientReleasesItsLeases) {
  Ino data = Dir("data");
  Ino f = File(data, "f", 4, 0x66);
  Serve();
  auto p = Connected();
  ASSERT_TRUE(StartsWith(p->Cmd("open /data/f rdwr"), "ok 1"));
  ASSERT_TRUE(StartsWith(p->Cmd("map 1 0 16384 rw"), "ok 1"));
  EXPECT_EQ(host_->GetStatus().live_leases, 1u);
  auto g = fs().Create(data, "g", 0644);
  ASSERT_OK(g);
  EXPECT_ERRNO(fs().Clone(f, g->ino), ETXTBSY);
  p->Send("crash");
  p->Wait();
  ASSERT_TRUE(WaitForEvent("closed"));  // logged after the session released its leases
  EXPECT_EQ(host_->GetStatus().live_leases, 0u);
  EXPECT_OK(fs().Clone(f, g->ino));  // no writable mapping any more
}

TEST_F(EngineServeTest, ANonRootClientIsRefusedWhatItMayNotOpen) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to switch the client's uid";
  Ino data = Dir("data");
  File(data, "secret", 1, 0x77, 0600);
  File(data, "public", 1, 0x78, 0644);
  Serve();
  chmod(dir_.c_str(), 0755);
  chmod(socket_.c_str(), 0666);
  {
    chmod(image_.c_str(), 0600);  // no access to the device: no direct maps at all
    Probe p;
    EXPECT_EQ(p.Cmd("setuid 65534 65534"), "ok");
    std::string r = p.Cmd("connect " + socket_);
    EXPECT_TRUE(StartsWith(r, "err 13")) << r;
  }
  chmod(image_.c_str(), 0644);  // read access: a read-only device, read-only maps
  Probe p;
  EXPECT_EQ(p.Cmd("setuid 65534 65534"), "ok");
  std::string r = p.Cmd("connect " + socket_);
  EXPECT_TRUE(StartsWith(r, "ok")) << r;
  EXPECT_EQ(Field(r, "writable"), "0");
  EXPECT_TRUE(StartsWith(p.Cmd("open /data/secret rdonly"), "err 13"));
  EXPECT_TRUE(StartsWith(p.Cmd("open /data/public rdwr"), "err 13"));
  ASSERT_TRUE(StartsWith(p.Cmd("open /data/public rdonly"), "ok 1"));
  EXPECT_TRUE(StartsWith(p.Cmd("map 1 0 4096 rw"), "err 13"));
  ASSERT_TRUE(StartsWith(p.Cmd("map 1 0 4096 r"), "ok 1"));
  EXPECT_EQ(p.Cmd("read 1 0 2"), "ok 7878");
}

}  // namespace
}  // namespace daxfs
