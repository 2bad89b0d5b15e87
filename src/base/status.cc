// Status formatting. No knowledge of any other layer.
#include "daxfs/status.h"

#include <cstring>

namespace daxfs {

const std::string& Status::message() const {
  static const std::string kOk = "ok";
  return state_ ? state_->message : kOk;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string reason = std::strerror(state_->code);
  if (state_->message.find(reason) != std::string::npos) return state_->message;
  return state_->message + " (" + reason + ")";
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return Status();
  return Status(state_->code, std::string(prefix) + ": " + state_->message);
}

}  // namespace daxfs
