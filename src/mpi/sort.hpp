// A sort of items spread over the ranks, so that no rank has to hold them all to order them.
#pragma once
#include <mpi.h>

#include <algorithm>
#include <cstddef>
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

// Sorts the items of all ranks by `less`: on return each rank holds a sorted run, and the runs in
// rank order are the whole sorted sequence. Sample sort with regular sampling (Shi & Schaeffer's
// PSRS): every rank sorts its own, P - 1 evenly spaced samples per rank choose P - 1 splitters on
// rank 0, and one all-to-all sends each item to the rank of its range; a rank receives at most
// about twice the mean count when every rank starts with the same count. Collective.
template <class T, class Less = std::less<T>>
void sort_distributed(std::vector<T>& items, MPI_Comm comm, Less less = {}) {
  static_assert(std::is_trivially_copyable_v<T>, "sort_distributed moves items as bytes");
  std::sort(items.begin(), items.end(), less);
  const int P = size(comm);
  if (P == 1) return;
  const BytesType<T> type;
  std::vector<T> samples;
  for (int k = 1; k < P && !items.empty(); ++k) samples.push_back(items[items.size() * static_cast<std::size_t>(k) / static_cast<std::size_t>(P)]);
  std::vector<T> all_samples = gather_blocks(comm, samples.data(), samples.size(), type.get());
  std::vector<T> splitters(static_cast<std::size_t>(P - 1));
  long long any = 0;
  if (rank(comm) == 0 && !all_samples.empty()) {
    std::sort(all_samples.begin(), all_samples.end(), less);
    for (int k = 1; k < P; ++k)
      splitters[static_cast<std::size_t>(k - 1)] = all_samples[all_samples.size() * static_cast<std::size_t>(k) / static_cast<std::size_t>(P)];
    any = 1;
  }
  check(MPI_Bcast(&any, 1, MPI_LONG_LONG, 0, comm), "MPI_Bcast");
  if (!any) return;  // no items anywhere
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
  std::size_t total = 0;
  for (const auto& block : incoming) total += block.size();
  items.reserve(total);
  for (auto& block : incoming) {
    const auto middle = static_cast<std::ptrdiff_t>(items.size());
    items.insert(items.end(), block.begin(), block.end());
    std::vector<T>().swap(block);
    std::inplace_merge(items.begin(), items.begin() + middle, items.end(), less);  // each block is sorted
  }
}

}  // namespace lmtopo::mpi
