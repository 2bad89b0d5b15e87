// One client of the daemon: its socket, credentials, open files and leases, a reader thread that
// takes every message off the socket (acknowledgements are handled there, so a recall's ack gets
// through even while a request waits on the filesystem lock) and a worker thread that runs the
// client's requests in order against the LayoutHost. Knows nothing of the listener.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daxfs/layout.h"
#include "proto/message.h"
#include "serve/access.h"
#include "serve/server.h"

namespace daxfs::serve {

class Session;

// What sessions share: the host, the options, the counters, the event line, the session list.
struct ServerContext {
  LayoutHost* host = nullptr;
  ServerOptions options;
  std::atomic<uint64_t> sessions_total{0};
  std::atomic<uint64_t> recalls{0};
  std::atomic<uint64_t> cutoffs{0};
  std::atomic<uint64_t> notices{0};
  std::atomic<uint64_t> faults{0};
  mutable std::mutex mu;  // guards `sessions`
  std::vector<std::shared_ptr<Session>> sessions;
  // Wakes the acceptor to reap finished sessions.
  std::function<void()> on_session_finished;
  void Event(const std::string& line) const;
  std::vector<proto::SessionInfo> SessionInfos();
};

// A lease as the session keeps it: the engine's lease plus the sink the engine calls.
class LeaseRecord final : public LayoutSink {
 public:
  LeaseRecord(Session* session, uint64_t mapping_id, uint64_t file_id, Ino ino, bool writable)
      : session_(session), mapping_id_(mapping_id), file_id_(file_id), ino_(ino),
        writable_(writable) {}
  ~LeaseRecord() override;  // releases the engine's lease first (it may wait for a sink call)

  // LayoutSink.
  void LayoutChanged(uint64_t file_offset, uint64_t length, const Layout& layout) override;
  void Failure(const LeaseNotice& notice) override;
  uint64_t ClientAddress() const override { return client_address_.load(); }

  // The worker, once MapLayout returned: applies changes that came meanwhile, sends the
  // MapReply (request `request_id`) and any notices that waited for it. False if the session
  // died (the reply was not sent).
  bool Publish(std::unique_ptr<LayoutLease> lease, uint64_t request_id);
  void Acknowledged(uint64_t sequence, uint32_t status);
  void SetClientAddress(uint64_t address) { client_address_.store(address); }
  void WakeWaiters();  // the session died
  LayoutLease* lease() { return lease_.get(); }
  uint64_t mapping_id() const { return mapping_id_; }
  uint64_t file_id() const { return file_id_; }

 private:
  bool SendLayout(proto::MessageType first, uint64_t request_id, uint64_t sequence,
                  uint64_t offset, uint64_t length, const std::vector<proto::Segment>& segments);
  bool SendNotice(const LeaseNotice& notice);

  Session* session_;
  const uint64_t mapping_id_;
  const uint64_t file_id_;
  const Ino ino_;
  const bool writable_;
  std::atomic<uint64_t> client_address_{0};
  std::unique_ptr<LayoutLease> lease_;  // set by Publish

  std::mutex mu_;
  std::condition_variable cv_;
  bool published_ = false;
  struct Change {
    uint64_t offset, length;
    Layout layout;
  };
  std::vector<Change> pending_changes_;     // before Publish
  std::vector<LeaseNotice> pending_notices_;  // before Publish
  std::vector<proto::Segment> layout_;      // what the client maps (after Publish)
  uint64_t range_offset_ = 0;
  uint64_t range_length_ = 0;
  uint64_t sequence_ = 0;  // last recall sent
  uint64_t acked_ = 0;     // last recall acknowledged
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerContext* ctx, int fd, Credentials peer, uint64_t id);
  ~Session();
  void Start();
  // Cuts the session off (idempotent): no more requests, every recall wait ends, the socket is
  // shut down (the reader then tears the session down and releases its leases).
  void CutOff(const std::string& reason, bool count_as_cutoff);
  // Joins the threads (after finished()).
  void Join();
  bool finished() const { return finished_.load(); }
  bool dead() const { return dead_.load(); }

  // For lease records: sending under the session's version, with the recall deadline.
  Status Send(const proto::Body& body, uint64_t request_id, int fd = -1);
  uint32_t recall_timeout_ms() const { return ctx_->options.recall_timeout_ms; }
  ServerContext* ctx() { return ctx_; }
  const Credentials& peer() const { return peer_; }
  uint64_t id() const { return id_; }
  proto::SessionInfo Info();

 private:
  struct Request {
    proto::Header header;
    proto::Body body;
  };
  struct OpenFile {
    Ino ino = 0;
    uint32_t flags = 0;
    std::string path;
  };

  void ReaderLoop();
  void WorkerLoop();
  void Teardown(const std::string& reason);
  // Reader thread: false when the session must close.
  bool Dispatch(const proto::Header& header, proto::Body body);
  bool HandleHello(const proto::Header& header, const proto::Hello& hello);
  void Execute(const Request& request);
  void Reply(uint64_t request_id, const proto::Body& body);
  void ReplyError(uint64_t request_id, const Status& status);
  Status DoOpen(uint64_t request_id, const proto::Open& open);
  Status DoClose(uint64_t request_id, const proto::Close& close);
  Status DoMap(uint64_t request_id, const proto::Map& map);
  Status DoUnmap(uint64_t request_id, const proto::Unmap& unmap);
  void DoReportFault(const proto::ReportFault& fault);
  Status DoInject(uint64_t request_id, const proto::InjectError& inject);
  Status DoErrors(uint64_t request_id);
  Status DoStatus(uint64_t request_id);
  std::shared_ptr<LeaseRecord> FindLease(uint64_t mapping_id);

  ServerContext* ctx_;
  const int fd_;
  const Credentials peer_;
  const uint64_t id_;
  std::thread reader_;
  std::thread worker_;
  std::atomic<bool> dead_{false};
  std::atomic<bool> finished_{false};
  bool device_writable_ = false;  // reader only, before the worker sees requests
  std::atomic<uint16_t> version_{0};  // 0 until Hello

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<Request> queue_;
  std::string cut_reason_;
  std::map<uint64_t, OpenFile> files_;
  std::map<uint64_t, std::shared_ptr<LeaseRecord>> leases_;
  uint64_t next_file_id_ = 1;
  uint64_t next_mapping_id_ = 1;
};

// Converts between the engine's layout and the protocol's.
std::vector<proto::Segment> ToProto(const Layout& layout);

}  // namespace daxfs::serve
