// Metadata node states and next-fit allocation over metadata chunks.
#include "space/node_allocator.h"

#include <fmt/core.h>

#include <algorithm>
#include <cassert>

namespace daxfs::space {

const char* NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kNotMetadata:
      return "not-metadata";
    case NodeState::kFree:
      return "free";
    case NodeState::kFresh:
      return "fresh";
    case NodeState::kUsed:
      return "used";
    case NodeState::kDeferred:
      return "deferred";
    case NodeState::kRetired:
      return "retired";
  }
  return "?";
}

NodeAllocator::NodeAllocator(uint64_t total_blocks, uint64_t chunk_blocks)
    : total_blocks_(total_blocks),
      chunk_blocks_(chunk_blocks),
      chunks_((total_blocks + chunk_blocks - 1) / chunk_blocks) {}

Status NodeAllocator::AddChunk(uint64_t chunk, uint64_t reserved_prefix) {
  if (chunk >= chunks_.size()) {
    return Status::Invalid(fmt::format("chunk {} is beyond the device ({} chunks)", chunk, chunks_.size()));
  }
  if (chunks_[chunk]) return Status::Exists(fmt::format("chunk {} is already metadata", chunk));
  auto c = std::make_unique<Chunk>();
  c->first_block = chunk * chunk_blocks_;
  c->blocks = std::min(chunk_blocks_, total_blocks_ - c->first_block);
  if (reserved_prefix > c->blocks) return Status::Invalid("reserved prefix larger than the chunk");
  c->state = std::make_unique<std::atomic<uint8_t>[]>(c->blocks);
  for (uint64_t i = 0; i < c->blocks; ++i) {
    auto s = i < reserved_prefix ? NodeState::kNotMetadata : NodeState::kFree;
    c->state[i].store(static_cast<uint8_t>(s), std::memory_order_relaxed);
  }
  counts_.total += c->blocks - reserved_prefix;
  counts_.free += c->blocks - reserved_prefix;
  chunks_[chunk] = std::move(c);
  metadata_chunks_.push_back(chunk);
  return Status::Ok();
}

Status NodeAllocator::RemoveChunk(uint64_t chunk) {
  if (chunk >= chunks_.size() || !chunks_[chunk]) {
    return Status::Invalid(fmt::format("chunk {} is not metadata", chunk));
  }
  Chunk& c = *chunks_[chunk];
  uint64_t free = 0, retired = 0;
  for (uint64_t i = 0; i < c.blocks; ++i) {
    auto s = static_cast<NodeState>(c.state[i].load(std::memory_order_relaxed) & kStateMask);
    if (s == NodeState::kFree) {
      ++free;
    } else if (s == NodeState::kRetired) {
      ++retired;
    } else if (s != NodeState::kNotMetadata) {
      return Status::Busy(fmt::format("chunk {}: block {} is {}", chunk, c.first_block + i,
                                      NodeStateName(s)));
    }
  }
  counts_.total -= free + retired;
  counts_.free -= free;
  counts_.retired -= retired;
  chunks_[chunk].reset();
  metadata_chunks_.erase(std::find(metadata_chunks_.begin(), metadata_chunks_.end(), chunk));
  cursor_chunk_ = 0;
  cursor_block_ = 0;
  return Status::Ok();
}

bool NodeAllocator::IsMetadataChunk(uint64_t chunk) const {
  return chunk < chunks_.size() && chunks_[chunk] != nullptr;
}

std::atomic<uint8_t>* NodeAllocator::Slot(uint64_t block) const {
  uint64_t chunk = block / chunk_blocks_;
  if (chunk >= chunks_.size() || !chunks_[chunk]) return nullptr;
  const Chunk& c = *chunks_[chunk];
  if (block - c.first_block >= c.blocks) return nullptr;  // past a short last chunk
  return &c.state[block - c.first_block];
}

NodeState NodeAllocator::State(uint64_t block) const {
  const std::atomic<uint8_t>* slot = Slot(block);
  if (!slot) return NodeState::kNotMetadata;
  return static_cast<NodeState>(slot->load(std::memory_order_relaxed) & kStateMask);
}

void NodeAllocator::Count(NodeState state, int64_t delta) {
  switch (state) {
    case NodeState::kFree:
      counts_.free += delta;
      break;
    case NodeState::kFresh:
      counts_.fresh += delta;
      break;
    case NodeState::kUsed:
      counts_.used += delta;
      break;
    case NodeState::kDeferred:
      counts_.deferred += delta;
      break;
    case NodeState::kRetired:
      counts_.retired += delta;
      break;
    case NodeState::kNotMetadata:
      break;
  }
}

void NodeAllocator::SetState(uint64_t block, NodeState from, NodeState to) {
  std::atomic<uint8_t>* slot = Slot(block);
  assert(slot && State(block) == from);
  (void)from;
  uint8_t mark = slot->load(std::memory_order_relaxed) & kMarkBit;
  slot->store(static_cast<uint8_t>(to) | mark, std::memory_order_relaxed);
  Count(from, -1);
  Count(to, +1);
}

Status NodeAllocator::MarkUsed(uint64_t block) {
  NodeState s = State(block);
  if (s == NodeState::kFree) {
    SetState(block, NodeState::kFree, NodeState::kUsed);
    return Status::Ok();
  }
  if (s == NodeState::kNotMetadata) {
    return Status::Corruption(fmt::format("block {} is referenced as a node but is not in a metadata chunk", block));
  }
  return Status::Corruption(fmt::format("block {} is referenced twice (owned twice)", block));
}

Result<uint64_t> NodeAllocator::Allocate() {
  if (counts_.free == 0) return Status::NoSpace("no free metadata node");
  for (size_t n = 0; n <= metadata_chunks_.size(); ++n) {
    if (cursor_chunk_ >= metadata_chunks_.size()) cursor_chunk_ = 0;
    Chunk& c = *chunks_[metadata_chunks_[cursor_chunk_]];
    for (uint64_t i = cursor_block_; i < c.blocks; ++i) {
      uint8_t v = c.state[i].load(std::memory_order_relaxed);
      if ((v & kStateMask) != static_cast<uint8_t>(NodeState::kFree)) continue;
      c.state[i].store(static_cast<uint8_t>(NodeState::kFresh), std::memory_order_relaxed);
      Count(NodeState::kFree, -1);
      Count(NodeState::kFresh, +1);
      cursor_block_ = i + 1;
      return c.first_block + i;
    }
    ++cursor_chunk_;
    cursor_block_ = 0;
  }
  return Status::Corruption("free node count is positive but no free node was found");
}

void NodeAllocator::MakeFree(uint64_t block, NodeState from) {
  auto it = std::lower_bound(retire_pending_.begin(), retire_pending_.end(), block);
  if (it != retire_pending_.end() && *it == block) {
    retire_pending_.erase(it);
    SetState(block, from, NodeState::kRetired);
  } else {
    SetState(block, from, NodeState::kFree);
  }
}

void NodeAllocator::FreeFresh(uint64_t block) { MakeFree(block, NodeState::kFresh); }

void NodeAllocator::Defer(uint64_t block, uint64_t generation) {
  SetState(block, NodeState::kUsed, NodeState::kDeferred);
  deferred_.push_back({block, generation});
}

void NodeAllocator::ReleaseDeferred(uint64_t safe_generation) {
  auto keep = std::remove_if(deferred_.begin(), deferred_.end(), [&](const Deferred& d) {
    if (d.generation > safe_generation) return false;
    MakeFree(d.block, NodeState::kDeferred);
    return true;
  });
  deferred_.erase(keep, deferred_.end());
}

void NodeAllocator::CommitFresh(const std::vector<uint64_t>& fresh) {
  for (uint64_t b : fresh) SetState(b, NodeState::kFresh, NodeState::kUsed);
}

void NodeAllocator::UndoDefer(const std::vector<uint64_t>& deferred_in_txn) {
  for (uint64_t b : deferred_in_txn) SetState(b, NodeState::kDeferred, NodeState::kUsed);
  std::vector<uint64_t> undone = deferred_in_txn;
  std::sort(undone.begin(), undone.end());
  auto keep = std::remove_if(deferred_.begin(), deferred_.end(), [&](const Deferred& d) {
    return std::binary_search(undone.begin(), undone.end(), d.block);
  });
  deferred_.erase(keep, deferred_.end());
}

Status NodeAllocator::Retire(uint64_t block) {
  NodeState s = State(block);
  switch (s) {
    case NodeState::kNotMetadata:
      return Status::Invalid(fmt::format("block {} is not a metadata node slot", block));
    case NodeState::kRetired:
      return Status::Ok();
    case NodeState::kFree:
      SetState(block, NodeState::kFree, NodeState::kRetired);
      return Status::Ok();
    default: {
      auto it = std::lower_bound(retire_pending_.begin(), retire_pending_.end(), block);
      if (it == retire_pending_.end() || *it != block) retire_pending_.insert(it, block);
      return Status::Ok();
    }
  }
}

std::vector<uint64_t> NodeAllocator::RetiredBlocks() const {
  std::vector<uint64_t> out = retire_pending_;
  for (uint64_t chunk : metadata_chunks_) {
    const Chunk& c = *chunks_[chunk];
    for (uint64_t i = 0; i < c.blocks; ++i) {
      uint8_t v = c.state[i].load(std::memory_order_relaxed) & kStateMask;
      if (v == static_cast<uint8_t>(NodeState::kRetired)) out.push_back(c.first_block + i);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool NodeAllocator::TestMark(uint64_t block) const {
  const std::atomic<uint8_t>* slot = Slot(block);
  return slot && (slot->load(std::memory_order_relaxed) & kMarkBit);
}

void NodeAllocator::SetMark(uint64_t block) {
  if (std::atomic<uint8_t>* slot = Slot(block)) slot->fetch_or(kMarkBit, std::memory_order_relaxed);
}

}  // namespace daxfs::space
