// Collective writes of an activation-shaped tensor [points, prompts, hidden] by however many ranks
// run the test, each writing an uneven share of the prompts (some ranks none), with and without
// deflate; rank 0 reads the file back serially and compares bit for bit with the values computed
// independently of the rank count, so the data are identical at 1, 2, 3 and 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <fstream>
#include <filesystem>

#include "core/error.hpp"
#include "io/h5_layout.hpp"
#include "io/h5store.hpp"

using namespace lmtopo;
namespace fs = std::filesystem;

namespace {

int rank_of() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int size_of() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

float value_at(std::uint64_t p, std::uint64_t q, std::uint64_t h) {
  // Arbitrary bit patterns, including negative zero-ish and large magnitudes.
  const std::uint64_t x = (p * 1000003u + q * 7919u + h * 31u) % 1000003u;
  return static_cast<float>(x) * 1.0e-3f - 500.0f + static_cast<float>(h) * 1e-7f;
}

// The prompts rank r writes: an uneven split in which the last rank may get nothing.
std::pair<std::uint64_t, std::uint64_t> share(std::uint64_t n, int rank, int size) {
  if (size == 1) return {0, n};
  const std::uint64_t first = n * 2 / 3;  // rank 0 takes two thirds, the rest split the remainder
  if (rank == 0) return {0, first};
  const std::uint64_t rest = n - first, per = (rest + static_cast<std::uint64_t>(size) - 2) / static_cast<std::uint64_t>(size - 1);
  const std::uint64_t lo = std::min(n, first + per * static_cast<std::uint64_t>(rank - 1));
  return {lo, std::min(n, lo + per) - lo};
}

std::string test_dir() {
  std::string dir = (fs::temp_directory_path() / ("lmtopo_h5test_" + std::to_string(size_of()))).string();
  if (rank_of() == 0) fs::create_directories(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  return dir;
}

}  // namespace

class CollectiveWrite : public ::testing::TestWithParam<bool> {};

TEST_P(CollectiveWrite, ActivationTensorRoundTripsBitForBit) {
  const bool deflate = GetParam();
  const std::uint64_t points = 5, prompts = 37, hidden = 48;
  const std::string path = test_dir() + (deflate ? "/act_deflate.h5" : "/act_plain.h5");
  const auto [lo, count] = share(prompts, rank_of(), size_of());
  std::vector<float> slab(points * count * hidden);
  for (std::uint64_t p = 0; p < points; ++p)
    for (std::uint64_t q = 0; q < count; ++q)
      for (std::uint64_t h = 0; h < hidden; ++h) slab[(p * count + q) * hidden + h] = value_at(p, lo + q, h);
  std::vector<std::string> ids, langs;
  std::vector<long long> groups, ntok;
  for (std::uint64_t q = lo; q < lo + count; ++q) {
    ids.push_back("prompt-" + std::to_string(q));
    langs.push_back(q % 2 ? "de" : "en");
    groups.push_back(static_cast<long long>(q / 2));
    ntok.push_back(static_cast<long long>(q % 7 + 1));
  }
  {
    io::H5Output out(path, MPI_COMM_WORLD, "activations/1", nlohmann::json{{"test", true}});
    out.create_numeric("/activations/block_output", io::DType::f32, {points, prompts, hidden}, deflate);
    out.set_attribute("/activations/block_output", "points", std::vector<std::string>{"a", "b", "c", "d", "e"});
    out.set_attribute("/activations/block_output", "pooling", "last");
    out.set_attribute("/activations/block_output", "hook", "block_output");
    out.write_slab("/activations/block_output", 1, lo, count, slab.data());
    out.create_strings("/prompts/id", prompts, 16, deflate);
    out.create_strings("/prompts/lang", prompts, 2, deflate);
    out.create_numeric("/prompts/group", io::DType::i64, {prompts}, deflate);
    out.create_numeric("/prompts/n_tokens", io::DType::i64, {prompts}, deflate);
    out.write_string_rows("/prompts/id", lo, ids);
    out.write_string_rows("/prompts/lang", lo, langs);
    out.write_rows("/prompts/group", lo, count, groups.data());
    out.write_rows("/prompts/n_tokens", lo, count, ntok.data());
    const std::string sha = out.commit();
    EXPECT_EQ(sha.size(), 64u);
  }
  if (rank_of() == 0) {
    EXPECT_FALSE(fs::exists(path + ".partial"));
    io::H5Input in(path);
    EXPECT_EQ(in.string_attribute("/", "lmtopo_schema"), "activations/1");
    const auto data = in.read_f32("/activations/block_output");
    ASSERT_EQ(data.size(), points * prompts * hidden);
    std::size_t mismatches = 0;
    for (std::uint64_t p = 0; p < points; ++p)
      for (std::uint64_t q = 0; q < prompts; ++q)
        for (std::uint64_t h = 0; h < hidden; ++h) {
          const float want = value_at(p, q, h), got = data[(p * prompts + q) * hidden + h];
          mismatches += std::memcmp(&want, &got, sizeof(float)) != 0;
        }
    EXPECT_EQ(mismatches, 0u);
    const auto ids_back = in.read_strings("/prompts/id");
    ASSERT_EQ(ids_back.size(), prompts);
    EXPECT_EQ(ids_back[36], "prompt-36");
    EXPECT_EQ(in.read_i64("/prompts/group")[35], 17);
    EXPECT_FALSE(io::check_layout(path).has_value());
    const auto created = nlohmann::json::parse(in.string_attribute("/", "created_by"));
    EXPECT_EQ(created["ranks"], size_of());
  }
}

INSTANTIATE_TEST_SUITE_P(Deflate, CollectiveWrite, ::testing::Values(false, true));

TEST(CollectiveWrite, AnAbandonedWriteLeavesNoFile) {
  const std::string path = test_dir() + "/abandoned.h5";
  if (rank_of() == 0) fs::remove(path);
  MPI_Barrier(MPI_COMM_WORLD);
  {
    io::H5Output out(path, MPI_COMM_WORLD, "activations/1", nlohmann::json::object());
    out.create_numeric("/x", io::DType::f64, {4}, false);
    // no commit: as if the stage failed after starting to write
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_of() == 0) {
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".partial"));
  }
}

TEST(H5Input, CorruptFilesAreInputErrors) {
  const std::string path = test_dir() + "/corrupt.h5";  // collective: before the rank check
  if (rank_of() != 0) return;
  {
    std::ofstream f(path);
    f << "this is not hdf5";
  }
  EXPECT_THROW(io::H5Input{path}, InputError);
  EXPECT_THROW(io::H5Input{path + ".missing"}, InputError);
}
