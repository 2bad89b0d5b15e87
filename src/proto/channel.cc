// SEQPACKET message transport with fd passing and deadlines (channel.h). System calls only.
#include "proto/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "proto/message.h"

namespace daxfs::proto {
namespace {

Status Errno(const char* what) {
  const int err = errno;
  return Status::Error(err, std::string(what) + ": " + std::strerror(err));
}

// Milliseconds left until `deadline` (kForever stays kForever).
int Remaining(std::chrono::steady_clock::time_point deadline, int timeout_ms) {
  if (timeout_ms == kForever) return kForever;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

Status WaitFor(int sock, short events, std::chrono::steady_clock::time_point deadline,
               int timeout_ms) {
  for (;;) {
    pollfd p{sock, events, 0};
    const int left = Remaining(deadline, timeout_ms);
    const int n = poll(&p, 1, left);
    if (n > 0) return Status::Ok();
    if (n == 0)
      return Status::Error(ETIMEDOUT, "timed out after " + std::to_string(timeout_ms) + " ms");
    if (errno != EINTR) return Errno("poll");
  }
}

void CloseReceivedFds(msghdr* msg, int* keep) {
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (keep != nullptr && *keep < 0) {
        *keep = fd;
      } else {
        close(fd);
      }
    }
  }
}

}  // namespace

Status SendMessage(int sock, std::span<const uint8_t> message, int pass_fd, int timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  iovec iov{const_cast<uint8_t*>(message.data()), message.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  for (;;) {
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof pass_fd);
    }
    const ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return Status::Ok();
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("send");
    RETURN_IF_ERROR(WaitFor(sock, POLLOUT, deadline, timeout_ms).WithContext("send"));
  }
}

bool SendMessageNow(int sock, const uint8_t* message, size_t size) {
  return send(sock, message, size, MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(size);
}

Status ReceiveMessage(int sock, std::vector<uint8_t>* out, int* fd_out, int timeout_ms) {
  if (fd_out != nullptr) *fd_out = -1;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  out->resize(kMaxMessage + 1);  // one byte more than allowed: MSG_TRUNC tells oversize apart
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  for (;;) {
    iovec iov{out->data(), out->size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return Errno("receive");
      RETURN_IF_ERROR(WaitFor(sock, POLLIN, deadline, timeout_ms).WithContext("receive"));
      continue;
    }
    CloseReceivedFds(&msg, fd_out);
    if (n == 0) {
      out->clear();
      return Status::Error(ECONNRESET, "connection closed by the peer");
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<size_t>(n) > kMaxMessage) {
      if (fd_out != nullptr && *fd_out >= 0) {
        close(*fd_out);
        *fd_out = -1;
      }
      out->clear();
      return Status::Error(EMSGSIZE,
                           "message larger than " + std::to_string(kMaxMessage) + " bytes");
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0 && fd_out != nullptr && *fd_out >= 0) {
      close(*fd_out);  // more fds than we accept: refuse them all
      *fd_out = -1;
      return Status::Error(EPROTO, "too many file descriptors with one message");
    }
    out->resize(static_cast<size_t>(n));
    return Status::Ok();
  }
}

Status SocketPair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return Errno("socketpair");
  return Status::Ok();
}

Result<int> ConnectSocket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status::Error(ENAMETOOLONG, path + ": socket path is empty or longer than " +
                                           std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    Status s = Errno("connect").WithContext(path);
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace daxfs::proto
