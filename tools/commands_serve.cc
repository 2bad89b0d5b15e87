// Direct access from other processes: `daxfs serve` (the daemon that owns the image and hands
// file layouts to client processes over a Unix socket, src/serve) and the client modes of `map`
// and `inject-error` (--socket: through a running daemon, from this separate process, with the
// client library). docs/protocol.md. Uses only the public API in include/daxfs/ and the server.
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "cli.h"
#include "daxfs/client.h"
#include "daxfs/layout.h"
#include "serve/server.h"

namespace daxfs::cli {
namespace {

struct ServeArgs {
  std::string image, socket, pid_file, log;
  bool foreground = false;
  uint32_t recall_timeout_ms = 5000;
  bool kill_on_cutoff = false;
};

// The daemon's body: serve until SIGINT or SIGTERM. `ready` gets one line once the socket is
// up (or the error), for the parent of a daemon.
Status Serve(const ServeArgs& a, int ready) {
  std::string socket = a.socket.empty() ? a.image + ".sock" : a.socket;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before any thread starts: sigwait below
  std::FILE* log = stderr;
  if (!a.log.empty()) {
    log = std::fopen(a.log.c_str(), "ae");
    if (log == nullptr) return HostError(a.log, errno);
    setvbuf(log, nullptr, _IOLBF, 0);
  }
  DaxOptions options;
  options.handle_signals = true;  // a SIGBUS in the daemon's own accesses is routed too
  Status served = WithDax(a.image, Access::kReadWrite, options, [&](DaxFs& dax) -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<LayoutHost> host, OpenLayoutHost(dax, a.image));
    serve::ServerOptions so;
    so.socket_path = socket;
    so.recall_timeout_ms = a.recall_timeout_ms;
    so.kill_on_cutoff = a.kill_on_cutoff;
    so.on_event = [log](const std::string& line) {
      auto now = std::chrono::system_clock::now().time_since_epoch();
      fmt::print(log, "daxfs serve [{:.3f}]: {}\n", std::chrono::duration<double>(now).count(),
                 line);
    };
    Result<std::unique_ptr<serve::Server>> server = serve::Server::Start(host.get(), so);
    if (!server.ok()) return At(socket, server.status());
    if (!a.pid_file.empty()) {
      std::FILE* p = std::fopen(a.pid_file.c_str(), "we");
      if (p == nullptr) return HostError(a.pid_file, errno);
      fmt::print(p, "{}\n", getpid());
      std::fclose(p);
    }
    std::string line = fmt::format("ok serving {} on {} (pid {})\n", a.image, socket, getpid());
    if (ready >= 0) {
      (void)!write(ready, line.data(), line.size());
      close(ready);
      ready = -1;
    } else {
      fmt::print("{}", line.substr(3));
      std::fflush(stdout);
    }
    int sig = 0;
    sigwait(&stop, &sig);
    fmt::print(log, "daxfs serve: {}: stopping\n", strsignal(sig));
    (*server)->Stop();
    serve::ServerCounters c = (*server)->counters();
    fmt::print(log, "daxfs serve: stopped: {} sessions, {} recalls, {} cut-offs, {} notices\n",
               c.sessions_total, c.recalls, c.cutoffs, c.notices);
    server->reset();
    if (!a.pid_file.empty()) unlink(a.pid_file.c_str());
    return Status::Ok();
  });
  if (!served.ok() && ready >= 0) {
    std::string line = "err " + served.ToString() + "\n";
    (void)!write(ready, line.data(), line.size());
  }
  if (log != stderr) std::fclose(log);
  return served;
}

Status RunServe(const ServeArgs& a) {
  if (a.foreground) return Serve(a, -1);
  // Fork before any thread exists; the child serves, the parent returns once the socket is up.
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Errno(errno, "pipe");
  pid_t child = fork();
  if (child < 0) return Errno(errno, "fork");
  if (child == 0) {
    close(pipefd[0]);
    setsid();
    // Nothing of the caller's terminal or pipes stays open in the daemon: engine messages go to
    // the log (or nowhere).
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int err =
        a.log.empty() ? null : open(a.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
    }
    if (err >= 0) dup2(err, 2);
    Status s = Serve(a, pipefd[1]);
    _exit(s.ok() ? 0 : 1);
  }
  close(pipefd[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) {
    got.append(buf, static_cast<size_t>(n));
    if (got.find('\n') != std::string::npos) break;
  }
  close(pipefd[0]);
  if (got.rfind("ok ", 0) == 0) {
    fmt::print("{}", got.substr(3));
    return Status::Ok();
  }
  if (got.rfind("err ", 0) == 0) {
    std::string why = got.substr(4);
    if (!why.empty() && why.back() == '\n') why.pop_back();
    return Status::IoError(why);
  }
  return Status::IoError("the daemon exited before it was serving");
}

// ---- Client modes.

// A client inject report as `daxfs inject-error` prints one.
void PrintClientReport(const ClientInjectReport& r) {
  fmt::print("media failure at device bytes {}+{}, simulated, routed by the daemon\n", r.offset,
             r.length);
  if (!r.owners.empty()) {
    fmt::print("  owners ({}):\n", r.owners.size());
    for (const FileRangeLoss& o : r.owners) {
      fmt::print("    {:<24} inode {:<5} file bytes {}+{}  device {}{}\n",
                 o.path.empty() ? "(no path)" : o.path, o.ino, o.file_offset, o.length,
                 o.device_offset, o.shared ? "  shared" : "");
    }
  }
  fmt::print("  mapping pieces notified, in every process: {}\n", r.notices);
  for (const std::string& a : r.actions) fmt::print("  - {}\n", a);
  if (!r.message.empty()) fmt::print("  {}\n", r.message);
}

// "PATH:OFFSET" for InjectErrorAt.
Result<std::pair<std::string, uint64_t>> SplitAt(const std::string& spec, std::string_view what) {
  size_t colon = spec.rfind(':');
  if (colon == std::string::npos) {
    return Status::Invalid(fmt::format("{}: '{}' is not PATH:OFFSET", what, spec));
  }
  ASSIGN_OR_RETURN(uint64_t offset, ParseSizeArg(what, spec.substr(colon + 1)));
  return std::make_pair(spec.substr(0, colon), offset);
}

Result<ClientInjectReport> Inject(Client& c, const std::string& offset, const std::string& length,
                                  const std::string& at, std::string_view what) {
  ASSIGN_OR_RETURN(uint64_t len, ParseSizeArg("--length", length));
  if (!at.empty()) {
    ASSIGN_OR_RETURN(auto spec, SplitAt(at, what));
    return c.InjectErrorAt(spec.first, spec.second, len);
  }
  ASSIGN_OR_RETURN(uint64_t off, ParseSizeArg("--offset", offset));
  return c.InjectError(off, len);
}

}  // namespace

Status InjectErrorThroughSocket(const std::string& socket, const std::string& offset,
                                const std::string& length, const std::string& at) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> c,
                   Client::Connect(socket, {.name = "daxfs inject-error"}));
  Result<ClientInjectReport> r = Inject(*c, offset, length, at, "--at");
  if (!r.ok()) return At(socket, r.status());
  PrintClientReport(*r);
  return Status::Ok();
}

Status MapThroughSocket(const ClientMapArgs& a) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
                   Client::Connect(a.socket, {.name = "daxfs map"}));
  struct Mapped {
    std::string path;
    std::unique_ptr<ClientMapping> mapping;
    std::vector<MappingNotice> notices;
  };
  std::mutex mu;
  std::condition_variable heard;
  size_t notices = 0;
  std::vector<std::unique_ptr<Mapped>> maps;
  const pid_t self = getpid();
  for (const std::string& path : a.paths) {
    ASSIGN_OR_RETURN(ClientFile f, client->Open(path, a.writable ? O_RDWR : O_RDONLY));
    if (f.size == 0) return At(path, Status::Invalid("the file is empty: nothing to map"));
    auto m = std::make_unique<Mapped>();
    m->path = path;
    Mapped* raw = m.get();
    uint64_t length = (f.size + 4095) / 4096 * 4096;
    Result<std::unique_ptr<ClientMapping>> mapping = client->Map(
        f, 0, length, a.writable ? MapProt::kReadWrite : MapProt::kRead,
        [&, raw](const MappingNotice& n) {
          std::lock_guard<std::mutex> lock(mu);
          raw->notices.push_back(n);
          fmt::print(
              "  process {}: handler of mapping #{} ({}): {} at {:#x}+{} = file offset {} "
              "(device {}){}{}\n",
              self, n.mapping_id, raw->path,
              n.removal    ? "daemon gone"
              : n.consumed ? "trapped access"
                           : "bad bytes",
              reinterpret_cast<uintptr_t>(n.address), n.length, n.file_offset, n.device_offset,
              n.action_required ? ", action required" : "", n.consumed ? ", consumed" : "");
          std::fflush(stdout);
          ++notices;
          heard.notify_all();
        });
    (void)client->Close(f);
    if (!mapping.ok()) return At(path, mapping.status());
    m->mapping = std::move(*mapping);
    fmt::print("process {}: mapped {} ({} bytes, inode {}) {} at {:#x} as mapping #{}\n", self,
               path, f.size, f.ino, a.writable ? "read-write" : "read-only",
               reinterpret_cast<uintptr_t>(m->mapping->data()), m->mapping->id());
    std::fflush(stdout);
    std::lock_guard<std::mutex> lock(mu);
    maps.push_back(std::move(m));
  }
  if (!a.ready_file.empty()) {  // tells a script that every mapping is in place
    std::FILE* r = std::fopen(a.ready_file.c_str(), "we");
    if (r == nullptr) return HostError(a.ready_file, errno);
    std::fclose(r);
  }
  if (!a.inject.empty() || !a.inject_at.empty()) {
    fmt::print("process {}: injecting a media error through the daemon:\n", self);
    ASSIGN_OR_RETURN(ClientInjectReport r,
                     Inject(*client, a.inject, a.length, a.inject_at, "--inject-at"));
    PrintClientReport(r);
    std::fflush(stdout);
  }
  if (a.wait_notices > 0 || a.load) {
    std::unique_lock<std::mutex> lock(mu);
    size_t want = std::max<size_t>(a.wait_notices, 1);
    if (!heard.wait_for(lock, std::chrono::seconds(a.timeout_s), [&] { return notices >= want; })) {
      return Status::Error(
          ETIMEDOUT, fmt::format("heard {} notices of {} in {} s", notices, want, a.timeout_s));
    }
  }
  if (a.load) {
    Mapped* victim = nullptr;
    MappingNotice n;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& m : maps) {
        if (!m->notices.empty() && !m->notices[0].removal) {
          victim = m.get();
          n = m->notices[0];
          break;
        }
      }
    }
    if (victim == nullptr) {
      fmt::print("--load: no mapping was notified, so there is no fenced page to load from\n");
    } else {
      volatile uint8_t* p = n.address;
      fmt::print("process {}: loading one byte from {:#x} ({} at file offset {}), a fenced page:\n",
                 self, reinterpret_cast<uintptr_t>(p), victim->path, n.file_offset);
      uint8_t byte = 0;
      Status s = GuardClientMediaErrors([&] { byte = *p; });
      if (s.ok()) {
        return Status::IoError(
            fmt::format("the load from a fenced page returned {:#x} instead of trapping", byte));
      }
      fmt::print("  the load trapped: {} (reported to the daemon)\n", s.ToString());
    }
  }
  std::fflush(stdout);
  for (auto& m : maps) m->mapping.reset();
  return Status::Ok();
}

Runner SetupServe(CLI::App* sub) {
  auto a = std::make_shared<ServeArgs>();
  AddImageArg(sub, &a->image);
  sub->add_option("--socket", a->socket, "The Unix socket (default: IMAGE.sock, mode 0660)");
  sub->add_flag("-f,--foreground", a->foreground,
                "Stay in the foreground (default: become a daemon once serving)");
  sub->add_option("--pid-file", a->pid_file, "Write the daemon's pid here");
  sub->add_option("--log", a->log, "Append session events here (default: stderr with -f)");
  sub->add_option("--recall-timeout-ms", a->recall_timeout_ms,
                  "A client that leaves a layout recall unacknowledged this long is cut off");
  sub->add_flag("--kill-on-cutoff", a->kill_on_cutoff,
                "Kill a cut-off client before its blocks are reused (the only true fence)");
  sub->footer(
      "Client processes connect to the socket (include/daxfs/client.h, `daxfs map --socket`),\n"
      "receive the device once and map file ranges themselves; the daemon recalls their layouts\n"
      "before extents change and tells them about media failures at their own addresses. Only\n"
      "users who may open the image itself get direct maps (docs/protocol.md, trust model).\n"
      "Stop it with SIGINT or SIGTERM.");
  return [a](Reporter&) { return RunServe(*a); };
}

}  // namespace daxfs::cli
