// A sort of items spread over the ranks, so that no rank has to hold them all to order them.
#pragma once
#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"

namespace lmtopo::mpi {

// An MPI type of sizeof(T) bytes (T trivially copyable), freed on scope exit.
template <class T>
class BytesType {
 public:
  BytesType() {
    check(MPI_Type_contiguous(static_cast<int>(sizeof(T)), MPI_BYTE, &type_), "MPI_Type_contiguous");
    check(MPI_Type_commit(&type_), "MPI_Type_commit");
  }
  ~BytesType() { MPI_Type_free(&type_); }
  BytesType(const BytesType&) = delete;
  BytesType& operator=(const BytesType&) = delete;
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

// Regular samples for sort_distributed, over all ranks. With S samples spaced evenly through each
// rank's sorted items (a rank's count of them in proportion to its items), each sample stands for
// about n / S items (n all items), so a splitter's place is off by at most about P n / S and a rank's
// share is within about 2 P^2 / S of the mean n / P. PSRS's P - 1 per rank allows about twice the
// mean, and reached it: 10^7 operations' 5 M bars at 2 ranks went 62 / 28 MB of text (the formatting
// and the write wait for the larger). 32 P^2 samples (at most 2^22, gathered on rank 0) keep every
// share within about 1/16 of the mean up to 362 ranks.
inline std::size_t sort_sample_count(int ranks) {
  const auto P = static_cast<std::size_t>(ranks);
  return std::max(P * (P - 1), std::min(32 * P * P, std::size_t{1} << 22));
}

// Sorts the items of all ranks by `less`: on return each rank holds a sorted run, and the runs in
// rank order are the whole sorted sequence. Sample sort with regular sampling (Shi & Schaeffer's
// PSRS, oversampled): every rank sorts its own, sort_sample_count evenly spaced samples choose P - 1
// splitters on rank 0, and one all-to-all sends each item to the rank of its range. Collective.
template <class T, class Less = std::less<T>>
void sort_distributed(std::vector<T>& items, MPI_Comm comm, Less less = {}) {
  static_assert(std::is_trivially_copyable_v<T>, "sort_distributed moves items as bytes");
  std::sort(items.begin(), items.end(), less);
  const int P = size(comm);
  if (P == 1) return;
  std::uint64_t mine = items.size(), total = 0;
  check(MPI_Allreduce(&mine, &total, 1, MPI_UINT64_T, MPI_SUM, comm), "MPI_Allreduce");
  if (total == 0) return;
  const BytesType<T> type;
  // In proportion to the rank's items, at least one if it has any.
  const std::uint64_t per_rank = std::min(mine, (mine * sort_sample_count(P) + total - 1) / total);
  std::vector<T> samples;
  for (std::uint64_t k = 0; k < per_rank; ++k) samples.push_back(items[(2 * k + 1) * mine / (2 * per_rank)]);
  std::vector<T> all_samples = gather_blocks(comm, samples.data(), samples.size(), type.get());
  std::vector<T> splitters(static_cast<std::size_t>(P - 1));
  if (rank(comm) == 0) {
    std::sort(all_samples.begin(), all_samples.end(), less);
    for (int k = 1; k < P; ++k)
      splitters[static_cast<std::size_t>(k - 1)] = all_samples[all_samples.size() * static_cast<std::size_t>(k) / static_cast<std::size_t>(P)];
  }
  check(MPI_Bcast(splitters.data(), P - 1, type.get(), 0, comm), "MPI_Bcast");
  // Rank k gets the items after splitter k - 1 up to splitter k (equal ones included).
  std::vector<std::vector<T>> outgoing(static_cast<std::size_t>(P));
  auto from = items.begin();
  for (int k = 0; k < P; ++k) {
    const auto to = k + 1 < P ? std::upper_bound(from, items.end(), splitters[static_cast<std::size_t>(k)], less) : items.end();
    outgoing[static_cast<std::size_t>(k)].assign(from, to);
    from = to;
  }
  std::vector<T>().swap(items);
  std::vector<std::vector<T>> incoming = exchange_blocks(comm, std::move(outgoing), type.get());
  std::size_t received = 0;
  for (const auto& block : incoming) received += block.size();
  items.reserve(received);
  for (auto& block : incoming) {
    const auto middle = static_cast<std::ptrdiff_t>(items.size());
    items.insert(items.end(), block.begin(), block.end());
    std::vector<T>().swap(block);
    std::inplace_merge(items.begin(), items.begin() + middle, items.end(), less);  // each block is sorted
  }
}

}  // namespace lmtopo::mpi
