// The FUSE low-level operations over the public daxfs API (include/daxfs/): each callback turns
// its arguments into one engine call (rarely two) and the result into one reply, keeping the
// kernel's lookup counts. Knows libfuse's low-level API and include/daxfs/ only; nothing about
// start-up, options parsing or the engine's insides.
#pragma once

#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "daxfs/dax.h"
#include "daxfs/filesystem.h"
#include "lookup_table.h"
#include "scrub_control.h"

namespace daxfs::fusefs {

struct AdapterOptions {
  double timeout = 60.0;  // entry and attribute timeouts, seconds (also for negative entries)
  bool default_permissions = true;
  bool debug = false;         // log every error with the engine's message (fuse_log, debug level)
  uint32_t max_io = 1 << 20;  // max_read and max_write, bytes
  // Keep a file's page cache across opens: right while the daemon is the only writer; false when
  // client processes store into files directly (-o socket): each open then drops cached pages.
  bool keep_cache = true;
  // Access times (relatime, as Linux by default): the first read of an open file and the first
  // readdir of an open directory ask the engine's TouchAtime. Off with -o noatime; nodiratime
  // turns it off for directories only.
  bool atime = true;
  bool diratime = true;
};

class Adapter {
 public:
  Adapter(DaxFs* dax, const AdapterOptions& options);

  // The operation table to give fuse_session_new, with this Adapter as its userdata.
  static const fuse_lowlevel_ops& Operations();

  // The session, for notifications. From here on a file range the engine records lost, whatever found it (inject-error, a scrub,
  // a SIGBUS, a client's report), leaves the kernel's page cache, so reads of it fail with EIO.
  void Attach(fuse_session* session);
  // Before the engine unmounts: no more cache drops.
  void Detach();

  DaxFs& dax() { return *dax_; }
  Filesystem& fs() { return dax_->fs(); }
  const AdapterOptions& options() const { return options_; }
  LookupTable& lookups() { return lookups_; }
  // The scrub run for `daxfs scrub --mount`; stop it (Shutdown) before the engine unmounts.
  ScrubControl& scrub() { return *scrub_; }

 private:
  DaxFs* dax_;
  AdapterOptions options_;
  LookupTable lookups_;
  fuse_session* session_ = nullptr;
  std::unique_ptr<ScrubControl> scrub_;
};

}  // namespace daxfs::fusefs
