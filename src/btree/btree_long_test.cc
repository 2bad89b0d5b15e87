// The long randomized model run of the B+tree (>= 10 million operations in all; labelled
// "long", not run in CI): the driver of btree_model_test.cc with larger trees and many more
// operations. Prints its seed; DAXFS_SEED=<seed> replays.
#include <gtest/gtest.h>

#include <random>

#include "btree/testing/model_driver.h"

namespace daxfs::btree::testing {
namespace {

// name, key words, value size, interval, key range, other words' range, ops, commit 1 in,
// phase length. 11.5 million operations in all: about 2 minutes of CPU in a Release build.
const ModelConfig kConfigs[] = {
    {"k1_v8", 1, 8, false, 2000000, 1, 2000000, 2000, 500000},
    {"k2_v24", 2, 24, false, 200000, 16, 1500000, 1000, 300000},
    {"k3_v0", 3, 0, false, 50000, 8, 1500000, 1000, 300000},
    {"k1_v200", 1, 200, false, 200000, 1, 1000000, 1000, 200000},
    {"k2_v1024", 2, 1024, false, 100000, 4, 500000, 1000, 100000},
    {"interval_k1_v8", 1, 8, true, 10000000, 1, 1500000, 1000, 300000},
    {"interval_k2_v24", 2, 24, true, 1000000, 8, 1500000, 1000, 300000},
    {"interval_k3_v200", 3, 200, true, 1000000, 4, 1000000, 1000, 200000},
    {"interval_k4_v1024", 4, 1024, true, 100000, 2, 1000000, 1500, 200000},
};

class BTreeLongTest : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(BTreeLongTest, MatchesStdMap) { RunModel(GetParam(), std::random_device{}()); }

INSTANTIATE_TEST_SUITE_P(Configs, BTreeLongTest, ::testing::ValuesIn(kConfigs), PrintConfig);

}  // namespace
}  // namespace daxfs::btree::testing
