// Test helper: a client process driven line by line on stdin (one command per line, one reply
// line on stdout: "ok ..." or "err <errno> <message>"), so that tests can run real separate
// client processes of the daxfs client library. Uses only include/daxfs/client.h.
//   setuid UID GID | connect SOCKET | open PATH rdonly|wronly|rdwr | close FILE
//   map FILE OFFSET LENGTH r|rw | unmap MAP | read MAP OFFSET LENGTH | fill MAP OFFSET LENGTH BYTE
//   persist MAP OFFSET LENGTH | notices COUNT | load MAP OFFSET (unguarded) | connected
//   sessions | fork MAP OFFSET (a child loads there) | stop (SIGSTOP after the reply) | crash
//   watch MAP BYTE (a thread reads the whole mapping over and over, counting bytes equal to BYTE)
//   | watchstop (replies "ok rounds=N bad=M") | exit
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daxfs/client.h"

namespace {

std::unique_ptr<daxfs::Client> g_client;
std::map<uint64_t, daxfs::ClientFile> g_files;
std::map<uint64_t, std::unique_ptr<daxfs::ClientMapping>> g_maps;
uint64_t g_next_map = 1;

std::thread g_watcher;
std::atomic<bool> g_watching{false};
std::atomic<uint64_t> g_rounds{0}, g_bad{0};

std::mutex g_mu;
std::condition_variable g_cv;
std::vector<std::string> g_notices;

void Reply(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}
void ReplyStatus(const daxfs::Status& s, const std::string& ok = "") {
  if (s.ok()) {
    Reply("ok" + (ok.empty() ? "" : " " + ok));
  } else {
    Reply("err " + std::to_string(s.code()) + " " + s.message());
  }
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

daxfs::ClientMapping* FindMap(uint64_t id) {
  auto it = g_maps.find(id);
  return it == g_maps.end() ? nullptr : it->second.get();
}

void Run(const std::string& line) {
  std::istringstream in(line);
  std::string cmd;
  in >> cmd;
  if (cmd == "setuid") {
    unsigned uid, gid;
    in >> uid >> gid;
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      return Reply("err " + std::to_string(errno) + " setuid failed");
    }
    return Reply("ok");
  }
  if (cmd == "connect") {
    std::string path;
    in >> path;
    auto c = daxfs::Client::Connect(path, {.name = "probe"});
    if (!c.ok()) return ReplyStatus(c.status());
    g_client = std::move(*c);
    const auto& d = g_client->device();
    return Reply("ok pid=" + std::to_string(getpid()) + " writable=" + std::to_string(d.writable) +
                 " version=" + std::to_string(d.protocol_version));
  }
  if (!g_client && cmd != "crash" && cmd != "exit") return Reply("err 107 not connected");
  if (cmd == "open") {
    std::string path, mode;
    in >> path >> mode;
    const int flags = mode == "rdwr" ? O_RDWR : mode == "wronly" ? O_WRONLY : O_RDONLY;
    auto f = g_client->Open(path, flags);
    if (!f.ok()) return ReplyStatus(f.status());
    g_files[f->id] = *f;
    return Reply("ok " + std::to_string(f->id) + " ino=" + std::to_string(f->ino) +
                 " size=" + std::to_string(f->size));
  }
  if (cmd == "close") {
    uint64_t id;
    in >> id;
    daxfs::ClientFile f = g_files.count(id) ? g_files[id] : daxfs::ClientFile{id};
    return ReplyStatus(g_client->Close(f));
  }
  if (cmd == "map") {
    uint64_t id, offset, length;
    std::string prot;
    in >> id >> offset >> length >> prot;
    daxfs::ClientFile f = g_files.count(id) ? g_files[id] : daxfs::ClientFile{id};
    const uint64_t local = g_next_map;  // taken only if the map succeeds
    auto m = g_client->Map(
        f, offset, length, prot == "rw" ? daxfs::MapProt::kReadWrite : daxfs::MapProt::kRead,
        [local](const daxfs::MappingNotice& n) {
          std::lock_guard<std::mutex> lock(g_mu);
          auto* mapping = FindMap(local);
          const uint64_t off = mapping == nullptr ? ~0ULL : n.address - mapping->data();
          char addr[32];
          std::snprintf(addr, sizeof addr, "%p", static_cast<void*>(n.address));
          g_notices.push_back(
              "map=" + std::to_string(local) + ",addr=" + addr + ",off=" + std::to_string(off) +
              ",len=" + std::to_string(n.length) + ",fo=" + std::to_string(n.file_offset) +
              ",ar=" + std::to_string(n.action_required) + ",removal=" + std::to_string(n.removal));
          g_cv.notify_all();
        });
    if (!m.ok()) return ReplyStatus(m.status());
    ++g_next_map;
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", static_cast<void*>((*m)->data()));
    const std::string out = std::to_string(local) + " id=" + std::to_string((*m)->id()) +
                            " addr=" + addr + " len=" + std::to_string((*m)->length());
    {
      std::lock_guard<std::mutex> lock(g_mu);
      g_maps[local] = std::move(*m);
    }
    return Reply("ok " + out);
  }
  if (cmd == "unmap") {
    uint64_t id;
    in >> id;
    std::unique_ptr<daxfs::ClientMapping> m;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      m = std::move(g_maps[id]);
      g_maps.erase(id);
    }
    m.reset();
    return Reply("ok");
  }
  if (cmd == "read" || cmd == "fill" || cmd == "load" || cmd == "persist") {
    uint64_t id, offset, length = 1;
    unsigned byte = 0;
    in >> id >> offset;
    if (cmd != "load") in >> length;
    if (cmd == "fill") in >> byte;
    daxfs::ClientMapping* m;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      m = FindMap(id);
    }
    if (m == nullptr) return Reply("err 22 no such mapping");
    if (offset > m->length() || length > m->length() - offset) return Reply("err 22 out of range");
    if (cmd == "persist") return ReplyStatus(m->Persist(offset, length));
    if (cmd == "load") {
      volatile uint8_t v = *(m->data() + offset);  // no guard: a fenced page kills us
      return Reply("ok " + std::to_string(v));
    }
    std::vector<uint8_t> buf(length);
    uint8_t* p = m->data() + offset;
    daxfs::Status s = daxfs::GuardClientMediaErrors([&] {
      if (cmd == "read") {
        std::memcpy(buf.data(), p, length);
      } else {
        std::memset(p, static_cast<int>(byte), length);
      }
    });
    if (!s.ok()) return ReplyStatus(s);
    return Reply(cmd == "read" ? "ok " + Hex(buf.data(), length) : "ok");
  }
  if (cmd == "notices") {
    size_t count;
    in >> count;
    std::unique_lock<std::mutex> lock(g_mu);
    g_cv.wait_for(lock, std::chrono::seconds(30), [&] { return g_notices.size() >= count; });
    std::string out = "ok " + std::to_string(g_notices.size());
    for (const auto& n : g_notices) out += " " + n;
    return Reply(out);
  }
  if (cmd == "connected") return Reply("ok " + std::to_string(g_client->connected()));
  if (cmd == "sessions") {
    auto st = g_client->GetStatus();
    if (!st.ok()) return ReplyStatus(st.status());
    return Reply("ok " + std::to_string(st->sessions.size()));
  }
  if (cmd == "fork") {
    uint64_t id, offset;
    in >> id >> offset;
    daxfs::ClientMapping* m;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      m = FindMap(id);
    }
    if (m == nullptr || offset >= m->length()) return Reply("err 22 no such mapping or offset");
    const volatile uint8_t* p = m->data() + offset;
    const pid_t child = fork();
    if (child == 0) {
      const uint8_t v = *p;  // the child has no mapping here (MADV_DONTFORK): exit 50
      _exit(v == 0 ? 40 : 41);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) return Reply("err 10 fork/wait failed");
    if (WIFSIGNALED(status)) return Reply("ok signal=" + std::to_string(WTERMSIG(status)));
    return Reply("ok exit=" + std::to_string(WEXITSTATUS(status)));
  }
  if (cmd == "watch") {
    uint64_t id;
    unsigned byte;
    in >> id >> byte;
    daxfs::ClientMapping* m;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      m = FindMap(id);
    }
    if (m == nullptr || g_watching) return Reply("err 22 no such mapping, or already watching");
    g_watching = true;
    g_watcher = std::thread([m, byte] {
      std::vector<uint8_t> buf(m->length());
      while (g_watching.load()) {
        daxfs::Status s =
            daxfs::GuardClientMediaErrors([&] { std::memcpy(buf.data(), m->data(), m->length()); });
        if (!s.ok()) continue;  // a fenced page (lost, past EOF): not a wrong byte
        uint64_t bad = 0;
        for (uint8_t b : buf) bad += b == byte ? 1 : 0;
        g_bad += bad;
        ++g_rounds;
      }
    });
    return Reply("ok");
  }
  if (cmd == "watchstop") {
    if (!g_watching) return Reply("err 22 not watching");
    g_watching = false;
    g_watcher.join();
    return Reply("ok rounds=" + std::to_string(g_rounds.load()) +
                 " bad=" + std::to_string(g_bad.load()));
  }
  if (cmd == "stop") {
    Reply("ok");
    raise(SIGSTOP);  // a hung client: its receiver thread stops too
    return;
  }
  if (cmd == "crash") {
    raise(SIGKILL);
  }
  if (cmd == "exit") {
    std::map<uint64_t, std::unique_ptr<daxfs::ClientMapping>> maps;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      maps.swap(g_maps);
    }
    maps.clear();
    g_client.reset();
    Reply("ok");
    std::exit(0);
  }
  Reply("err 22 unknown command '" + cmd + "'");
}

// The probe's own SIGSEGV handler, installed before the client library's (which chains to it
// for faults that are not its own): in a forked child it exits with 50 (the fork test's "it
// faulted"), in the probe itself it restores the default action so that the fault kills.
pid_t g_main_pid = 0;
void ProbeSegv(int, siginfo_t*, void*) {
  if (getpid() != g_main_pid) _exit(50);
  signal(SIGSEGV, SIG_DFL);
}

}  // namespace

int main() {
  g_main_pid = getpid();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = ProbeSegv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty()) Run(line);
  }
  return 0;
}
