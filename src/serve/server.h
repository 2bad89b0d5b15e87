// The daemon side of the client protocol (docs/protocol.md): listens on an AF_UNIX SEQPACKET
// socket, gives each client a session (its SO_PEERCRED credentials, its open files and leases),
// checks permissions, answers requests through a daxfs::LayoutHost, forwards layout recalls and
// failure notices, cuts off clients that do not acknowledge a recall in time, and releases all
// of a client's leases when its socket closes. Uses only the public headers and src/proto; knows
// nothing of the engine's internals.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daxfs/layout.h"
#include "daxfs/status.h"

namespace daxfs::serve {

struct ServerOptions {
  std::string socket_path;
  // The socket file's mode: who may connect at all (then Hello checks device access).
  uint32_t socket_mode = 0660;
  // Refuse a socket directory that others may write to without the sticky bit (they could
  // replace the socket).
  bool check_directory = true;
  uint32_t max_sessions = 256;
  uint32_t max_files = 1024;     // open files per session (EMFILE)
  uint32_t max_mappings = 4096;  // live mappings per session (ENOMEM)
  // A client that leaves a recall unacknowledged (or its socket full) this long is cut off.
  uint32_t recall_timeout_ms = 5000;
  // A cut-off closes the session and releases its leases, but cannot stop a hung or hostile
  // client from still loading and storing through its mappings after the engine reuses their
  // blocks. With this set, a client cut off while it holds leases is also killed (SIGKILL
  // through a pidfd taken at connect: SO_PEERPIDFD, else pidfd_open of the SO_PEERCRED pid),
  // and the cut-off waits (at most recall_timeout_ms more) until the process has exited, so its
  // address space is gone before any block is reused: the only true fence. Needs permission to
  // kill the client (the same uid, or CAP_KILL). docs/protocol.md.
  bool kill_on_cutoff = false;
  // One line per session event (connected, closed, cut off, refused, fault reported); also
  // logged at info level. Called from session threads.
  std::function<void(const std::string&)> on_event;
};

struct ServerCounters {
  uint64_t sessions_total = 0;
  uint64_t sessions_live = 0;
  uint64_t recalls = 0;
  uint64_t cutoffs = 0;
  uint64_t notices = 0;
  uint64_t faults_reported = 0;
  uint64_t kills = 0;  // clients killed at cut-off (kill_on_cutoff)
};

class Server {
 public:
  // Creates the socket (an existing stale socket at the path is replaced; a live one is
  // EADDRINUSE; a non-socket file is EEXIST) and starts accepting. `host` must outlive it.
  static Result<std::unique_ptr<Server>> Start(LayoutHost* host, const ServerOptions& options);
  virtual ~Server() = default;  // Stop()
  // Stops accepting, cuts every session off, releases every lease, removes the socket file.
  virtual void Stop() = 0;
  virtual ServerCounters counters() const = 0;
  virtual const std::string& socket_path() const = 0;
};

}  // namespace daxfs::serve
