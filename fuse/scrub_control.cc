#include "scrub_control.h"

#include <algorithm>
#include <cstring>

#include "scrub_json.h"

namespace daxfs::fusefs {
namespace {

uint64_t Ns(double seconds) { return seconds > 0 ? static_cast<uint64_t>(seconds * 1e9) : 0; }

}  // namespace

Status ScrubControl::Start(const ScrubStartIoctl& request) {
  if ((request.flags & ~kScrubResume) != 0) return Status::Invalid("unknown scrub flags");
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state == kScrubRunning) return Status::Error(EBUSY, "a scrub is running");
  ScrubOptions options;
  options.max_rate = request.max_rate;
  if (request.flags & kScrubResume) {
    if (!resume_) return Status::NotFound("no stopped scrub to resume");
    options.resume = *resume_;
  }
  if (thread_.joinable()) thread_.join();  // the last one has ended (state is not running)
  stop_.store(false);
  status_ = {};
  status_.state = kScrubRunning;
  status_.phase = static_cast<uint32_t>(options.resume.phase);
  summary_.clear();
  options.stop = &stop_;
  options.progress = [this](const ScrubProgress& p) {
    std::lock_guard<std::mutex> l(mu_);
    const auto phase = static_cast<uint32_t>(p.phase);
    status_.phase = phase;
    status_.done_bytes = p.done_bytes;
    status_.total_bytes = p.total_bytes;
    status_.read_bytes = p.read_bytes;
    status_.seconds_ns = Ns(p.seconds);
    if (phase < 3) {
      status_.phase_read_bytes[phase] = p.read_bytes;
      status_.phase_seconds_ns[phase] = Ns(p.seconds);
      if (p.phase_done) status_.phases_done |= 1u << phase;
    }
  };
  thread_ = std::thread([this, options = std::move(options)]() mutable { Run(std::move(options)); });
  return Status::Ok();
}

void ScrubControl::Run(ScrubOptions options) {
  Result<ScrubReport> r = dax_->Scrub(options);
  std::string summary;
  if (r.ok()) {
    summary = ScrubReportJson(*r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!r.ok()) {
    status_.state = kScrubFailed;
    status_.error = static_cast<uint32_t>(r.status().code());
    return;
  }
  status_.state = r->stopped ? kScrubStopped : kScrubDone;
  if (r->stopped) {
    resume_ = r->resume;
  } else {
    resume_.reset();
  }
  status_.found = r->metadata.found + r->index.found + r->data.found + r->data.unread_bad;
  status_.repaired = r->metadata.repaired + r->data.repaired;
  status_.lost = r->lost.size();
  summary_ = std::move(summary);
  status_.summary_bytes = summary_.size();
}

Status ScrubControl::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state != kScrubRunning) return Status::NotFound("no scrub is running");
  stop_.store(true);
  return Status::Ok();
}

ScrubStatusIoctl ScrubControl::GetStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

Status ScrubControl::Summary(ScrubSummaryIoctl* io) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state != kScrubDone && status_.state != kScrubStopped) {
    return Status::NotFound("no scrub summary is ready");
  }
  if (io->offset > summary_.size()) return Status::Invalid("offset past the end of the summary");
  size_t n = std::min(summary_.size() - io->offset, sizeof io->data);
  std::memcpy(io->data, summary_.data() + io->offset, n);
  io->length = static_cast<uint32_t>(n);
  io->total = static_cast<uint32_t>(summary_.size());
  return Status::Ok();
}

void ScrubControl::Shutdown() {
  stop_.store(true);
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

}  // namespace daxfs::fusefs
