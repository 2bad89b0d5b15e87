// Direct access from other processes (issue 10): a `daxfs serve` daemon in this process over a
// /dev/shm image, and client processes (this binary re-executed with --child) that map through
// it. Measures (1) client-mapped sequential and random 4 KiB access vs a raw mmap of the same
// device range in the same process; (2) map + unmap through the daemon vs in-process
// DaxFs::Map vs open + mmap + munmap + close of a file on a FUSE mount (--fuse-dir, when given);
// (3) failure notification latency from InjectError to the handler of 1, 10 and 100 client
// processes. Ratios are within one run; nothing here is a test threshold.
#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "daxfs/client.h"
#include "daxfs/dax.h"
#include "daxfs/layout.h"
#include "device/device.h"
#include "serve/server.h"

using namespace daxfs;
using bench_util::Median;

namespace {

constexpr uint64_t kBlock = 4096;

[[noreturn]] void Die(const std::string& what) {
  fmt::print(stderr, "client_bench: {}\n", what);
  std::exit(1);
}
void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}
uint64_t NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}
void Line(const std::string& s) {
  std::fputs((s + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// ---- child processes -----------------------------------------------------------------------

// The four access loops over `p` (length `n`), MiB/s each.
struct Loops {
  double seq_read = 0, seq_write = 0, rand_read = 0, rand_write = 0;
};
Loops RunLoops(uint8_t* p, uint64_t n, std::vector<uint8_t>& buf, uint64_t seed) {
  Loops l;
  const uint64_t chunk = 2 << 20;
  auto t0 = NowNs();
  for (uint64_t off = 0; off < n; off += chunk) std::memcpy(buf.data(), p + off, chunk);
  auto t1 = NowNs();
  for (uint64_t off = 0; off < n; off += chunk) std::memcpy(p + off, buf.data(), chunk);
  auto t2 = NowNs();
  std::mt19937_64 rng(seed);
  const uint64_t pages = n / kBlock, ops = pages;
  std::vector<uint64_t> order(ops);
  for (auto& o : order) o = rng() % pages;
  auto t3 = NowNs();
  for (uint64_t o : order) std::memcpy(buf.data(), p + o * kBlock, kBlock);
  auto t4 = NowNs();
  for (uint64_t o : order) std::memcpy(p + o * kBlock, buf.data(), kBlock);
  auto t5 = NowNs();
  double mib = static_cast<double>(n) / (1 << 20);
  l.seq_read = mib / ((t1 - t0) / 1e9);
  l.seq_write = mib / ((t2 - t1) / 1e9);
  l.rand_read = mib / ((t4 - t3) / 1e9);
  l.rand_write = mib / ((t5 - t4) / 1e9);
  return l;
}

// bw SOCKET IMAGE EXTENTS(fo:do:len,...) REPS: client mapping vs raw mmap of the same device
// bytes (a second descriptor of the image, each extent MAP_FIXED into one reserved range).
int ChildBandwidth(const std::string& socket, const std::string& image, const std::string& spec,
                   int reps) {
  auto c = Client::Connect(socket, {.name = "bench bw"});
  Check(c.status(), "connect");
  auto f = (*c)->Open("/bw", O_RDWR);
  Check(f.status(), "open");
  auto m = (*c)->Map(*f, 0, f->size, MapProt::kReadWrite);
  Check(m.status(), "map");
  uint64_t n = f->size;
  int fd = open(image.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) Die("open image");
  void* r = mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  uint8_t* raw = static_cast<uint8_t*>(r);
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    uint64_t fo, dof, len;
    if (std::sscanf(item.c_str(), "%lu:%lu:%lu", &fo, &dof, &len) != 3) Die("extent spec");
    if (mmap(raw + fo, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
             static_cast<off_t>(dof)) == MAP_FAILED)
      Die("raw mmap");
  }
  std::vector<uint8_t> buf(2 << 20, 0x5a);
  RunLoops((*m)->data(), n, buf, 1);  // untimed: page tables filled
  RunLoops(raw, n, buf, 1);
  for (int i = 0; i < reps; ++i) {
    Loops a = RunLoops((*m)->data(), n, buf, 100 + i);
    Loops b = RunLoops(raw, n, buf, 100 + i);
    Line(fmt::format("bw {:.0f} {:.0f} {:.0f} {:.0f} {:.0f} {:.0f} {:.0f} {:.0f}", a.seq_read,
                     b.seq_read, a.seq_write, b.seq_write, a.rand_read, b.rand_read, a.rand_write,
                     b.rand_write));
  }
  return 0;
}

// mapcost SOCKET N REPS: microseconds per Map + unmap of 64 KiB through the daemon.
int ChildMapCost(const std::string& socket, int n, int reps) {
  auto c = Client::Connect(socket, {.name = "bench map"});
  Check(c.status(), "connect");
  auto f = (*c)->Open("/bw", O_RDONLY);
  Check(f.status(), "open");
  for (int r = 0; r < reps; ++r) {
    auto t0 = NowNs();
    for (int i = 0; i < n; ++i) {
      auto m = (*c)->Map(*f, 0, 64 << 10, MapProt::kRead);
      Check(m.status(), "map");
    }
    Line(fmt::format("mapcost {:.2f}", (NowNs() - t0) / 1e3 / n));
  }
  return 0;
}

// notify SOCKET: maps /n, says "ready", then one "t NS" line per notice until stdin closes.
int ChildNotify(const std::string& socket) {
  auto c = Client::Connect(socket, {.name = "bench notify"});
  Check(c.status(), "connect");
  auto f = (*c)->Open("/n", O_RDONLY);
  Check(f.status(), "open");
  std::mutex mu;
  auto m = (*c)->Map(*f, 0, f->size, MapProt::kRead, [&](const MappingNotice& n) {
    uint64_t t = NowNs();
    if (!n.removal) Line(fmt::format("t {}", t));
  });
  Check(m.status(), "map");
  Line("ready");
  char b;
  while (read(0, &b, 1) > 0) {
  }
  return 0;
}

// ---- the parent ----------------------------------------------------------------------------

struct Spawned {
  pid_t pid;
  int in, out;
  std::string buf;
  std::string ReadLine() {
    for (;;) {
      size_t nl = buf.find('\n');
      if (nl != std::string::npos) {
        std::string l = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        return l;
      }
      pollfd p{out, POLLIN, 0};
      if (poll(&p, 1, 120000) <= 0) Die("a child hung");
      char chunk[4096];
      ssize_t k = read(out, chunk, sizeof chunk);
      if (k <= 0) Die("a child died");
      buf.append(chunk, static_cast<size_t>(k));
    }
  }
  void Finish() {
    close(in);
    close(out);
    waitpid(pid, nullptr, 0);
  }
};

std::string g_self;

Spawned Spawn(const std::vector<std::string>& args) {
  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) Die("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    std::vector<std::string> all = {g_self, "--child"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(g_self.c_str(), argv.data());
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  return {pid, to[1], from[0], {}};
}

std::string Med(std::vector<double> v, const char* f = "{:.0f}") {
  return fmt::format(fmt::runtime(f), Median(v));
}

}  // namespace

int main(int argc, char** argv) {
  g_self = "/proc/self/exe";
  char exe[4096];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k > 0) g_self.assign(exe, static_cast<size_t>(k));
  if (argc >= 3 && std::string(argv[1]) == "--child") {
    std::string mode = argv[2];
    if (mode == "bw" && argc == 7)
      return ChildBandwidth(argv[3], argv[4], argv[5], std::atoi(argv[6]));
    if (mode == "mapcost" && argc == 6)
      return ChildMapCost(argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
    if (mode == "notify" && argc == 4) return ChildNotify(argv[3]);
    Die("bad child arguments");
  }
  CLI::App app("daxfs client benchmarks (docs/benchmarks.md)");
  std::string dir = "/dev/shm", fuse_dir;
  uint64_t mib = 256;
  int reps = 5, maps = 2000;
  std::string clients = "1,10,100";
  app.add_option("--dir", dir, "Where the image goes");
  app.add_option("--size-mib", mib, "Mapped file size for the bandwidth loops");
  app.add_option("--reps", reps, "Repetitions (medians)");
  app.add_option("--maps", maps, "Map + unmap pairs per repetition");
  app.add_option("--clients", clients, "Client process counts for the notification latency");
  app.add_option("--fuse-dir", fuse_dir,
                 "A daxfs FUSE mount holding /bw (for open+mmap+munmap); skipped when empty");
  CLI11_PARSE(app, argc, argv);

  std::string image = fmt::format("{}/daxfs-client-bench-{}.img", dir, getpid());
  std::string socket = image + ".sock";
  Check(device::CreateDeviceFile(image, (mib + 256) << 20, true), "create the image");
  Check(Filesystem::Format(image, {}), "format");
  {
    DaxOptions o;
    o.scan_bad_blocks = false;
    auto dax = DaxFs::Open(image, o);
    Check(dax.status(), "open");
    Filesystem& fs = (*dax)->fs();
    auto bw = fs.Create(kRootIno, "bw", 0644);
    Check(bw.status(), "create");
    std::vector<uint8_t> chunk(4 << 20, 0x33);
    for (uint64_t off = 0; off < (mib << 20); off += chunk.size())
      Check(fs.Write(bw->ino, off, chunk).status(), "write");
    auto nf = fs.Create(kRootIno, "n", 0644);
    Check(nf.status(), "create");
    std::vector<uint8_t> pages(256 * kBlock, 0x44);
    Check(fs.Write(nf->ino, 0, pages).status(), "write");
    Check(fs.Sync(), "sync");
    auto host = OpenLayoutHost(**dax, image);
    Check(host.status(), "host");
    serve::ServerOptions so;
    so.socket_path = socket;
    auto server = serve::Server::Start(host->get(), so);
    Check(server.status(), "serve");
    fmt::print("client benchmarks: {}, load {}\n", bench_util::Machine(),
               bench_util::LoadAverage());

    // (1) Bandwidth.
    auto extents = fs.Bmap(bw->ino);
    Check(extents.status(), "bmap");
    std::string spec;
    for (const FileExtent& e : *extents)
      spec += fmt::format("{}{}:{}:{}", spec.empty() ? "" : ",", e.file_offset, e.device_offset,
                          e.length);
    Spawned b = Spawn({"bw", socket, image, spec, std::to_string(reps)});
    std::vector<double> v[8];
    for (int i = 0; i < reps; ++i) {
      std::istringstream l(b.ReadLine().substr(3));
      for (auto& x : v) {
        double d;
        l >> d;
        x.push_back(d);
      }
    }
    b.Finish();
    fmt::print(
        "\n(1) {} MiB file, {} extent(s); MiB/s, median of {}: client mapping | raw mmap | ratio\n",
        mib, extents->size(), reps);
    const char* names[] = {"seq read (memcpy out, 2 MiB)", "seq write (memcpy in, 2 MiB)",
                           "random 4 KiB reads", "random 4 KiB writes"};
    for (int i = 0; i < 4; ++i) {
      double a = Median(v[2 * i]), r = Median(v[2 * i + 1]);
      fmt::print("  {:<30} {:>8.0f} | {:>8.0f} | {:.3f}x\n", names[i], a, r, a / r);
    }

    // (2) Map + unmap.
    Spawned mc = Spawn({"mapcost", socket, std::to_string(maps), std::to_string(reps)});
    std::vector<double> client_us, local_us, fuse_us;
    for (int i = 0; i < reps; ++i) client_us.push_back(std::stod(mc.ReadLine().substr(8)));
    mc.Finish();
    for (int r = 0; r < reps; ++r) {
      auto t0 = NowNs();
      for (int i = 0; i < maps; ++i) {
        auto m = (*dax)->Map(bw->ino, 0, 64 << 10, MapProt::kRead);
        Check(m.status(), "local map");
      }
      local_us.push_back((NowNs() - t0) / 1e3 / maps);
      if (!fuse_dir.empty()) {
        std::string path = fuse_dir + "/bw";
        auto t1 = NowNs();
        for (int i = 0; i < maps; ++i) {
          int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) Die("open on the mount");
          void* p = mmap(nullptr, 64 << 10, PROT_READ, MAP_SHARED, fd, 0);
          if (p == MAP_FAILED) Die("mmap on the mount");
          munmap(p, 64 << 10);
          close(fd);
        }
        fuse_us.push_back((NowNs() - t1) / 1e3 / maps);
      }
    }
    fmt::print("\n(2) map + unmap of 64 KiB, microseconds per pair, median of {} x {}:\n", reps,
               maps);
    fmt::print("  through the daemon (client process)  {:>8.2f}\n", Median(client_us));
    fmt::print("  in-process DaxFs::Map                {:>8.2f}\n", Median(local_us));
    if (!fuse_us.empty()) {
      fmt::print("  open+mmap+munmap+close on FUSE       {:>8.2f}\n", Median(fuse_us));
    } else {
      fmt::print("  open+mmap+munmap+close on FUSE       (not measured: no --fuse-dir)\n");
    }

    // (3) Notification latency.
    auto nx = fs.Bmap(nf->ino);
    Check(nx.status(), "bmap n");
    std::vector<uint64_t> page_dev;
    for (const FileExtent& e : *nx)
      for (uint64_t o = 0; o < e.length; o += kBlock) page_dev.push_back(e.device_offset + o);
    fmt::print("\n(3) failure notification latency, InjectError to each client's handler (ms):\n");
    size_t next_page = 0;
    std::stringstream cs(clients);
    std::string item;
    while (std::getline(cs, item, ',')) {
      int count = std::stoi(item);
      std::vector<Spawned> kids;
      for (int i = 0; i < count; ++i) kids.push_back(Spawn({"notify", socket}));
      for (auto& kid : kids) {
        if (kid.ReadLine() != "ready") Die("notify child");
      }
      std::vector<double> medians, maxes, totals;
      for (int r = 0; r < reps && next_page < page_dev.size(); ++r) {
        uint64_t t0 = NowNs();
        auto rep = (*host)->InjectError(page_dev[next_page++], kBlock);
        uint64_t returned = NowNs();
        Check(rep.status(), "inject");
        std::vector<double> lat;
        for (auto& kid : kids) {
          std::string l = kid.ReadLine();
          lat.push_back((std::stoull(l.substr(2)) - t0) / 1e6);
        }
        medians.push_back(Median(lat));
        maxes.push_back(*std::max_element(lat.begin(), lat.end()));
        totals.push_back((returned - t0) / 1e6);
      }
      fmt::print(
          "  {:>3} client processes: median {} ms, slowest {} ms, InjectError returned after "
          "{} ms (medians of {})\n",
          count, Med(medians, "{:.3f}"), Med(maxes, "{:.3f}"), Med(totals, "{:.3f}"),
          medians.size());
      for (auto& kid : kids) kid.Finish();
    }
    (*server)->Stop();
    server->reset();
    host->reset();
    Check((*dax)->Unmount(), "unmount");
  }
  std::remove(image.c_str());
  std::remove((image + ".events.jsonl").c_str());
  std::remove((image + ".badblocks").c_str());
  fmt::print("\nload at the end: {}\n", bench_util::LoadAverage());
  return 0;
}
