// The daemon's listener (server.h): creates the socket safely (restrictive mode, a directory
// others cannot write to, a stale socket replaced but never a live one), accepts clients with
// their SO_PEERCRED credentials, and reaps finished sessions. Session work is in session.cc.
#include "serve/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "proto/channel.h"
#include "serve/session.h"

namespace daxfs::serve {
namespace {

Status Errno(const std::string& what) {
  const int err = errno;
  return Status::Error(err, what + ": " + std::strerror(err));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status CheckDirectory(const std::string& socket_path) {
  const std::string dir = DirectoryOf(socket_path);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return Errno(dir);
  if (!S_ISDIR(st.st_mode)) return Status::Error(ENOTDIR, dir + ": Not a directory");
  const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (others_write && (st.st_mode & S_ISVTX) == 0) {
    return Status::Error(EPERM, dir +
                                    ": the socket directory is writable by other users "
                                    "without the sticky bit (they could replace the socket)");
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    return Status::Error(EPERM, dir + ": the socket directory belongs to uid " +
                                    std::to_string(st.st_uid) + ", not to the daemon or root");
  }
  return Status::Ok();
}

// Removes a socket left by a daemon that died; refuses a live one and anything not a socket.
Status ClearStaleSocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Errno(path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::Exists(path + ": exists and is not a socket (remove it or choose another path)");
  }
  auto fd = proto::ConnectSocket(path);
  if (fd.ok()) {
    close(*fd);
    return Status::Error(EADDRINUSE, path + ": a daemon is already serving on this socket");
  }
  if (fd.status().code() != ECONNREFUSED) return fd.status();
  if (unlink(path.c_str()) != 0) return Errno("unlink " + path);
  return Status::Ok();
}

Result<int> Listen(const ServerOptions& options, ino_t* ino) {
  const std::string& path = options.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status::Error(ENAMETOOLONG, path + ": socket path is empty or longer than " +
                                           std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  if (options.check_directory) RETURN_IF_ERROR(CheckDirectory(path));
  RETURN_IF_ERROR(ClearStaleSocket(path));
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  // Linux creates the socket file with the socket inode's mode (less the umask): set it before
  // bind so the file is never more open than asked, then chmod (the umask may have cut bits).
  const mode_t mode = options.socket_mode & 0777;
  if (fchmod(fd, mode) != 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Status s = Errno("bind " + path);
    close(fd);
    return s;
  }
  struct stat st;
  if (chmod(path.c_str(), mode) != 0 || stat(path.c_str(), &st) != 0 || listen(fd, 128) != 0) {
    Status s = Errno("listen " + path);
    unlink(path.c_str());
    close(fd);
    return s;
  }
  *ino = st.st_ino;
  return fd;
}

Result<Credentials> PeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return Errno("SO_PEERCRED");
  Credentials c{cred.pid, cred.uid, cred.gid, {}};
  std::vector<gid_t> groups(64);
  for (;;) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE) {
      groups.clear();  // an older kernel: primary group only
      break;
    }
    groups.resize(glen / sizeof(gid_t) + 16);
  }
  c.groups = std::move(groups);
  return c;
}

// The peer process as a pidfd, for kill_on_cutoff: SO_PEERPIDFD names exactly the process that
// connected (Linux 6.5+); before that, pidfd_open of the SO_PEERCRED pid, which could name
// another process if the client exited and its pid was reused in between.
int PeerPidfd(int fd, pid_t pid) {
  constexpr int kSoPeerPidfd = 77;  // SO_PEERPIDFD, not in older headers
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, kSoPeerPidfd, &pidfd, &len) == 0 && pidfd >= 0) {
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    return pidfd;
  }
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

class ServerImpl final : public Server {
 public:
  ServerImpl(LayoutHost* host, const ServerOptions& options) {
    ctx_.host = host;
    ctx_.options = options;
    ctx_.on_session_finished = [this] { Wake(); };
  }
  ~ServerImpl() override { Stop(); }

  Status Init() {
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) return Errno("eventfd");
    ASSIGN_OR_RETURN(listen_fd_, Listen(ctx_.options, &socket_ino_));
    acceptor_ = std::thread([this] { AcceptLoop(); });
    return Status::Ok();
  }

  void Stop() override {
    std::call_once(stopped_, [this] {
      stopping_.store(true);
      Wake();
      if (acceptor_.joinable()) acceptor_.join();
      std::vector<std::shared_ptr<Session>> sessions;
      {
        std::lock_guard<std::mutex> lock(ctx_.mu);
        sessions.swap(ctx_.sessions);
      }
      for (auto& s : sessions) s->CutOff("the daemon is stopping", false);
      for (auto& s : sessions) s->Join();
      sessions.clear();
      if (listen_fd_ >= 0) {
        struct stat st;
        if (stat(ctx_.options.socket_path.c_str(), &st) == 0 && st.st_ino == socket_ino_) {
          unlink(ctx_.options.socket_path.c_str());
        }
        close(listen_fd_);
      }
      if (wake_ >= 0) close(wake_);
    });
  }

  ServerCounters counters() const override {
    ServerCounters c;
    c.sessions_total = ctx_.sessions_total.load();
    {
      std::lock_guard<std::mutex> lock(ctx_.mu);
      for (auto& s : ctx_.sessions) c.sessions_live += s->dead() ? 0 : 1;
    }
    c.recalls = ctx_.recalls.load();
    c.cutoffs = ctx_.cutoffs.load();
    c.notices = ctx_.notices.load();
    c.faults_reported = ctx_.faults.load();
    c.kills = ctx_.kills.load();
    return c;
  }
  const std::string& socket_path() const override { return ctx_.options.socket_path; }

 private:
  void Wake() {
    uint64_t one = 1;
    ssize_t n = write(wake_, &one, sizeof one);
    (void)n;
  }

  void Reap() {
    std::vector<std::shared_ptr<Session>> done;
    {
      std::lock_guard<std::mutex> lock(ctx_.mu);
      auto& list = ctx_.sessions;
      for (auto it = list.begin(); it != list.end();) {
        if ((*it)->finished()) {
          done.push_back(std::move(*it));
          it = list.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& s : done) s->Join();
  }

  void AcceptLoop() {
    while (!stopping_.load()) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        ctx_.Event(std::string("poll failed: ") + std::strerror(errno));
        return;
      }
      if ((fds[1].revents & POLLIN) != 0) {
        uint64_t count;
        ssize_t n = read(wake_, &count, sizeof count);
        (void)n;
        Reap();
      }
      if ((fds[0].revents & POLLIN) == 0 || stopping_.load()) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;  // EAGAIN, ECONNABORTED, EMFILE: the client sees a closed socket
      auto cred = PeerCredentials(fd);
      if (!cred.ok()) {
        ctx_.Event("refused a client: " + cred.status().ToString());
        close(fd);
        continue;
      }
      const uint64_t id = ctx_.sessions_total.fetch_add(1) + 1;
      const int pidfd = ctx_.options.kill_on_cutoff ? PeerPidfd(fd, cred->pid) : -1;
      auto session = std::make_shared<Session>(&ctx_, fd, std::move(*cred), id, pidfd);
      {
        std::lock_guard<std::mutex> lock(ctx_.mu);
        ctx_.sessions.push_back(session);
      }
      session->Start();
    }
  }

  ServerContext ctx_;
  int listen_fd_ = -1;
  int wake_ = -1;
  ino_t socket_ino_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::once_flag stopped_;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(LayoutHost* host, const ServerOptions& options) {
  auto server = std::make_unique<ServerImpl>(host, options);
  RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace daxfs::serve
