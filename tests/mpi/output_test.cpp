// The distributed output path of `lmtopo barcode`: the sample sort and the file every rank writes
// its piece of, against std::sort and a plain concatenation of the gathered pieces.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/concatenated_file.hpp"
#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"
#include "mpi/sort.hpp"
#include "topology/zigzag.hpp"

using namespace lmtopo;

namespace {

// A directory every rank names alike (rank 0's pid), removed by rank 0 at scope exit.
class SharedDir {
 public:
  SharedDir() {
    long long pid = getpid();
    MPI_Bcast(&pid, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    path_ = std::filesystem::temp_directory_path() / ("lmtopo_output_test_" + std::to_string(pid));
    if (mpi::rank() == 0) std::filesystem::create_directories(path_);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  ~SharedDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpi::rank() == 0) std::filesystem::remove_all(path_);
  }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace

// Every rank's run is sorted, the runs in rank order are std::sort of all items, and nothing is
// lost or made up: with empty ranks, duplicates and very uneven counts.
TEST(SortDistributed, RunsInRankOrderAreTheSortedWhole) {
  std::mt19937 rng(717 + static_cast<unsigned>(mpi::rank()));
  for (int trial = 0; trial < 12; ++trial) {
    const int most = trial % 4 == 0 ? 0 : 1 + trial * trial * 20;
    const int count = mpi::rank() == trial % mpi::size() ? most * 3 : std::uniform_int_distribution<int>(0, most)(rng);
    std::vector<topology::ZigzagBar> items;
    for (int k = 0; k < count; ++k)
      items.push_back({std::uniform_int_distribution<int>(0, 2)(rng), std::uniform_int_distribution<long long>(0, 50)(rng),
                       std::uniform_int_distribution<long long>(0, 1LL << 40)(rng)});
    const mpi::BytesType<topology::ZigzagBar> type;
    std::vector<topology::ZigzagBar> want = mpi::gather_blocks(MPI_COMM_WORLD, items.data(), items.size(), type.get());
    std::sort(want.begin(), want.end());
    mpi::sort_distributed(items, MPI_COMM_WORLD);
    EXPECT_TRUE(std::is_sorted(items.begin(), items.end())) << "trial " << trial;
    const auto got = mpi::gather_blocks(MPI_COMM_WORLD, items.data(), items.size(), type.get());
    if (mpi::rank() == 0) {
      EXPECT_EQ(got, want) << "trial " << trial;
    }
  }
}

// Each rank ends with about its share of the items (the mean, all items / P), also when the ranks'
// items come from different ranges (rank 0's spread over all values, the others' crowded at the top)
// and when rank 0 holds five times as many: within 1/8 of the mean (sort_sample_count's bound is about
// 1/16). PSRS's P - 1 samples per rank gave rank 0 72 % of all items at 2 ranks here (29,018 of 40,000).
TEST(SortDistributed, SharesAreCloseToTheMean) {
  std::mt19937 rng(919 + static_cast<unsigned>(mpi::rank()));
  for (int trial = 0; trial < 2; ++trial) {
    const int count = mpi::rank() == 0 && trial == 1 ? 100000 : 20000;
    std::uniform_int_distribution<long long> value(0, 1000000000);
    std::vector<long long> items;
    for (int k = 0; k < count; ++k) items.push_back(mpi::rank() == 0 ? value(rng) : 900000000 + value(rng) / 10);
    long long total = count;
    MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    mpi::sort_distributed(items, MPI_COMM_WORLD);
    const double mean = static_cast<double>(total) / mpi::size();
    EXPECT_LE(std::abs(static_cast<double>(items.size()) - mean), mean / 8) << "trial " << trial << ", rank " << mpi::rank();
  }
}

// The file holds the ranks' pieces in rank order (empty pieces included), and no temporary is left.
TEST(ConcatenatedFile, PiecesInRankOrder) {
  const SharedDir dir;
  std::mt19937 rng(818 + static_cast<unsigned>(mpi::rank()));
  for (int trial = 0; trial < 4; ++trial) {
    std::string mine;
    const int length = trial == 0 ? 0 : std::uniform_int_distribution<int>(0, 3000 * trial)(rng);
    for (int k = 0; k < length; ++k) mine += static_cast<char>('a' + (k + mpi::rank()) % 26);
    const auto path = (dir / ("sub" + std::to_string(trial)) / "bars.txt").string();  // the parent is made
    io::write_concatenated_atomically(path, mine, MPI_COMM_WORLD);
    const auto all = mpi::gather_blocks(MPI_COMM_WORLD, mine.data(), mine.size(), MPI_CHAR);
    if (mpi::rank() != 0) continue;
    std::ifstream in(path, std::ios::binary);
    const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(written, std::string(all.begin(), all.end())) << "trial " << trial;
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
      EXPECT_EQ(entry.path().filename(), "bars.txt") << "a temporary was left";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // A second write replaces the first whole (a shorter file leaves nothing of the longer one).
  const auto path = (dir / "again.txt").string();
  io::write_concatenated_atomically(path, std::string(5000, 'x'), MPI_COMM_WORLD);
  io::write_concatenated_atomically(path, mpi::rank() == 0 ? "short\n" : "", MPI_COMM_WORLD);
  if (mpi::rank() == 0) {
    EXPECT_EQ(std::filesystem::file_size(path), 6u);
  }
}

// An output that cannot be made fails on every rank alike (the CLI's exit 1, not a hang).
TEST(ConcatenatedFile, UnwritablePathFailsOnEveryRank) {
  const SharedDir dir;
  const auto blocker = dir / "a_file";
  if (mpi::rank() == 0) std::ofstream(blocker) << "x";
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_THROW(io::write_concatenated_atomically((blocker / "bars.txt").string(), "piece", MPI_COMM_WORLD), RuntimeFailure);
}
