// Randomized model test of the B+tree, short run for CI (testing/model_driver.h; the long run is
// btree_long_test.cc): checked against std::map and brute-force overlap search, validated and
// leak-checked after every commit. Prints its seed; DAXFS_SEED=<seed> replays.
#include <gtest/gtest.h>

#include <random>

#include "btree/testing/model_driver.h"

namespace daxfs::btree::testing {
namespace {

// name, key words, value size, interval, key range, other words' range, ops, commit 1 in,
// phase length.
const ModelConfig kConfigs[] = {
    {"k1_v8", 1, 8, false, 50000, 1, 60000, 300, 20000},
    {"k2_v24", 2, 24, false, 8000, 8, 60000, 300, 20000},
    {"k3_v0", 3, 0, false, 2000, 6, 60000, 300, 20000},
    {"k1_v200", 1, 200, false, 10000, 1, 70000, 200, 32000},
    {"k2_v1024", 2, 1024, false, 5000, 4, 30000, 200, 10000},
    {"interval_k1_v8", 1, 8, true, 200000, 1, 50000, 300, 17000},
    {"interval_k2_v24", 2, 24, true, 40000, 4, 50000, 300, 17000},
    {"interval_k3_v200", 3, 200, true, 40000, 3, 40000, 200, 15000},
    {"interval_k4_v1024", 4, 1024, true, 40000, 2, 25000, 200, 8000},
};

class BTreeModelTest : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(BTreeModelTest, MatchesStdMap) { RunModel(GetParam(), std::random_device{}()); }

INSTANTIATE_TEST_SUITE_P(Configs, BTreeModelTest, ::testing::ValuesIn(kConfigs), PrintConfig);

}  // namespace
}  // namespace daxfs::btree::testing
