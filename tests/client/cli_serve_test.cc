// `daxfs serve` and the client modes of the `daxfs` command, as separate processes on an image in
// /dev/shm: a daemon serves; one `map --socket` process waits for notices while another injects
// an error into the block their clones share and loads from it (the trap is caught and
// reported); each prints its own address; `inject-error --socket`; a daemon killed with SIGKILL
// is replaced by a restarted one that serves new clients; the FUSE mount daemon serving the same
// story with -o socket (as root with /dev/fuse): a client's stores are read through the mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "probe.h"

namespace {

using Args = std::vector<std::string>;

struct Child {
  pid_t pid = -1;
  int out = -1;  // stdout and stderr
  std::string text;
  // Reads until `part` appears in the output or it ends (30 s guard); true if it appeared.
  bool ReadUntil(const std::string& part) {
    for (;;) {
      if (text.find(part) != std::string::npos) return true;
      pollfd p{out, POLLIN, 0};
      if (poll(&p, 1, 30000) <= 0) return false;
      char buf[4096];
      ssize_t n = read(out, buf, sizeof buf);
      if (n <= 0) return false;
      text.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads everything, then the exit code (-signal if killed).
  int Finish() {
    ReadUntil("\x01never");
    close(out);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
};

Child Start(const Args& args) {
  int fds[2];
  Child c;
  if (pipe2(fds, O_CLOEXEC) != 0) return c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> argv;
    std::string cli = DAXFS_CLI;
    argv.push_back(cli.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(DAXFS_CLI, argv.data());
    _exit(127);
  }
  close(fds[1]);
  c.out = fds[0];
  return c;
}

std::pair<int, std::string> RunCli(const Args& args) {
  Child c = Start(args);
  int code = c.Finish();
  return {code, c.text};
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Waits (30 s guard) for process `pid`, not our child, to exit.
bool WaitGone(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  bool gone = poll(&p, 1, 30000) == 1;
  close(fd);
  return gone;
}

pid_t PidIn(const std::string& file) {
  std::ifstream in(file);
  pid_t pid = -1;
  in >> pid;
  return pid;
}

class CliServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = "/dev/shm/daxfs-cli-serve-" + std::to_string(getpid());
    image_ = base_ + ".img";
    socket_ = base_ + ".sock";
    pid_file_ = base_ + ".pid";
    Cleanup();
    auto r = RunCli({"mkfs", image_, "64M"});
    ASSERT_EQ(r.first, 0) << r.second;
    r = RunCli({"write", image_, "/f", "--create", "--length", "64K", "--pattern", "0x33"});
    ASSERT_EQ(r.first, 0) << r.second;
    r = RunCli({"reflink", image_, "/f", "/g"});
    ASSERT_EQ(r.first, 0) << r.second;
  }
  void TearDown() override {
    pid_t pid = PidIn(pid_file_);
    if (pid > 0 && kill(pid, SIGTERM) == 0) WaitGone(pid);
    Cleanup();
  }
  void Cleanup() {
    for (const char* suffix :
         {".img", ".sock", ".pid", ".img.events.jsonl", ".img.badblocks", ".ready", ".log"}) {
      std::remove((base_ + suffix).c_str());
    }
  }
  void Serve() {
    auto r = RunCli(
        {"serve", image_, "--socket", socket_, "--pid-file", pid_file_, "--log", base_ + ".log"});
    ASSERT_EQ(r.first, 0) << r.second;
    ASSERT_TRUE(Contains(r.second, "serving " + image_ + " on " + socket_)) << r.second;
  }
  std::string base_, image_, socket_, pid_file_;
};

TEST_F(CliServeTest, ClientsInOtherProcessesHearTheFailureAtTheirOwnAddresses) {
  Serve();
  Child waiter = Start({"map", "--socket", socket_, "/g", "--wait-notices", "1"});
  ASSERT_TRUE(waiter.ReadUntil("as mapping #")) << waiter.text;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(waiter.text, m, std::regex("read-only at (0x[0-9a-f]+)")));
  const unsigned long long base = std::stoull(m[1].str(), nullptr, 16);

  auto r = RunCli({"map", "--socket", socket_, "/f", "--inject-at", "/f:4096", "--load"});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(Contains(r.second, "owners (2)")) << r.second;
  EXPECT_TRUE(Contains(r.second, "bad bytes at ")) << r.second;
  EXPECT_TRUE(Contains(r.second, "the load trapped")) << r.second;

  EXPECT_EQ(waiter.Finish(), 0) << waiter.text;
  char expect[64];
  std::snprintf(expect, sizeof expect, "bad bytes at %#llx+4096 = file offset 4096", base + 4096);
  EXPECT_TRUE(Contains(waiter.text, "process " + std::to_string(waiter.pid) + ": handler"))
      << waiter.text;
  EXPECT_TRUE(Contains(waiter.text, expect)) << waiter.text;

  r = RunCli({"inject-error", "--socket", socket_, "--at", "/g:8192"});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(Contains(r.second, "routed by the daemon")) << r.second;
  r = RunCli({"inject-error", "--socket", socket_, "--at", "/nope:0"});
  EXPECT_EQ(r.first, 1) << r.second;

  // The event log names the client processes.
  std::ifstream log(image_ + ".events.jsonl");
  std::stringstream all;
  all << log.rdbuf();
  EXPECT_TRUE(Contains(all.str(), "\"pid\":" + std::to_string(waiter.pid))) << all.str();
}

TEST_F(CliServeTest, ARestartedDaemonServesNewClients) {
  Serve();
  pid_t first = PidIn(pid_file_);
  ASSERT_GT(first, 0);
  auto r = RunCli({"serve", image_, "--socket", socket_});  // one daemon per socket
  EXPECT_EQ(r.first, 1) << r.second;
  Child holder = Start({"map", "--socket", socket_, "/f", "--wait-notices", "1"});
  ASSERT_TRUE(holder.ReadUntil("as mapping #")) << holder.text;
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(WaitGone(first));
  // The client hears that the daemon is gone (its mapping fenced) and exits.
  EXPECT_EQ(holder.Finish(), 0) << holder.text;
  EXPECT_TRUE(Contains(holder.text, "daemon gone")) << holder.text;
  std::remove(pid_file_.c_str());
  Serve();  // replaces the dead daemon's socket
  EXPECT_NE(PidIn(pid_file_), first);
  r = RunCli({"map", "--socket", socket_, "/f", "/g"});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(Contains(r.second, "mapped /g")) << r.second;
}

TEST_F(CliServeTest, TheMountDaemonServesClientsToo) {
  if (getuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "needs root and /dev/fuse";
  }
  std::string mnt = base_ + ".mnt";
  mkdir(mnt.c_str(), 0755);
  auto r = RunCli({"mount", image_, mnt, "-o", "socket=" + socket_});
  ASSERT_EQ(r.first, 0) << r.second;
  {
    std::ifstream before(mnt + "/f", std::ios::binary);  // the mount caches the old bytes
    char c = 0;
    before.get(c);
    EXPECT_EQ(c, '\x33');
  }
  daxfs::testing::Probe p;
  EXPECT_TRUE(p.Cmd("connect " + socket_).rfind("ok", 0) == 0);
  EXPECT_TRUE(p.Cmd("open /f rdwr").rfind("ok 1", 0) == 0);
  EXPECT_TRUE(p.Cmd("map 1 0 65536 rw").rfind("ok 1", 0) == 0);
  EXPECT_EQ(p.Cmd("fill 1 0 4096 90"), "ok");  // 0x5a
  EXPECT_EQ(p.Cmd("persist 1 0 4096"), "ok");
  {
    std::ifstream after(mnt + "/f", std::ios::binary);  // a new open sees the client's stores
    char c = 0;
    after.get(c);
    EXPECT_EQ(c, '\x5a');
  }
  r = RunCli({"map", "--socket", socket_, "/g", "--inject-at", "/g:8192", "--load"});
  EXPECT_EQ(r.first, 0) << r.second;
  EXPECT_TRUE(Contains(r.second, "the load trapped")) << r.second;
  EXPECT_EQ(p.Cmd("exit"), "ok");
  r = RunCli({"umount", mnt});
  EXPECT_EQ(r.first, 0) << r.second;
  rmdir(mnt.c_str());
  EXPECT_NE(access(socket_.c_str(), F_OK), 0);  // the daemon removed its socket
}

}  // namespace
