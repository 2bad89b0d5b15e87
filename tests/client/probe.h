// Test support: runs tests/client/client_probe as a child process and talks to it line by line
// (a command, then its one reply line), so that tests drive real separate client processes.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace daxfs::testing {

class Probe {
 public:
  Probe() {
    signal(SIGPIPE, SIG_IGN);
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(to[0], 0);
      dup2(from[1], 1);
      execl(DAXFS_PROBE, DAXFS_PROBE, nullptr);
      _exit(127);
    }
    close(to[0]);
    close(from[1]);
    in_ = to[1];
    out_ = from[0];
  }
  ~Probe() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (in_ >= 0) close(in_);
    if (out_ >= 0) close(out_);
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  pid_t pid() const { return pid_; }

  // Sends one command and returns its reply line ("" if the probe died or hung for 30 s).
  std::string Cmd(const std::string& line) {
    std::string l = line + "\n";
    if (write(in_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) return "";
    return ReadLine();
  }
  // Sends a command whose probe is expected to die (no reply is read).
  void Send(const std::string& line) {
    std::string l = line + "\n";
    ssize_t n = write(in_, l.data(), l.size());
    (void)n;
  }
  void Kill() { kill(pid_, SIGKILL); }
  // The wait status.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }
  // Waits until the probe has stopped (SIGSTOP); false if it died instead.
  bool WaitStopped() {
    int status = 0;
    if (waitpid(pid_, &status, WUNTRACED) != pid_) return false;
    if (WIFSTOPPED(status)) return true;
    reaped_ = true;
    return false;
  }
  // The wait status if the probe has already exited, else -1 (never waits).
  int ExitedStatus() {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return -1;
    reaped_ = true;
    return status;
  }

 private:
  std::string ReadLine() {
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 30000) <= 0) return "";
      char chunk[4096];
      ssize_t n = read(out_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  bool reaped_ = false;
  std::string buf_;
};

}  // namespace daxfs::testing
