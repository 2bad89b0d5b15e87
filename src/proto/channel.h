// Sending and receiving whole protocol messages on an AF_UNIX SOCK_SEQPACKET socket (one message
// per packet, at most one fd per message by SCM_RIGHTS), with deadlines. Knows the message size
// limit, nothing of what messages mean.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::proto {

inline constexpr int kForever = -1;

// Sends one message (and `pass_fd` with it when >= 0). Never raises SIGPIPE. Waits at most
// `timeout_ms` for room in the socket (kForever: no limit): ETIMEDOUT then. EPIPE/ECONNRESET
// when the peer is gone.
Status SendMessage(int sock, std::span<const uint8_t> message, int pass_fd = -1,
                   int timeout_ms = kForever);

// Async-signal-safe: one non-blocking send (MSG_DONTWAIT | MSG_NOSIGNAL). False if it failed.
bool SendMessageNow(int sock, const uint8_t* message, size_t size);

// Receives one message into `out`. `*fd_out` (may be null: any fd received is then closed)
// gets an fd passed with it, or -1; fds come close-on-exec; extra fds are closed. Waits at most
// `timeout_ms`: ETIMEDOUT. ECONNRESET "connection closed" at end of stream; EMSGSIZE for a
// message larger than kMaxMessage (it is consumed); EINTR never escapes.
Status ReceiveMessage(int sock, std::vector<uint8_t>* out, int* fd_out, int timeout_ms = kForever);

// A connected pair (tests), both close-on-exec.
Status SocketPair(int fds[2]);

// Connects to the listening socket at `path` (SOCK_SEQPACKET, close-on-exec).
Result<int> ConnectSocket(const std::string& path);

}  // namespace daxfs::proto
