// Randomized model driver for the B+tree: random operations on a BTree over a MemNodeStore and
// on a std::map (plus brute-force interval search), with random commits, aborts and ENOSPC, and
// Validate plus a leak check after each commit. Shared by btree_model_test and btree_long_test.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/random.h"
#include "btree/btree.h"
#include "btree/testing/mem_node_store.h"

namespace daxfs::btree::testing {

// Interval records of model trees: the value's first 8 bytes are the length (>= 1).
inline uint64_t ModelIntervalEnd(const Key& key, const uint8_t* value) {
  return key.w[0] + base::DecodeU64(value);
}

struct ModelConfig {
  const char* name;
  uint16_t key_words;
  uint16_t value_size;  // >= 8 for interval trees
  bool interval;
  uint64_t key_range;    // the first key word is drawn from [0, key_range)
  uint64_t other_range;  // further key words from [0, other_range)
  uint64_t ops;
  int commit_one_in;  // a commit after each operation with probability 1/commit_one_in
  int phase_ops;      // alternate insert-heavy and delete-heavy phases of this many operations
};

inline std::string PrintConfig(const ::testing::TestParamInfo<ModelConfig>& info) {
  return info.param.name;
}
inline void PrintTo(const ModelConfig& config, std::ostream* os) { *os << config.name; }

class ModelDriver {
 public:
  ModelDriver(const ModelConfig& config, uint64_t seed) : config_(config), seed_(seed), rnd_(seed) {
    spec_.id = format::TreeId::kScratch;
    spec_.name = config.name;
    spec_.key_words = config.key_words;
    spec_.value_size = config.value_size;
    if (config.interval) spec_.interval_end = ModelIntervalEnd;
    tree_ = std::make_unique<BTree>(spec_, &store_, 0);
  }

  void Run() {
    for (op_ = 0; op_ < config_.ops; ++op_) {
      Step();
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "config " << config_.name << ": replay with DAXFS_SEED=" << seed_
                      << " (failed at operation " << op_ << ")";
        return;
      }
    }
    Commit();
  }

  uint64_t commits() const { return commits_; }
  size_t max_records() const { return max_records_; }
  uint32_t max_height() const { return max_height_; }

 private:
  using ModelKey = std::array<uint64_t, kMaxKeyWords>;
  using Model = std::map<ModelKey, std::vector<uint8_t>>;

  static ModelKey ToModel(const Key& k) { return {k.w[0], k.w[1], k.w[2], k.w[3]}; }
  static Key ToKey(const ModelKey& m) {
    Key k;
    for (int i = 0; i < kMaxKeyWords; ++i) k.w[i] = m[i];
    return k;
  }

  void Step() {
    if (rnd_.OneIn(config_.commit_one_in)) return Commit();
    if (rnd_.OneIn(config_.commit_one_in * 20)) return Abort();
    if (rnd_.OneIn(60)) return NoSpaceStep();
    // Insert-heavy and delete-heavy phases grow the tree and shrink it back (merges, collapse).
    // Weights in percent: insert, put, update, delete, get, scan, seek, overlaps.
    static constexpr int kGrow[] = {35, 10, 7, 10, 12, 10, 6, 10};
    static constexpr int kShrink[] = {6, 4, 7, 50, 12, 8, 5, 8};
    const int* weights = (op_ / config_.phase_ops) % 2 == 0 ? kGrow : kShrink;
    int r = static_cast<int>(rnd_.Uniform(100));
    int op = 0;
    while (op < 7 && r >= weights[op]) r -= weights[op++];
    switch (op) {
      case 0:
        return DoInsert();
      case 1:
        return DoPut();
      case 2:
        return DoUpdate();
      case 3:
        return DoDelete();
      case 4:
        return DoGet();
      case 5:
        return DoScan();
      case 6:
        return DoSeek();
      default:
        return DoOverlaps();
    }
  }

  // Keys: half the time one present in the model (the first at or after a random key).
  Key RandomKey() {
    Key k;
    k.w[0] = rnd_.Uniform(config_.key_range);
    for (int i = 1; i < config_.key_words; ++i) k.w[i] = rnd_.Uniform(config_.other_range);
    if (model_.empty() || rnd_.OneIn(2)) return k;
    auto it = model_.lower_bound(ToModel(k));
    if (it == model_.end()) it = model_.begin();
    return ToKey(it->first);
  }
  // Also sets words beyond key_words, which the tree must ignore.
  Key WithNoise(Key k) {
    if (rnd_.OneIn(4)) {
      for (int i = config_.key_words; i < kMaxKeyWords; ++i) k.w[i] = rnd_.Next();
    }
    return k;
  }
  static ModelKey Trim(const Key& k, int words) {
    ModelKey m = {};
    for (int i = 0; i < words; ++i) m[i] = k.w[i];
    return m;
  }
  ModelKey Trim(const Key& k) const { return Trim(k, config_.key_words); }

  std::vector<uint8_t> RandomValue() {
    std::vector<uint8_t> v(config_.value_size);
    for (auto& b : v) b = static_cast<uint8_t>(rnd_.Next());
    if (config_.interval) {
      uint64_t length = rnd_.OneIn(50) ? 1 + rnd_.Uniform(MaxLength())
                                       : 1 + rnd_.Uniform(config_.key_range / 500 + 2);
      base::EncodeU64(v.data(), length);
    }
    return v;
  }

  // No record is longer: brute-force overlap search can start this far before the query.
  uint64_t MaxLength() const { return config_.key_range / 128 + 1; }

  // Sets (or with null, erases) a model record, remembering the old state for Abort().
  void Set(const ModelKey& key, const std::vector<uint8_t>* value) {
    auto it = model_.find(key);
    if (it == model_.end()) {
      undo_.emplace_back(key, std::nullopt);
    } else {
      undo_.emplace_back(key, std::move(it->second));
    }
    if (value) {
      model_[key] = *value;
    } else {
      model_.erase(key);
    }
  }

  void DoInsert() {
    Key k = WithNoise(RandomKey());
    std::vector<uint8_t> v = RandomValue();
    Status s = tree_->Insert(k, v);
    bool present = model_.count(Trim(k)) > 0;
    if (present) {
      ASSERT_EQ(s.code(), EEXIST) << s.ToString();
    } else {
      ASSERT_TRUE(s.ok()) << s.ToString();
      Set(Trim(k), &v);
      max_records_ = std::max(max_records_, model_.size());
    }
  }

  void DoPut() {
    Key k = WithNoise(RandomKey());
    std::vector<uint8_t> v = RandomValue();
    Result<bool> added = tree_->Put(k, v);
    ASSERT_TRUE(added.ok()) << added.status().ToString();
    ASSERT_EQ(*added, model_.count(Trim(k)) == 0);
    Set(Trim(k), &v);
  }

  void DoUpdate() {
    Key k = WithNoise(RandomKey());
    std::vector<uint8_t> v = RandomValue();
    Status s = tree_->Update(k, v);
    auto it = model_.find(Trim(k));
    if (it == model_.end()) {
      ASSERT_EQ(s.code(), ENOENT) << s.ToString();
    } else {
      ASSERT_TRUE(s.ok()) << s.ToString();
      Set(it->first, &v);
    }
  }

  void DoDelete() {
    Key k = WithNoise(RandomKey());
    Status s = tree_->Delete(k);
    if (model_.count(Trim(k)) == 0) {
      ASSERT_EQ(s.code(), ENOENT) << s.ToString();
    } else {
      ASSERT_TRUE(s.ok()) << s.ToString();
      Set(Trim(k), nullptr);
    }
  }

  void DoGet() {
    Key k = WithNoise(RandomKey());
    std::vector<uint8_t> v(config_.value_size + 1, 0xEE);
    Result<bool> found = tree_->Get(k, v.data());
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    auto it = model_.find(Trim(k));
    ASSERT_EQ(*found, it != model_.end());
    ASSERT_EQ(v.back(), 0xEE) << "Get wrote past the value";
    if (*found) {
      v.pop_back();
      ASSERT_EQ(v, it->second);
    }
  }

  void ExpectAt(const Cursor& c, Model::const_iterator it) {
    ASSERT_TRUE(c.Valid());
    ASSERT_TRUE(Trim(c.key(), kMaxKeyWords) == it->first) << "cursor at the wrong key";
    ASSERT_TRUE(
        std::equal(c.value().begin(), c.value().end(), it->second.begin(), it->second.end()));
  }

  // A seek of each kind, then a walk of random length in a random direction.
  void DoScan() {
    Cursor c(tree_.get());
    Model::const_iterator it;
    Key k = RandomKey();
    switch (rnd_.Uniform(4)) {
      case 0:
        ASSERT_TRUE(c.SeekFirst().ok());
        it = model_.begin();
        break;
      case 1:
        ASSERT_TRUE(c.SeekLast().ok());
        it = model_.empty() ? model_.end() : std::prev(model_.end());
        break;
      case 2:
        ASSERT_TRUE(c.SeekGE(WithNoise(k)).ok());
        it = model_.lower_bound(Trim(k));
        break;
      default:
        ASSERT_TRUE(c.SeekLE(WithNoise(k)).ok());
        it = model_.upper_bound(Trim(k));
        it = it == model_.begin() ? model_.end() : std::prev(it);
        break;
    }
    bool forward = rnd_.OneIn(2);
    uint64_t steps = rnd_.Uniform(rnd_.OneIn(10) ? 2000 : 100);
    for (uint64_t n = 0; n <= steps; ++n) {
      if (it == model_.end()) {
        ASSERT_FALSE(c.Valid());
        return;
      }
      ExpectAt(c, it);
      ASSERT_TRUE((forward ? c.Next() : c.Prev()).ok());
      if (forward) {
        ++it;
      } else {
        it = it == model_.begin() ? model_.end() : std::prev(it);
      }
    }
  }

  void DoSeek() {
    Cursor c(tree_.get());
    Key k = RandomKey();
    if (rnd_.OneIn(3)) k.w[config_.key_words - 1] += rnd_.OneIn(2) ? 1 : -1;  // near a key
    ASSERT_TRUE(c.SeekGE(k).ok());
    auto ge = model_.lower_bound(Trim(k));
    if (ge == model_.end()) {
      ASSERT_FALSE(c.Valid());
    } else {
      ExpectAt(c, ge);
    }
    ASSERT_TRUE(c.SeekLE(k).ok());
    auto le = model_.upper_bound(Trim(k));
    if (le == model_.begin()) {
      ASSERT_FALSE(c.Valid());
    } else {
      ExpectAt(c, std::prev(le));
    }
  }

  void DoOverlaps() {
    if (!config_.interval) {
      ASSERT_EQ(
          tree_->Overlaps(0, 1, [](const Key&, std::span<const uint8_t>) { return true; }).code(),
          EINVAL);
      return;
    }
    uint64_t start = rnd_.Uniform(config_.key_range);
    uint64_t end = start + 1 + rnd_.Uniform(rnd_.OneIn(5) ? config_.key_range / 10 + 1 : 50);
    size_t limit = rnd_.OneIn(4) ? rnd_.Uniform(5) + 1 : SIZE_MAX;
    std::vector<ModelKey> expected;
    ModelKey from = {start > MaxLength() ? start - MaxLength() : 0};
    for (auto it = model_.lower_bound(from); it != model_.end(); ++it) {
      const auto& [key, value] = *it;
      if (key[0] >= end) break;
      if (key[0] + base::DecodeU64(value.data()) > start) expected.push_back(key);
      if (expected.size() == limit) break;
    }
    std::vector<ModelKey> got;
    Status s = tree_->Overlaps(start, end, [&](const Key& k, std::span<const uint8_t> v) {
      got.push_back(Trim(k, kMaxKeyWords));
      EXPECT_EQ(v.size(), config_.value_size);
      return got.size() < limit;
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(got, expected) << "Overlaps(" << start << ", " << end << ")";
  }

  // The next change finds the store (nearly) full: it either succeeds or fails with ENOSPC and
  // changes nothing.
  void NoSpaceStep() {
    uint64_t root = tree_->root();
    int64_t delta = tree_->count_delta();
    size_t fresh = store_.fresh_count();
    store_.FailAllocationsAfter(static_cast<int64_t>(rnd_.Uniform(4)));
    Key k = WithNoise(RandomKey());
    bool present = model_.count(Trim(k)) > 0;
    std::vector<uint8_t> v = RandomValue();
    bool remove = present && rnd_.OneIn(2);
    Status s = remove ? tree_->Delete(k) : tree_->Put(k, v).status();
    store_.FailAllocationsAfter(-1);
    if (s.code() == ENOSPC) {
      ASSERT_EQ(tree_->root(), root);
      ASSERT_EQ(tree_->count_delta(), delta);
      ASSERT_EQ(store_.fresh_count(), fresh) << "a failed change kept nodes";
      ASSERT_TRUE(store_.misuse().empty()) << store_.misuse();
      if (rnd_.OneIn(10)) CheckTree();
      return;
    }
    ASSERT_TRUE(s.ok()) << s.ToString();
    Set(Trim(k), remove ? nullptr : &v);
  }

  void Commit() {
    Status unchanged = store_.CheckCommittedUnchanged();
    ASSERT_TRUE(unchanged.ok()) << unchanged.ToString();
    store_.Commit();
    ++commits_;
    committed_root_ = tree_->root();
    undo_.clear();
    CheckTree();
    CheckNoLeak();
  }

  // Drops the changes since the last commit: the committed tree must be intact.
  void Abort() {
    store_.Abort();
    tree_ = std::make_unique<BTree>(spec_, &store_, committed_root_);
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      if (it->second) {
        model_[it->first] = *it->second;
      } else {
        model_.erase(it->first);
      }
    }
    undo_.clear();
    CheckTree();
    CheckNoLeak();
  }

  // Validate, the record count, and a full forward comparison with the model.
  void CheckTree() {
    ASSERT_TRUE(store_.misuse().empty()) << store_.misuse();
    TreeStats stats;
    Status s = tree_->Validate(&stats);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(stats.records, model_.size());
    max_height_ = std::max(max_height_, stats.height);
    Cursor c(tree_.get());
    ASSERT_TRUE(c.SeekFirst().ok());
    for (auto it = model_.begin(); it != model_.end(); ++it) {
      ExpectAt(c, it);
      ASSERT_TRUE(c.Next().ok());
    }
    ASSERT_FALSE(c.Valid());
  }

  // After a commit (or abort) the nodes in use are exactly those reachable from the root.
  void CheckNoLeak() {
    ASSERT_EQ(store_.fresh_count(), 0u);
    ASSERT_EQ(store_.released_count(), 0u);
    std::vector<uint64_t> reachable;
    ASSERT_TRUE(tree_
                    ->VisitNodes([&](uint64_t b, int) {
                      reachable.push_back(b);
                      return Status::Ok();
                    })
                    .ok());
    std::sort(reachable.begin(), reachable.end());
    ASSERT_EQ(reachable, store_.CommittedNodes()) << "leaked or shared nodes";
  }

  ModelConfig config_;
  uint64_t seed_;
  base::Random rnd_;
  TreeSpec spec_;
  MemNodeStore store_;
  std::unique_ptr<BTree> tree_;
  Model model_;
  // The model's changes since the last commit, each with the value it replaced (none: absent).
  std::vector<std::pair<ModelKey, std::optional<std::vector<uint8_t>>>> undo_;
  uint64_t committed_root_ = 0;
  uint64_t op_ = 0;
  uint64_t commits_ = 0;
  size_t max_records_ = 0;
  uint32_t max_height_ = 0;
};

// Runs one configuration with the seed from $DAXFS_SEED or a fresh random one, printed (and
// recorded as a test property) so that a failure can be replayed.
inline void RunModel(const ModelConfig& config, uint64_t default_seed) {
  uint64_t seed = base::SeedFromEnv(default_seed);
  std::printf("[ model    ] %s: DAXFS_SEED=%llu\n", config.name, (unsigned long long)seed);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  ModelDriver driver(config, seed);
  driver.Run();
  std::printf("[ model    ] %s: %llu ops, %llu commits, up to %zu records, height up to %u\n",
              config.name, (unsigned long long)config.ops, (unsigned long long)driver.commits(),
              driver.max_records(), driver.max_height());
}

}  // namespace daxfs::btree::testing
