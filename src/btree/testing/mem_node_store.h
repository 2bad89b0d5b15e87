// An in-memory NodeStore for tests and benchmarks of the B+tree. Commit() plays the part of the
// transaction layer's commit (seal fresh nodes, free the committed nodes released since the last
// commit); it also checks how the tree uses the store. Knows nothing about devices or superblocks.
#pragma once

#include <fmt/core.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "btree/node_store.h"
#include "format/layout.h"
#include "format/node.h"

namespace daxfs::btree::testing {

class MemNodeStore final : public NodeStore {
 public:
  explicit MemNodeStore(uint64_t first_block = format::kFirstNodeBlock) : first_(first_block) {}

  // A committed node is verified (VerifyBlock) on its first read after it was sealed or touched
  // through RawForTest(); fresh nodes are never verified.
  Result<const uint8_t*> Read(uint64_t blockno) override {
    if (!InRange(blockno)) {
      return Status::Invalid(fmt::format("block {} is outside metadata space", blockno));
    }
    size_t i = Index(blockno);
    switch (state_[i]) {
      case kFree:
        return Status::Corruption(fmt::format("block {}: not in use", blockno));
      case kFresh:
        return static_cast<const uint8_t*>(Block(i));
      default:
        break;
    }
    if (!verified_[i]) {
      RETURN_IF_ERROR(format::VerifyBlock(Block(i), format::BlockType::kBTreeNode, blockno));
      verified_[i] = 1;
    }
    return static_cast<const uint8_t*>(Block(i));
  }

  bool IsFresh(uint64_t blockno) const override {
    return InRange(blockno) && state_[Index(blockno)] == kFresh;
  }

  Result<uint64_t> Allocate() override {
    if (fail_after_ == 0) return Status::NoSpace("mem node store: allocation failure injected");
    if (fail_after_ > 0) --fail_after_;
    if (free_.empty() && state_.size() >= max_nodes_) {
      return Status::NoSpace(fmt::format("mem node store: all {} nodes in use", max_nodes_));
    }
    size_t i;
    if (free_.empty()) {
      i = Grow();
    } else {
      i = free_.back();
      free_.pop_back();
    }
    state_[i] = kFresh;
    fresh_list_.push_back(i);
    ++fresh_count_;
    if (poison_allocations_) std::memset(Block(i), 0xA5, format::kBlockSize);
    return first_ + i;
  }

  uint8_t* Writable(uint64_t blockno) override {
    if (!IsFresh(blockno)) {
      Misuse(fmt::format("Writable({}) on a node that is not fresh", blockno));
      if (!InRange(blockno)) return scratch_;
    }
    return InRange(blockno) ? Block(Index(blockno)) : scratch_;
  }

  void Release(uint64_t blockno) override {
    if (!InRange(blockno)) return Misuse(fmt::format("Release({}) out of range", blockno));
    size_t i = Index(blockno);
    switch (state_[i]) {
      case kFresh:
        state_[i] = kFree;
        free_.push_back(i);
        --fresh_count_;
        break;
      case kCommitted:
        state_[i] = kReleased;
        released_.push_back(i);
        --committed_count_;
        break;
      default:
        Misuse(fmt::format("Release({}) of a node that is not in use", blockno));
    }
  }

  uint64_t generation() const override { return generation_; }

  // Seals every fresh node and makes it committed, frees the committed nodes released since the
  // last commit, and moves to the next generation.
  void Commit() {
    for (size_t i : fresh_list_) {
      if (state_[i] != kFresh) continue;
      format::SealBlock(Block(i));
      sealed_checksum_[i] = format::ComputeBlockChecksum(Block(i));
      state_[i] = kCommitted;
      verified_[i] = 0;
      ++committed_count_;
    }
    fresh_list_.clear();
    fresh_count_ = 0;
    FreeReleased();
    ++generation_;
  }

  // Frees every fresh node and takes back the releases since the last commit: the store is as
  // it was after the last Commit().
  void Abort() {
    for (size_t i : fresh_list_) {
      if (state_[i] != kFresh) continue;
      state_[i] = kFree;
      free_.push_back(i);
    }
    fresh_list_.clear();
    fresh_count_ = 0;
    for (size_t i : released_) {
      state_[i] = kCommitted;
      ++committed_count_;
    }
    released_.clear();
  }

  // Allocate() succeeds `n` more times, then fails with ENOSPC; n < 0: never fails.
  void FailAllocationsAfter(int64_t n) { fail_after_ = n; }
  // Allocate() fails with ENOSPC once the store holds `n` nodes and none is free.
  void set_max_nodes(size_t n) { max_nodes_ = n; }
  // Fill newly allocated nodes with 0xA5 (default), so that reading unwritten bytes shows.
  void set_poison_allocations(bool on) { poison_allocations_ = on; }

  size_t fresh_count() const { return fresh_count_; }
  // Committed nodes not released.
  size_t committed_count() const { return committed_count_; }
  // Committed nodes released since the last commit.
  size_t released_count() const { return released_.size(); }
  size_t free_count() const { return free_.size(); }
  // Every node ever handed out: fresh + committed + released + free.
  size_t total_count() const { return state_.size(); }

  // The committed, not released nodes, ascending.
  std::vector<uint64_t> CommittedNodes() const {
    std::vector<uint64_t> nodes;
    for (size_t i = 0; i < state_.size(); ++i) {
      if (state_[i] == kCommitted) nodes.push_back(first_ + i);
    }
    return nodes;
  }

  // EUCLEAN naming the first committed node (released or not) whose bytes changed since it was
  // sealed.
  Status CheckCommittedUnchanged() const {
    for (size_t i = 0; i < state_.size(); ++i) {
      if (state_[i] != kCommitted && state_[i] != kReleased) continue;
      const uint8_t* block = Block(i);
      uint64_t stored;
      std::memcpy(&stored, block + 8, 8);
      if (stored != sealed_checksum_[i] || format::ComputeBlockChecksum(block) != stored) {
        return Status::Corruption(
            fmt::format("block {}: committed node changed after it was sealed", first_ + i));
      }
    }
    return Status::Ok();
  }

  // The first misuse of the NodeStore contract seen (Writable on a node that is not fresh,
  // releasing a node not in use), or "".
  const std::string& misuse() const { return misuse_; }

  // A node's bytes, whatever its state, for corruption tests; it is verified again on its next
  // read. ResealForTest recomputes its checksum (and accepts the change as committed).
  uint8_t* RawForTest(uint64_t blockno) {
    size_t i = Index(blockno);
    verified_[i] = 0;
    return Block(i);
  }
  void ResealForTest(uint64_t blockno) {
    size_t i = Index(blockno);
    format::SealBlock(Block(i));
    sealed_checksum_[i] = format::ComputeBlockChecksum(Block(i));
    verified_[i] = 0;
  }

 private:
  enum State : uint8_t { kFree, kFresh, kCommitted, kReleased };
  struct alignas(64) NodeBytes {
    uint8_t bytes[format::kBlockSize];
  };
  static constexpr size_t kChunkShift = 9;  // 512 nodes (2 MiB) per allocation
  static constexpr size_t kChunkNodes = size_t{1} << kChunkShift;

  bool InRange(uint64_t blockno) const {
    return blockno >= first_ && blockno - first_ < state_.size();
  }
  size_t Index(uint64_t blockno) const { return blockno - first_; }
  uint8_t* Block(size_t i) const { return chunks_[i >> kChunkShift][i & (kChunkNodes - 1)].bytes; }

  size_t Grow() {
    size_t i = state_.size();
    if ((i >> kChunkShift) == chunks_.size()) {
      chunks_.push_back(std::make_unique<NodeBytes[]>(kChunkNodes));
    }
    state_.push_back(kFree);
    verified_.push_back(0);
    sealed_checksum_.push_back(0);
    return i;
  }

  void FreeReleased() {
    for (size_t i : released_) {
      state_[i] = kFree;
      free_.push_back(i);
    }
    released_.clear();
  }

  void Misuse(std::string what) {
    if (misuse_.empty()) misuse_ = std::move(what);
  }

  uint64_t first_;
  uint64_t generation_ = 1;
  std::vector<std::unique_ptr<NodeBytes[]>> chunks_;
  std::vector<uint8_t> state_;
  std::vector<uint8_t> verified_;
  std::vector<uint64_t> sealed_checksum_;
  std::vector<size_t> free_;
  std::vector<size_t> fresh_list_;  // may hold nodes since freed or reallocated
  std::vector<size_t> released_;
  size_t fresh_count_ = 0;
  size_t committed_count_ = 0;
  size_t max_nodes_ = SIZE_MAX;
  int64_t fail_after_ = -1;
  bool poison_allocations_ = true;
  std::string misuse_;
  uint8_t scratch_[format::kBlockSize] = {};
};

}  // namespace daxfs::btree::testing
