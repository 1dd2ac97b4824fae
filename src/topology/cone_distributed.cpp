// The distributed cone build in five exchanges (all O(total / P) per rank):
//  1. events: each operation goes to the rank its simplex hashes to, which chains a simplex's
//     insertions and deletions (arriving in op order) into copies (insertion op, deletion op, cell,
//     deletion index) in a hash table and checks that they alternate;
//  2. deletions back to the builders (the rank whose operations hold the insertion): each builder
//     then numbers the virtual deletions of what is still present at the end (decreasing dimension,
//     later insertions first, as build_cone_matrix) from per-rank counts, and sends those numbers
//     back to the simplices' ranks;
//  3. facet lookups: the copy of each facet present when a simplex is inserted, with its cell and
//     deletion index (and the checks that it exists and outlives its coface);
//  4. columns: each builder writes the up and cone columns of its insertions and sends each to the
//     rank that reduces it (for the anti-transpose, each entry to its dual column's rank);
//  5. read-out records (operation, dimension, tag per column) to contiguous blocks, where the pairs
//     look them up after the reduction.
#include "topology/cone_distributed.hpp"

#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <numeric>
#include <queue>
#include <stdexcept>
#include <string>

#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"
#include "topology/pivot_ownership.hpp"
#include "topology/reduce_row_split.hpp"

namespace lmtopo::topology {
namespace {

// Bins of the histograms that place row bounds (top_pivot_bounds, halves_ownership: of initial
// pivots; dual_entry_bounds: of the anti-transpose's words).
constexpr std::size_t kPivotBins = 4096;

std::size_t g_facets_per_round = std::size_t{1} << 21;  // facets_per_round()
std::size_t g_events_per_round = std::size_t{1} << 21;  // events_per_round()
std::size_t g_pairs_per_round = std::size_t{1} << 19;   // pairs_per_round()

constexpr Index kNever = std::numeric_limits<Index>::max();  // deletion time of a copy never deleted

// Where each rank's operations, insertions (cells) and deletions start: prefix sums in rank order.
struct Layout {
  int rank = 0, size = 1;
  std::vector<Index> first_op, first_cell, first_deletion;  // P + 1 entries each
  Index m = 0, n = 0, real_deletions = 0;
  int max_size = 0;  // vertices of the largest simplex, all ranks

  int rank_of_cell(Index cell) const {
    return static_cast<int>(std::upper_bound(first_cell.begin(), first_cell.end(), cell) - first_cell.begin()) - 1;
  }
};

Layout layout_of(const ZigzagOpList& ops, MPI_Comm comm) {
  Layout lay;
  mpi::check(MPI_Comm_rank(comm, &lay.rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &lay.size), "MPI_Comm_size");
  long long mine[4] = {static_cast<long long>(ops.size()), 0, 0, static_cast<long long>(ops.max_simplex_size())};
  for (std::size_t i = 0; i < ops.size(); ++i) ++mine[ops.is_insert(i) ? 1 : 2];
  std::vector<long long> all(4 * static_cast<std::size_t>(lay.size));
  mpi::check(MPI_Allgather(mine, 4, MPI_LONG_LONG, all.data(), 4, MPI_LONG_LONG, comm), "MPI_Allgather");
  lay.first_op = {0};
  lay.first_cell = {1};
  lay.first_deletion = {0};
  for (int r = 0; r < lay.size; ++r) {
    const long long* a = &all[4 * static_cast<std::size_t>(r)];
    lay.first_op.push_back(lay.first_op.back() + a[0]);
    lay.first_cell.push_back(lay.first_cell.back() + a[1]);
    lay.first_deletion.push_back(lay.first_deletion.back() + a[2]);
    lay.max_size = std::max(lay.max_size, static_cast<int>(a[3]));
  }
  lay.m = lay.first_op.back();
  lay.n = lay.first_cell.back() - 1;
  lay.real_deletions = lay.first_deletion.back();
  return lay;
}

// The first error of the sequence seen by this rank, by operation and then by which check fails
// first in build_cone_matrix's order (so that the ranks agree on the error it would raise).
// kCoface (a deletion's check) and kFirstFacet + skip (an insertion's) share values: one operation is
// never both.
enum Check : int { kEmpty = 0, kNotDistinct = 1, kPresence = 2, kCoface = 3, kFirstFacet = 3 };

struct FirstError {
  Index op = kNever;
  int check = 0;
  std::string reason;
  template <class Describe>
  void offer(Index at, int which, Describe&& describe) {
    if (at < op || (at == op && which < check)) {
      op = at;
      check = which;
      reason = describe();
    }
  }
};

// Throws the sequence's first error on every rank, if any rank saw one. Collective.
void raise_first_error(const FirstError& mine, MPI_Comm comm) {
  long long op = mine.op == kNever ? std::numeric_limits<long long>::max() : mine.op;
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &op, 1, MPI_LONG_LONG, MPI_MIN, comm), "MPI_Allreduce");
  if (op == std::numeric_limits<long long>::max()) return;
  int check = mine.op == op ? mine.check : std::numeric_limits<int>::max();
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &check, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int teller = mine.op == op && mine.check == check ? rank : size;
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &teller, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  throw InvalidZigzag{op, mpi::broadcast_string(comm, mine.reason, teller)};
}

// A simplex's vertices packed two to a 64-bit word (pack_vertices): W words hold up to 2W vertices.
template <int W>
struct Key {
  std::array<std::uint64_t, W> w{};
  bool operator==(const Key& o) const {
    bool equal = true;
    for (int i = 0; i < W; ++i) equal &= w[i] == o.w[i];
    return equal;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Key& k) {
    return H::combine_contiguous(std::move(h), k.w.data(), W);
  }
  static Key of(SimplexView s, std::size_t skip = kNoSkip) {
    Key key;
    pack_vertices(s, skip, key.w.data());
    return key;
  }
  static Key read(const std::uint64_t* at) {
    Key key;
    std::copy(at, at + W, key.w.begin());
    return key;
  }
  void write(std::vector<std::uint64_t>& out) const { out.insert(out.end(), w.begin(), w.end()); }
  // A fixed mix of the words (splitmix64's finaliser).
  std::uint64_t mix() const {
    std::uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < W; ++i) {
      h ^= w[i];
      h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
      h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
      h ^= h >> 31;
    }
    return h;
  }
  // The rank that holds this simplex's copies.
  int owner(int ranks) const { return static_cast<int>(mix() % static_cast<std::uint64_t>(ranks)); }
  // Exchange 1's round of this simplex's events, from the mix's part above the owner's.
  int round(int ranks, int rounds) const {
    return static_cast<int>(mix() / static_cast<std::uint64_t>(ranks) % static_cast<std::uint64_t>(rounds));
  }
  std::string describe() const {
    std::vector<Vertex> v;
    for (int j = 0; j < 2 * W; ++j) {
      const auto x = static_cast<Vertex>(w[j / 2] >> (32 * (j % 2)));
      if (j > 0 && x == 0) break;
      v.push_back(x);
    }
    return describe_simplex({v.data(), v.data() + v.size()});
  }
};

OwnedColumns assemble_columns(std::vector<std::vector<Row>>&& received, const PivotOwnership& own, int rank, bool dualized);

bool valid_vertices(SimplexView s) {
  if (s.size() == 0) return false;
  for (std::size_t i = 1; i < s.size(); ++i)
    if (s[i - 1] >= s[i]) return false;
  return true;
}

constexpr std::size_t kNoCopy = std::numeric_limits<std::size_t>::max();

// One simplex's presence interval, held by the rank its key hashes to.
struct Copy {
  Index inserted = 0;      // op
  Index deleted = kNever;  // op, kNever if still present at the end
  Index cell = 0;
  Index deletion = -1;     // index in the deletion order (real, then virtual), -1 until known
  int deletion_tag = 0;    // the deleting op's tag
  std::size_t earlier = kNoCopy;  // the same simplex's previous copy
};

template <int W>
class ConeBuilder {
 public:
  ConeBuilder(const ZigzagOpList& ops, const std::vector<int>* tags, int end_tag, MPI_Comm comm)
      : ops_(ops), tags_(tags), end_tag_(end_tag), comm_(comm), lay_(layout_of(ops, comm)) {}

  DistributedCone build(const std::string& dualize, Index pivot_chunk, int top_ranks) {
    number_local_ops();
    check_column_limit();
    check_operation_limit();
    collect_copies();
    deletions_to_builders();
    number_virtual_deletions();
    look_up_facets();
    raise_first_error(error_, comm_);
    std::vector<Copy>().swap(copies_);
    absl::flat_hash_map<Key<W>, std::size_t>().swap(latest_copy_);
    return deal_columns(dualize, pivot_chunk, top_ranks);
  }

 private:
  using Words = std::vector<std::uint64_t>;
  using Outgoing = std::vector<Words>;

  Outgoing outgoing() const { return Outgoing(static_cast<std::size_t>(lay_.size)); }
  // Buffers for `words` in all whose destinations are hashes (even shares), reserved so that filling
  // them copies nothing (growing by doubling copied and faulted in the largest exchanges twice).
  Outgoing outgoing_evenly(std::size_t words) const {
    Outgoing out = outgoing();
    const std::size_t share = lay_.size == 1 ? words : words / out.size() + words / (8 * out.size()) + 64;
    for (Words& to : out) to.reserve(share);
    return out;
  }
  std::vector<Words> exchange(Outgoing&& out) { return mpi::exchange_blocks(comm_, std::move(out), MPI_UINT64_T); }
  Index global_op(std::size_t i) const { return lay_.first_op[static_cast<std::size_t>(lay_.rank)] + static_cast<Index>(i); }
  int tag_of(std::size_t i) const { return tags_ ? (*tags_)[i] : 0; }
  std::size_t local_cell(Index cell) const { return static_cast<std::size_t>(cell - lay_.first_cell[static_cast<std::size_t>(lay_.rank)]); }

  // Cells and deletion indices of this rank's operations; the vertex checks of build_cone_matrix.
  void number_local_ops() {
    Index cell = lay_.first_cell[static_cast<std::size_t>(lay_.rank)];
    Index deletion = lay_.first_deletion[static_cast<std::size_t>(lay_.rank)];
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const SimplexView s = ops_.simplex(i);
      if (s.size() == 0) error_.offer(global_op(i), kEmpty, [] { return std::string("empty simplex"); });
      else if (!valid_vertices(s))
        error_.offer(global_op(i), kNotDistinct, [&] { return "vertices of " + describe_simplex(s) + " are not distinct"; });
      if (ops_.is_insert(i)) {
        insertion_ops_.push_back(i);
        ++cell;
      } else {
        deletion_index_.push_back(deletion++);
      }
    }
    const std::size_t mine = insertion_ops_.size();
    deleted_.assign(mine, kNever);
    deletion_.assign(mine, -1);
    deletion_tag_.assign(mine, end_tag_);
  }

  // Exchange 1: every event to its simplex's rank, which chains each simplex's events into copies
  // and checks that insertions and deletions alternate. The blocks arrive by source rank and each in
  // its rank's op order, so reading them in turn visits the events in op order (no sort needed).
  // An event is its key and two words, (op, cell or deletion index) and (tag, insertion): both
  // numbers are below 2^32 (check_operation_limit). In rounds of about events_per_round() events per
  // rank, a simplex's round given by its hash (Key::round), so that each simplex's events meet in one
  // round, still in op order. All at once, the events were one rank's peak of the build (10^7
  // operations: 1,088 MiB; three words each before, 1,162).
  void collect_copies() {
    constexpr std::size_t kWords = W + 2;  // per event
    constexpr std::uint8_t kNoEvent = 255;  // an invalid simplex's round: it sends none
    const auto ranks = static_cast<std::size_t>(lay_.size);
    long long most = static_cast<long long>((ops_.size() + events_per_round() - 1) / events_per_round());
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce");
    const int rounds = static_cast<int>(std::clamp<long long>(most, 1, kNoEvent));
    // Each operation's round; the events of each round to each rank, and the insertions to each rank.
    std::vector<std::uint8_t> round_of(ops_.size(), kNoEvent);
    std::vector<std::size_t> events(static_cast<std::size_t>(rounds) * ranks, 0);
    std::vector<long long> insertions_to(ranks, 0);
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (!valid_vertices(ops_.simplex(i))) continue;
      const Key<W> key = Key<W>::of(ops_.simplex(i));
      const auto to = static_cast<std::size_t>(key.owner(lay_.size));
      round_of[i] = static_cast<std::uint8_t>(key.round(lay_.size, rounds));
      ++events[round_of[i] * ranks + to];
      if (ops_.is_insert(i)) ++insertions_to[to];
    }
    std::vector<long long> insertions_from(ranks, 0);  // at most one key each
    mpi::check(MPI_Alltoall(insertions_to.data(), 1, MPI_LONG_LONG, insertions_from.data(), 1, MPI_LONG_LONG, comm_), "MPI_Alltoall");
    const auto insertions_here = static_cast<std::size_t>(std::accumulate(insertions_from.begin(), insertions_from.end(), 0LL));
    latest_copy_.reserve(insertions_here);
    copies_.reserve(insertions_here);
    for (int round = 0; round < rounds; ++round) {  // every rank the same rounds
      Outgoing out = outgoing();
      for (std::size_t r = 0; r < ranks; ++r) out[r].reserve(events[static_cast<std::size_t>(round) * ranks + r] * kWords);
      std::size_t deletions = 0, insertions = 0;
      for (std::size_t i = 0; i < ops_.size(); ++i) {
        const bool insert = ops_.is_insert(i);
        const Index x = insert ? lay_.first_cell[static_cast<std::size_t>(lay_.rank)] + static_cast<Index>(insertions++)
                               : deletion_index_[deletions++];
        if (round_of[i] != round) continue;
        const Key<W> key = Key<W>::of(ops_.simplex(i));
        Words& to = out[static_cast<std::size_t>(key.owner(lay_.size))];
        key.write(to);
        to.insert(to.end(), {static_cast<std::uint64_t>(global_op(i)) | static_cast<std::uint64_t>(x) << 32,
                             (insert ? std::uint64_t{1} << 32 : 0) | static_cast<std::uint32_t>(tag_of(i))});
      }
      add_events(exchange(std::move(out)));
    }
    std::vector<Index>().swap(deletion_index_);
  }

  // The events of one round of exchange 1, block by block (each freed once read).
  void add_events(std::vector<Words>&& blocks) {
    constexpr std::size_t kWords = W + 2;
    constexpr std::size_t kAhead = 8;  // events whose hash-table groups are fetched ahead
    for (Words& block : blocks) {
      for (std::size_t at = 0; at < block.size(); at += kWords) {
        if (at + kAhead * kWords < block.size()) latest_copy_.prefetch(Key<W>::read(&block[at + kAhead * kWords]));
        const std::uint64_t numbers = block[at + W], kind = block[at + W + 1];
        add_event(Key<W>::read(&block[at]), static_cast<Index>(numbers & 0xFFFFFFFFu), static_cast<Index>(numbers >> 32),
                  static_cast<int>(static_cast<std::uint32_t>(kind)), (kind >> 32) != 0);
      }
      Words().swap(block);
    }
  }

  // One event of a simplex, after all its earlier ones: an insertion starts a copy, a deletion ends the present one.
  void add_event(const Key<W>& key, Index op, Index x, int tag, bool insert) {
    auto [it, first] = latest_copy_.try_emplace(key, copies_.size());
    const std::size_t earlier = first ? kNoCopy : it->second;
    const bool present = earlier != kNoCopy && copies_[earlier].deleted == kNever;
    if (insert) {
      if (present) error_.offer(op, kPresence, [&] { return "inserting " + key.describe() + " which is already present"; });
      it->second = copies_.size();
      copies_.push_back({op, kNever, x, -1, end_tag_, earlier});
    } else if (!present) {
      if (first) latest_copy_.erase(it);
      error_.offer(op, kPresence, [&] { return "deleting " + key.describe() + " which is not present"; });
    } else {
      copies_[earlier].deleted = op;
      copies_[earlier].deletion = x;
      copies_[earlier].deletion_tag = tag;
    }
  }

  // Exchange 2: each copy's deletion to the rank that built its cell.
  void deletions_to_builders() {
    Outgoing out = outgoing();
    std::vector<std::size_t> words(out.size(), 0);
    for (const auto& c : copies_) words[static_cast<std::size_t>(lay_.rank_of_cell(c.cell))] += 4;
    for (std::size_t r = 0; r < out.size(); ++r) out[r].reserve(words[r]);
    for (const auto& c : copies_) {
      Words& to = out[static_cast<std::size_t>(lay_.rank_of_cell(c.cell))];
      to.insert(to.end(), {static_cast<std::uint64_t>(c.cell), static_cast<std::uint64_t>(c.deleted), static_cast<std::uint64_t>(c.deletion),
                           static_cast<std::uint64_t>(static_cast<std::int64_t>(c.deletion_tag))});
    }
    for (const Words& block : exchange(std::move(out)))
      for (std::size_t at = 0; at < block.size(); at += 4) {
        const std::size_t i = local_cell(static_cast<Index>(block[at]));
        deleted_[i] = static_cast<Index>(block[at + 1]);
        deletion_[i] = static_cast<Index>(block[at + 2]);
        deletion_tag_[i] = static_cast<int>(static_cast<std::int64_t>(block[at + 3]));
      }
  }

  // The virtual deletions: what is present at the end, by decreasing dimension and then decreasing
  // cell, numbered after the real ones from every rank's counts per dimension; the numbers go back
  // to the copies (exchange 2b).
  void number_virtual_deletions() {
    const auto dims = static_cast<std::size_t>(std::max(lay_.max_size, 1));
    std::vector<long long> counts(dims, 0);
    for (std::size_t i = 0; i < insertion_ops_.size(); ++i) {
      const SimplexView s = ops_.simplex(insertion_ops_[i]);
      if (deletion_[i] < 0 && valid_vertices(s)) ++counts[s.size() - 1];
    }
    std::vector<long long> all(dims * static_cast<std::size_t>(lay_.size));
    mpi::check(MPI_Allgather(counts.data(), static_cast<int>(dims), MPI_LONG_LONG, all.data(), static_cast<int>(dims), MPI_LONG_LONG, comm_),
              "MPI_Allgather");
    std::vector<Index> next(dims);  // the next number to give in each dimension, going down the cells
    Index before = lay_.real_deletions;
    for (std::size_t q = dims; q-- > 0;) {
      Index later_ranks = 0, total = 0;
      for (int r = 0; r < lay_.size; ++r) {
        total += all[static_cast<std::size_t>(r) * dims + q];
        if (r > lay_.rank) later_ranks += all[static_cast<std::size_t>(r) * dims + q];
      }
      next[q] = before + later_ranks;
      before += total;
    }
    Outgoing out = outgoing();
    for (std::size_t i = insertion_ops_.size(); i-- > 0;) {
      if (deletion_[i] >= 0) continue;
      const SimplexView s = ops_.simplex(insertion_ops_[i]);
      if (!valid_vertices(s)) continue;
      deletion_[i] = next[s.size() - 1]++;
      const Index cell = lay_.first_cell[static_cast<std::size_t>(lay_.rank)] + static_cast<Index>(i);
      Words& to = out[static_cast<std::size_t>(Key<W>::of(s).owner(lay_.size))];
      to.insert(to.end(), {static_cast<std::uint64_t>(cell), static_cast<std::uint64_t>(deletion_[i])});
    }
    std::vector<std::pair<Index, std::size_t>> remaining;  // (cell, copy) of the copies never deleted
    for (std::size_t c = 0; c < copies_.size(); ++c)
      if (copies_[c].deletion < 0) remaining.push_back({copies_[c].cell, c});
    std::sort(remaining.begin(), remaining.end());
    for (const Words& block : exchange(std::move(out)))
      for (std::size_t at = 0; at < block.size(); at += 2) {
        const auto it = std::lower_bound(remaining.begin(), remaining.end(), std::pair<Index, std::size_t>{static_cast<Index>(block[at]), 0});
        copies_[it->second].deletion = static_cast<Index>(block[at + 1]);
      }
  }

  // Exchange 3: for every facet of every insertion, the copy present at the insertion; the answers
  // come back in the order asked, per rank, and are read by walking the facets in the same order.
  // In rounds of at most facets_per_round() per rank: the questions and answers of all facets at once
  // were the build's peak (10^7 operations, one rank: 1,312 MiB against 1,162 for exchange 1). Rounds
  // of 2^20 lowered two ranks' build peak (590 / 589 -> 574 / 556 MiB) but not their reduction's
  // (590 / 572), and raised one rank's at 1.74 M operations (244 -> 252): 2^21 it stays.
  void look_up_facets() {
    auto facets_of = [&](std::size_t i) {
      const SimplexView s = ops_.simplex(insertion_ops_[i]);
      return s.size() >= 2 && valid_vertices(s) ? s.size() : std::size_t{0};
    };
    for (std::size_t i = 0; i < insertion_ops_.size(); ++i) facet_count_ += facets_of(i);
    const std::size_t per_round = facets_per_round();
    long long rounds = static_cast<long long>((facet_count_ + per_round - 1) / per_round);
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, &rounds, 1, MPI_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce");
    std::size_t first = 0, counted = 0;  // the round's first insertion; facets before it
    for (long long round = 1; round <= rounds; ++round) {  // every rank the same rounds, some empty
      const std::size_t until = facet_count_ * static_cast<std::size_t>(round) / static_cast<std::size_t>(rounds);
      std::size_t last = first, facets = 0;
      for (; last < insertion_ops_.size() && counted + facets < until; ++last) facets += facets_of(last);
      look_up_facets_of(first, last, facets);
      first = last;
      counted += facets;
    }
  }

  // One round of look_up_facets: the facets of insertions [first, last) (`facets` of them).
  void look_up_facets_of(std::size_t first, std::size_t last, std::size_t facets) {
    Outgoing out = outgoing_evenly(facets * (W + 1));
    for_each_facet(first, last, [&](std::size_t i, std::size_t, const Key<W>& facet, int owner) {
      Words& to = out[static_cast<std::size_t>(owner)];
      facet.write(to);
      to.push_back(static_cast<std::uint64_t>(global_op(insertion_ops_[i])));
    });
    Outgoing answers = outgoing();
    std::vector<Words> asked = exchange(std::move(out));
    for (std::size_t r = 0; r < asked.size(); ++r) answer(asked[r], answers[r]);
    std::vector<Words>().swap(asked);
    const std::vector<Words> answered = exchange(std::move(answers));
    if (facet_cells_.capacity() < facet_count_) {  // here, not before the first questions: into the memory they freed
      facet_cells_.reserve(facet_count_);
      facet_deletions_.reserve(facet_count_);
    }
    std::vector<std::size_t> cursor(answered.size(), 0);
    for_each_facet(first, last, [&](std::size_t i, std::size_t skip, const Key<W>& facet, int owner) {
      const std::uint64_t* a = &answered[static_cast<std::size_t>(owner)][cursor[static_cast<std::size_t>(owner)]];
      cursor[static_cast<std::size_t>(owner)] += 3;
      const Index op = global_op(insertion_ops_[i]);
      facet_cells_.push_back(static_cast<Index>(a[0]));
      facet_deletions_.push_back(static_cast<Index>(a[1]));
      if (static_cast<Index>(a[0]) < 0) {
        error_.offer(op, kFirstFacet + static_cast<int>(skip), [&] {
          return "inserting " + describe_simplex(ops_.simplex(insertion_ops_[i])) + " before its face " + facet.describe();
        });
        return;
      }
      const auto facet_deleted = static_cast<Index>(a[2]);
      if (facet_deleted != kNever && deleted_[i] > facet_deleted)
        error_.offer(facet_deleted, kCoface, [&] { return "deleting " + facet.describe() + " while a coface of it is present"; });
    });
  }

  // f(local insertion, skip, facet key, facet's rank) for every facet of this rank's valid insertions
  // [first, last).
  template <class F>
  void for_each_facet(std::size_t first, std::size_t last, F&& f) const {
    for (std::size_t i = first; i < last; ++i) {
      const SimplexView s = ops_.simplex(insertion_ops_[i]);
      if (s.size() < 2 || !valid_vertices(s)) continue;
      for (std::size_t skip = 0; skip < s.size(); ++skip) {
        const Key<W> facet = Key<W>::of(s, skip);
        f(i, skip, facet, facet.owner(lay_.size));
      }
    }
  }

  // Answers `from`'s lookups ([key..., op] each): [cell, deletion index, deletion op] of the copy
  // present at op (the simplex's last copy inserted before op, if not deleted by then), or [-1, -1, -1].
  void answer(const Words& asked, Words& answers) const {
    constexpr std::size_t kAhead = 8;  // lookups whose hash-table groups are fetched ahead (the table is larger than cache)
    answers.reserve(asked.size() / (W + 1) * 3);
    for (std::size_t at = 0; at < asked.size(); at += W + 1) {
      if (at + kAhead * (W + 1) < asked.size()) latest_copy_.prefetch(Key<W>::read(&asked[at + kAhead * (W + 1)]));
      const auto op = static_cast<Index>(asked[at + W]);
      const auto it = latest_copy_.find(Key<W>::read(&asked[at]));
      std::size_t c = it == latest_copy_.end() ? kNoCopy : it->second;
      while (c != kNoCopy && copies_[c].inserted >= op) c = copies_[c].earlier;
      if (c == kNoCopy || copies_[c].deleted <= op) {
        answers.insert(answers.end(), 3, static_cast<std::uint64_t>(-1));
        continue;
      }
      answers.insert(answers.end(), {static_cast<std::uint64_t>(copies_[c].cell), static_cast<std::uint64_t>(copies_[c].deletion),
                                     static_cast<std::uint64_t>(copies_[c].deleted)});
    }
  }

  // Exchanges 4 and 5: the columns to their reducing ranks, the read-out records to their blocks.
  DistributedCone deal_columns(const std::string& dualize, Index pivot_chunk, int top_ranks);
  // Row bounds for `parts` blocks from a histogram (over all ranks) of the top columns' initial pivots
  // (their largest rows): rank r's rows start at quantile (r / P)^1.6 (row_split_bounds). Collective.
  std::vector<Index> top_pivot_bounds(int top, int parts) const;
  // Blocks of the hybrid's anti-transpose (every dimension but `top`, kept primal) for `parts` ranks
  // holding equal shares of its words (a header of 2 and a row per entry), from a histogram over all
  // ranks. Collective.
  std::vector<Index> dual_entry_bounds(int parts, int top) const;
  // f(column, dim, rows (unsorted, writable), size, op, tag) for every column this rank builds: the
  // apex (rank 0), then per insertion its up column and its deletion's cone column.
  template <class F>
  void for_each_column(F&& f) const;

  void release_build_state() {
    for (auto* v : {&deleted_, &deletion_, &facet_cells_, &facet_deletions_}) std::vector<Index>().swap(*v);
    std::vector<int>().swap(deletion_tag_);
    std::vector<std::size_t>().swap(insertion_ops_);
  }

  // A valid zigzag deletes only what it inserted, so it has at most 2n operations: below 2^32 once
  // the cone's columns are (exchange 1 packs op numbers into 32 bits). More means more deletions
  // than insertions: named at the first operation past the limit.
  void check_operation_limit() const {
    constexpr Index most = (Index{1} << 32) - 1;
    if (lay_.m <= most) return;
    throw InvalidZigzag{most, "more than " + std::to_string(most) + " operations: more deletions than insertions"};
  }

  // build_cone_matrix's limit: 2n + 1 columns of 32-bit indices; the error names the first
  // insertion past it.
  void check_column_limit() const {
    const Index most = (kMaxColumns - 1) / 2;
    if (lay_.n <= most) return;
    long long op = -1;
    const Index mine_first = lay_.first_cell[static_cast<std::size_t>(lay_.rank)];  // the limit is passed at cell most + 1
    if (most + 1 >= mine_first && most + 1 < lay_.first_cell[static_cast<std::size_t>(lay_.rank) + 1])
      op = global_op(insertion_ops_[static_cast<std::size_t>(most + 1 - mine_first)]);
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, &op, 1, MPI_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce");
    throw InvalidZigzag{op, "more than " + std::to_string(most) + " insertions: the cone matrix would exceed 2^32 - 1 columns"};
  }

  const ZigzagOpList& ops_;
  const std::vector<int>* tags_;
  int end_tag_;
  MPI_Comm comm_;
  Layout lay_;
  FirstError error_;
  std::vector<std::size_t> insertion_ops_;  // local op of each local insertion
  std::vector<Index> deletion_index_;       // of each local deletion (until the events are sent)
  std::vector<Index> deleted_;              // per local insertion: deletion op, kNever if none
  std::vector<Index> deletion_;             // per local insertion: deletion index (real or virtual)
  std::vector<int> deletion_tag_;           // per local insertion: the deleting op's tag
  std::vector<Copy> copies_;                // by exchange 1's rounds, each round's in op order of their insertions
  absl::flat_hash_map<Key<W>, std::size_t> latest_copy_;  // each simplex's last copy (the others by Copy::earlier)
  std::size_t facet_count_ = 0;             // facets of this rank's valid insertions (of 2 vertices or more)
  // Per facet of each valid insertion, in insertion and then skip order: the present copy's cell
  // and deletion index (-1 if absent: an error).
  std::vector<Index> facet_cells_, facet_deletions_;
};


// Column records for the reducing ranks, in 32-bit words. Primal: [column, dim, size, rows...].
// Anti-transposed: a block is [d, d dim records (dual column, its dim), entries (dual column, row)...].
template <int W>
template <class F>
void ConeBuilder<W>::for_each_column(F&& f) const {
  const Index n = lay_.n;
  std::array<Row, 34> rows{};  // a simplex's facets, or its cone cell's boundary: at most 32 + 1 (build_cone_distributed)
  if (lay_.rank == 0) f(Index{0}, 0, rows.data(), std::size_t{0}, Index{-1}, 0);  // the apex
  std::size_t facet = 0;
  for (std::size_t i = 0; i < insertion_ops_.size(); ++i) {
    const std::size_t op = insertion_ops_[i];
    const auto q = static_cast<int>(ops_.simplex(op).size()) - 1;
    const std::size_t facets = q > 0 ? static_cast<std::size_t>(q) + 1 : 0;
    const Index cell = lay_.first_cell[static_cast<std::size_t>(lay_.rank)] + static_cast<Index>(i);
    for (std::size_t k = 0; k < facets; ++k) rows[k] = static_cast<Row>(facet_cells_[facet + k]);
    f(cell, q, rows.data(), facets, global_op(op), tag_of(op));
    // The cone cell of this insertion's deletion: its boundary is the cell and its facets' cone cells
    // (a vertex's: the apex).
    const Index k = deletion_[i];
    std::size_t size = 0;
    if (q == 0) rows[size++] = 0;
    rows[size++] = static_cast<Row>(cell);
    for (std::size_t f2 = 0; f2 < facets; ++f2) rows[size++] = static_cast<Row>(2 * n - facet_deletions_[facet + f2]);
    const Index deleting_op = deleted_[i] != kNever ? deleted_[i] : lay_.m + (k - lay_.real_deletions);
    f(2 * n - k, q + 1, rows.data(), size, deleting_op, deletion_tag_[i]);
    facet += facets;
  }
}

// The primal top step's pivots all lie in the upper half of the rows (the cone cells come after the
// insertions), so one block per rank left the whole step to the last rank: 10^7 operations, 2 ranks,
// 8.4 s with rank 0 idle 5.4 s of it. Blocks at the pivots' quantiles (r / P)^1.6: 3.5 s; at equal
// counts (r / P) 4.6 s, rank 1 then idle instead (docs/benchmarks.md, "The top step's rows").
template <int W>
std::vector<Index> ConeBuilder<W>::top_pivot_bounds(int top, int parts) const {
  const Index N = 2 * lay_.n + 1;
  RowHistogram pivots(N, kPivotBins);
  for_each_column([&](Index, int dim, const Row* rows, std::size_t size, Index, int) {
    if (dim == top && size > 0) pivots.add(*std::max_element(rows, rows + size));
  });
  pivots.sum_over(comm_);
  return row_split_bounds(pivots.counts(), N, parts);
}

// The hybrid's anti-transpose dealt in blocks of equal columns left the block of the lowest cells
// (the last rank's) the most entries: 10^7 operations, 4 ranks, 62 MiB of columns against 19-45, and
// its assembly was that rank's peak of the build (391 MiB against 334-348 elsewhere).
template <int W>
std::vector<Index> ConeBuilder<W>::dual_entry_bounds(int parts, int top) const {
  const Index N = 2 * lay_.n + 1;
  RowHistogram words(N, kPivotBins);  // over the anti-transpose's columns, N - 1 - j
  for_each_column([&](Index j, int dim, const Row* rows, std::size_t size, Index, int) {
    // Two words for every column, held or not (the assembly counts each owned column's rows in one):
    // counting only the held ones' headers (tried) balanced the columns' words better but raised two
    // ranks' peak at 10^7 operations from 590 to 599 MiB, rank 0 taking more of them.
    words.add(N - 1 - j, 2);
    if (dim == top) return;
    for (std::size_t e = 0; e < size; ++e) words.add(N - 1 - static_cast<Index>(rows[e]));
  });
  words.sum_over(comm_);
  return row_bounds_at_quantiles(words.counts(), N, parts, [](int r, int ranks) { return static_cast<double>(r) / ranks; });
}

template <int W>
DistributedCone ConeBuilder<W>::deal_columns(const std::string& dualize, Index pivot_chunk, int top_ranks) {
  DistributedCone cone;
  const Index n = lay_.n, N = 2 * n + 1;
  cone.num_ops = lay_.m;
  cone.num_insertions = n;
  cone.num_columns = N;
  const Duality duality = resolve_dualize(dualize, N);
  cone.dualized = duality != Duality::primal;
  const int top = n > 0 ? lay_.max_size : 0;  // the cone matrix's largest dimension
  cone.top_dim = top;
  cone.top_primal = duality == Duality::hybrid && top > 0;  // an empty zigzag's matrix is the apex alone
  const int P = lay_.size;
  // With two groups, ranks [0, dual_ranks) hold the anti-transpose and the others the top columns;
  // otherwise every rank holds its share of both.
  const bool groups = cone.top_primal && top_ranks > 0 && P > 1;
  cone.dual_ranks = groups ? P - std::min(top_ranks, P - 1) : 0;
  const int dual_group = groups ? cone.dual_ranks : P, top_group = groups ? P - cone.dual_ranks : P;
  const int first_top_rank = groups ? cone.dual_ranks : 0;
  cone.pivot_chunk = pivot_chunk > 0 ? pivot_chunk : default_pivot_chunk(N, dual_group);
  cone.pivot_chunk_given = pivot_chunk > 0;
  cone.top_pivot_chunk = pivot_chunk > 0 ? pivot_chunk : default_pivot_chunk(N, top_group);
  const bool dual = cone.dualized;
  // Which columns go primal: all, or with top_primal the top dimension's.
  auto primal = [&](int dim) { return !dual || (cone.top_primal && dim == top); };
  if (cone.top_primal && pivot_chunk == 0 && top_group > 1) cone.top_row_bounds = top_pivot_bounds(top, top_group);
  if (cone.top_primal && pivot_chunk == 0 && dual_group > 1) cone.dual_bounds = dual_entry_bounds(dual_group, top);
  const PivotOwnership own = cone.ownership(dual_group);
  const PivotOwnership own_top = cone.top_ownership(top_group);
  const Index info_block = (N + P - 1) / P;
  // Column j's cell is the dual's cell N-1-j; row i becomes dual column N-1-i.
  auto dual_of = [N](Index j) { return N - 1 - j; };
  auto info_rank = [&](Index j) { return static_cast<std::size_t>(j / info_block); };
  // The rank reducing primal column j (its group's owner, offset to the group's first rank).
  auto primal_rank = [&](Index j) {
    return static_cast<std::size_t>(cone.top_primal ? first_top_rank + own_top.owner(j) : own.owner(j));
  };
  // Exact sizes first, so that the records are written once into buffers that never grow.
  std::vector<std::size_t> info_words(static_cast<std::size_t>(P), 0), primal_words(info_words), dual_words(info_words), dims(info_words);
  for_each_column([&](Index j, int dim, const Row* rows, std::size_t size, Index, int) {
    info_words[info_rank(j)] += 3;
    if (dual) ++dims[static_cast<std::size_t>(own.owner(dual_of(j)))];
    if (primal(dim)) {
      primal_words[primal_rank(j)] += 3 + size;
      return;
    }
    for (std::size_t e = 0; e < size; ++e) dual_words[static_cast<std::size_t>(own.owner(dual_of(rows[e])))] += 2;
  });
  std::vector<std::vector<Row>> primal_out(static_cast<std::size_t>(P)), dual_out(primal_out);
  Outgoing info_out = outgoing();
  std::vector<std::size_t> next_dim(static_cast<std::size_t>(P), 1);  // where the next dim record goes (dualized)
  for (std::size_t r = 0; r < primal_out.size(); ++r) {
    info_out[r].reserve(info_words[r]);
    primal_out[r].reserve(primal_words[r]);
    if (!dual) continue;
    dual_out[r].assign(1 + 2 * dims[r], 0);
    dual_out[r][0] = static_cast<Row>(dims[r]);
    dual_out[r].reserve(dual_out[r].size() + dual_words[r]);
  }
  for_each_column([&](Index j, int dim, Row* rows, std::size_t size, Index op, int tag) {
    Words& info = info_out[info_rank(j)];
    info.insert(info.end(), {static_cast<std::uint64_t>(j), static_cast<std::uint64_t>(op),
                             (static_cast<std::uint64_t>(dim) << 32) | static_cast<std::uint32_t>(tag)});
    if (dual) {
      const auto r = static_cast<std::size_t>(own.owner(dual_of(j)));
      dual_out[r][next_dim[r]] = static_cast<Row>(dual_of(j));
      dual_out[r][next_dim[r] + 1] = static_cast<Row>(top - dim);
      next_dim[r] += 2;
    }
    if (primal(dim)) {
      std::sort(rows, rows + size);
      auto& to = primal_out[primal_rank(j)];
      to.insert(to.end(), {static_cast<Row>(j), static_cast<Row>(dim), static_cast<Row>(size)});
      to.insert(to.end(), rows, rows + size);
      return;
    }
    for (std::size_t e = 0; e < size; ++e) {
      auto& to = dual_out[static_cast<std::size_t>(own.owner(dual_of(rows[e])))];
      to.insert(to.end(), {static_cast<Row>(dual_of(rows[e])), static_cast<Row>(dual_of(j))});
    }
  });
  release_build_state();
  const int rank = lay_.rank;
  if (!dual) cone.columns = assemble_columns(mpi::exchange_blocks(comm_, std::move(primal_out), MPI_UINT32_T), own, rank, false);
  if (cone.top_primal) {  // a rank outside the top group receives nothing
    auto received = mpi::exchange_blocks(comm_, std::move(primal_out), MPI_UINT32_T);
    if (rank >= first_top_rank) cone.top_columns = assemble_columns(std::move(received), own_top, rank - first_top_rank, false);
  }
  if (dual) {  // nor one outside the anti-transpose's group
    auto received = mpi::exchange_blocks(comm_, std::move(dual_out), MPI_UINT32_T);
    if (rank < dual_group) cone.columns = assemble_columns(std::move(received), own, rank, true);
  }
  cone.info_first = std::min<Index>(N, static_cast<Index>(lay_.rank) * info_block);
  cone.info.resize(static_cast<std::size_t>(std::min<Index>(N, cone.info_first + info_block) - cone.info_first));
  for (const Words& block : exchange(std::move(info_out)))
    for (std::size_t at = 0; at < block.size(); at += 3)
      cone.info[static_cast<std::size_t>(static_cast<Index>(block[at]) - cone.info_first)] = {
          static_cast<Index>(block[at + 1]), static_cast<int>(block[at + 2] >> 32), static_cast<int>(static_cast<std::uint32_t>(block[at + 2]))};
  return cone;
}

}  // namespace

namespace {

// This rank's columns with rows in the reducer's layout ([dim, size, rows...], increasing index)
// from the records every rank sent it (deal_columns' formats), which it frees block by block; the
// columns without rows, which the reducer drops, are left out. Besides the result it holds a word per
// column it owns (their rows counted, then the held ones numbered) and an offset per held column.
// (A header and an offset for every owned column were the largest transient of a four-rank build at
// 10^7 operations: rank 0 owns 5.8 M of the top step's indices and holds none of its columns, and
// their assembly took it from 263 to 314 MiB.)
OwnedColumns assemble_columns(std::vector<std::vector<Row>>&& received, const PivotOwnership& own, int rank, bool dualized) {
  const auto count = static_cast<std::size_t>(own.local_count(rank));
  auto local = [&](Row j) { return static_cast<std::size_t>(own.local(static_cast<Index>(j))); };
  // f(local column, rows, size) for each column record (primal) or entry (dualized: size 1) of a block.
  auto for_each_record = [&](const std::vector<Row>& block, auto&& f) {
    if (!dualized) {
      for (std::size_t at = 0; at < block.size(); at += 3 + static_cast<std::size_t>(block[at + 2]))
        f(local(block[at]), &block[at + 3], static_cast<std::size_t>(block[at + 2]));
    } else if (!block.empty()) {
      for (std::size_t at = 1 + 2 * static_cast<std::size_t>(block[0]); at < block.size(); at += 2) f(local(block[at]), &block[at + 1], 1);
    }
  };
  constexpr Row kNotHeld = std::numeric_limits<Row>::max();
  std::vector<Row> held_of(count, 0);  // rows of each owned column, then its number among the held ones
  for (const auto& block : received)
    for_each_record(block, [&](std::size_t c, const Row*, std::size_t size) { held_of[c] += static_cast<Row>(size); });
  OwnedColumns out;
  out.positions.reserve(static_cast<std::size_t>(std::count_if(held_of.begin(), held_of.end(), [](Row rows) { return rows > 0; })));
  std::vector<std::size_t> start(1, 0);  // of each held column's header in `out.words`
  start.reserve(out.positions.capacity() + 1);
  for (std::size_t c = 0; c < count; ++c) {
    if (held_of[c] == 0) {
      held_of[c] = kNotHeld;
      continue;
    }
    start.push_back(start.back() + 2 + held_of[c]);
    held_of[c] = static_cast<Row>(out.positions.size());
    out.positions.push_back(static_cast<Row>(c));
  }
  out.words.assign(start.back(), 0);
  auto set_dim = [&](std::size_t c, Row dim) {
    if (held_of[c] != kNotHeld) out.words[start[held_of[c]]] = dim;
  };
  for (const auto& block : received) {  // the dims
    if (!dualized) {
      for (std::size_t at = 0; at < block.size(); at += 3 + static_cast<std::size_t>(block[at + 2])) set_dim(local(block[at]), block[at + 1]);
    } else if (!block.empty()) {
      for (std::size_t d = 0; d < block[0]; ++d) set_dim(local(block[1 + 2 * d]), block[2 + 2 * d]);
    }
  }
  for (auto& block : received) {  // the rows; each block freed once copied
    for_each_record(block, [&](std::size_t c, const Row* rows, std::size_t size) {
      if (size == 0) return;  // a primal column without rows
      const std::size_t at = start[held_of[c]];
      Row& written = out.words[at + 1];
      std::copy(rows, rows + size, out.words.begin() + static_cast<std::ptrdiff_t>(at + 2 + written));
      written += static_cast<Row>(size);
    });
    std::vector<Row>().swap(block);
  }
  if (dualized)
    for (std::size_t h = 0; h + 1 < start.size(); ++h)
      std::sort(out.words.begin() + static_cast<std::ptrdiff_t>(start[h] + 2), out.words.begin() + static_cast<std::ptrdiff_t>(start[h + 1]));
  return out;
}

}  // namespace

int auto_top_ranks(int /*ranks*/) { return 0; }

std::size_t facets_per_round() { return g_facets_per_round; }
void set_facets_per_round(std::size_t facets) { g_facets_per_round = std::max<std::size_t>(facets, 1); }
std::size_t events_per_round() { return g_events_per_round; }
void set_events_per_round(std::size_t events) { g_events_per_round = std::max<std::size_t>(events, 1); }
std::size_t pairs_per_round() { return g_pairs_per_round; }
void set_pairs_per_round(std::size_t pairs) { g_pairs_per_round = std::max<std::size_t>(pairs, 1); }

DistributedCone build_cone_distributed(const ZigzagOpList& ops, const std::vector<int>* tags, int end_tag, MPI_Comm comm,
                                       const std::string& dualize, Index pivot_chunk, int top_ranks) {
  if (tags && tags->size() != ops.size()) throw std::invalid_argument("build_cone_distributed: one tag per operation expected");
  long long width = static_cast<long long>(ops.max_simplex_size());
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &width, 1, MPI_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
  if (width <= 2) return ConeBuilder<1>(ops, tags, end_tag, comm).build(dualize, pivot_chunk, top_ranks);
  if (width <= 4) return ConeBuilder<2>(ops, tags, end_tag, comm).build(dualize, pivot_chunk, top_ranks);
  if (width <= 8) return ConeBuilder<4>(ops, tags, end_tag, comm).build(dualize, pivot_chunk, top_ranks);
  if (width <= 16) return ConeBuilder<8>(ops, tags, end_tag, comm).build(dualize, pivot_chunk, top_ranks);
  if (width <= 32) return ConeBuilder<16>(ops, tags, end_tag, comm).build(dualize, pivot_chunk, top_ranks);
  throw std::invalid_argument("the distributed cone build takes simplices of at most 32 vertices (dimension 31); this zigzag has " +
                              std::to_string(width));
}

namespace {

int group_size_of(MPI_Comm group) {
  int size = 1;
  mpi::check(MPI_Comm_size(group, &size), "MPI_Comm_size");
  return size;
}

// Compression (Bauer, Kerber & Reininghaus, "Clear and compress"): a row whose cell is negative
// (its own column reduces to non-zero) can be zeroed in every column of the next dimension without
// changing a single pair: removing row i changes the rank of a lower-left submatrix only if some sum
// of columns is e_i below row k, i.e. a cycle whose latest cell is i, which a negative i has not.
// In the hybrid the anti-transpose's dimension-1 cells (the primal top step's rows, read backwards)
// are exactly the cells the top step paired: N - 1 - creator of each top pair is negative on the
// dual side, and the anti-transpose's dimension-2 step (the bars-1 step, the costliest of all) can
// drop them. 1.74 M operations: 2.56 M -> 1.81 M entries, that step 1.92-1.97 -> 1.38-1.49 s.
// Every rank gets every top pair's row (a bitmap of N bits: N / 8 bytes per rank).
std::vector<bool> negative_dual_rows(const std::vector<PersistencePair>& top_pairs, Index N, MPI_Comm comm) {
  int size = 1;
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  std::vector<std::vector<Row>> out(static_cast<std::size_t>(size));
  for (auto& to : out) {
    to.reserve(top_pairs.size());
    for (const auto& p : top_pairs) to.push_back(static_cast<Row>(N - 1 - p.creator));
  }
  std::vector<bool> negative(static_cast<std::size_t>(N), false);
  for (const auto& from : mpi::exchange_blocks(comm, std::move(out), MPI_UINT32_T))
    for (Row r : from) negative[r] = true;
  return negative;
}

}  // namespace

void drop_rows_of_dim(std::vector<Row>& columns, int dim, const std::vector<bool>& drop) {
  std::size_t at = 0, write = 0;
  while (at < columns.size()) {
    const Row column_dim = columns[at], size = columns[at + 1];
    const std::size_t head = write;
    columns[write++] = column_dim;
    write++;  // the size, once known
    for (std::size_t k = at + 2; k < at + 2 + size; ++k)
      if (static_cast<int>(column_dim) != dim || !drop[columns[k]]) columns[write++] = columns[k];
    columns[head + 1] = static_cast<Row>(write - head - 2);
    at += 2 + size;
  }
  columns.resize(write);
}

void redeal_columns(OwnedColumns& columns, const PivotOwnership& from, const PivotOwnership& to, MPI_Comm comm) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  const std::vector<Row>& words = columns.words;
  auto for_each_column = [&](auto&& f) {  // f(index, first word, words)
    columns.for_each([&](Row position, std::size_t at) { f(from.global(rank, position), at, 2 + static_cast<std::size_t>(words[at + 1])); });
  };
  // To each rank its columns as [index, dim, size, rows...], in increasing index.
  std::vector<std::vector<Row>> out(static_cast<std::size_t>(size));
  {
    std::vector<std::size_t> counts(out.size(), 0);
    for_each_column([&](Index j, std::size_t, std::size_t w) { counts[static_cast<std::size_t>(to.owner(j))] += 1 + w; });
    for (std::size_t r = 0; r < out.size(); ++r) out[r].reserve(counts[r]);
  }
  for_each_column([&](Index j, std::size_t at, std::size_t w) {
    auto& block = out[static_cast<std::size_t>(to.owner(j))];
    block.push_back(static_cast<Row>(j));
    block.insert(block.end(), words.begin() + static_cast<std::ptrdiff_t>(at), words.begin() + static_cast<std::ptrdiff_t>(at + w));
  });
  columns = {};
  const std::vector<std::vector<Row>> received = mpi::exchange_blocks(comm, std::move(out), MPI_UINT32_T);
  std::size_t total = 0, held = 0;
  for (const auto& block : received) {
    total += block.size();
    for (std::size_t at = 0; at < block.size(); at += 3 + static_cast<std::size_t>(block[at + 2])) ++held;
  }
  columns.words.reserve(total - held);
  columns.positions.reserve(held);
  // The blocks merged by index, the smallest first (a rank's local order is its indices' order).
  using Head = std::pair<Row, std::size_t>;  // (index, source rank)
  std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;
  std::vector<std::size_t> next(received.size(), 0);
  for (std::size_t r = 0; r < received.size(); ++r)
    if (!received[r].empty()) heads.push({received[r][0], r});
  while (!heads.empty()) {
    const auto [j, r] = heads.top();
    heads.pop();
    const auto& block = received[r];
    std::size_t& at = next[r];
    const std::size_t w = 2 + static_cast<std::size_t>(block[at + 2]);
    columns.positions.push_back(static_cast<Row>(to.local(static_cast<Index>(j))));
    columns.words.insert(columns.words.end(), block.begin() + static_cast<std::ptrdiff_t>(at + 1), block.begin() + static_cast<std::ptrdiff_t>(at + 1 + w));
    at += 1 + w;
    if (at < block.size()) heads.push({block[at], r});
  }
}

namespace {

// P + 1 bounds from `first` to `last` at the quantiles (r / P)^1.6 of `histogram` (of the rows 0..N:
// row_split_bounds), or evenly spaced when it is empty.
std::vector<Index> bounds_within(const std::vector<double>& histogram, Index N, int ranks, Index first, Index last) {
  std::vector<Index> bounds;
  if (std::all_of(histogram.begin(), histogram.end(), [](double h) { return h == 0; })) {
    for (int r = 0; r <= ranks; ++r) bounds.push_back(first + (last - first) * r / ranks);
    return bounds;
  }
  bounds = row_split_bounds(histogram, N, ranks);
  for (Index& b : bounds) b = std::clamp(b, first, last);
  bounds.front() = first;
  bounds.back() = last;
  return bounds;
}

}  // namespace

PivotOwnership halves_ownership(const OwnedColumns& columns, const PivotOwnership& dealt, int dim, Index N, MPI_Comm comm) {
  int rank = 0, size = 1;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  const Index half = upper_half_start(N);
  RowHistogram upper(N, kPivotBins), lower(N, kPivotBins);  // the pivots of the upper phase's columns, of the lower's
  const std::vector<Row>& words = columns.words;
  columns.for_each([&](Row position, std::size_t at) {
    const Row rows = words[at + 1];
    if (static_cast<int>(words[at]) != dim || rows == 0) return;
    const Index j = dealt.global(rank, position), pivot = words[at + 1 + rows];  // rows increase
    if (j < half) lower.add(pivot);
    else if (pivot >= half) upper.add(pivot);  // (an upper column's pivot below the half: lower phase's rows)
  });
  upper.sum_over(comm);
  lower.sum_over(comm);
  std::vector<Index> starts = bounds_within(lower.counts(), N, size, 0, half);
  const std::vector<Index> upper_bounds = bounds_within(upper.counts(), N, size, half, N);
  starts.insert(starts.end(), upper_bounds.begin() + 1, upper_bounds.end());
  std::vector<int> owners;
  for (int half_rows = 0; half_rows < 2; ++half_rows)
    for (int r = 0; r < size; ++r) owners.push_back(r);
  return PivotOwnership(N, starts, owners);
}

namespace {

// This rank's pairs (homology's, mapped back from the anti-transpose's) of `cone`'s columns, which
// it frees. Hybrid: the top columns and then the anti-transpose's, on every rank (the second
// compressed by the first's pairs), or each on its own group of ranks at once. The stats rows get
// the world rank and the dimension of their bars.
std::vector<PersistencePair> reduce_cone_columns(DistributedCone& cone, MPI_Comm comm, std::vector<ReductionStepStats>* stats,
                                                 const std::string& column_order, StepMethods step_methods) {
  const Index N = cone.num_columns;
  int rank = 0;
  mpi::check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  const bool groups = cone.top_primal && cone.dual_ranks > 0;
  const bool reduces_top = cone.top_primal && (!groups || rank >= cone.dual_ranks);
  const bool reduces_dual = !groups || rank < cone.dual_ranks;
  MPI_Comm group = comm;
  if (groups) mpi::check(MPI_Comm_split(comm, reduces_dual ? 0 : 1, rank, &group), "MPI_Comm_split");
  auto label_rows = [&](std::size_t first_row, bool dualized) {
    if (!stats) return;
    for (std::size_t r = first_row; r < stats->size(); ++r) {
      (*stats)[r].rank = rank;
      (*stats)[r].bar_dim = dualized ? cone.top_dim - (*stats)[r].dim : (*stats)[r].dim - 1;
    }
  };
  std::vector<PersistencePair> pairs;
  // The top dimension first: its columns are freed before the larger anti-transpose's store grows.
  if (reduces_top) {
    const std::size_t first_row = stats ? stats->size() : 0;
    const int top_group = group_size_of(group);
    std::string top_order = column_order_of_step(column_order, cone.top_dim - 1);
    if (top_order == "auto") top_order = auto_top_step_order(cone.top_dim, N);
    pairs = reduce_distributed_owned(std::move(cone.top_columns), cone.top_ownership(top_group), N, group, stats, top_order, step_methods,
                                     cone.top_dim);
    cone.top_columns = {};
    label_rows(first_row, false);
    // Turns: the top pairs are known before the anti-transpose starts (groups reduce both at once).
    if (!groups && reduces_dual) drop_rows_of_dim(cone.columns.words, cone.top_dim - 1, negative_dual_rows(pairs, N, comm));
  }
  if (reduces_dual) {
    const std::size_t first_row = stats ? stats->size() : 0;
    const int ranks = group_size_of(group);
    // The hybrid's bars-1 step (dual dimension top - 1, the second step) taken upper-first: its two
    // phases' rows over all ranks (halves_ownership), not the lower half's on rank 0 alone.
    const int bars1_dim = cone.top_dim - 1;
    if (cone.top_primal && ranks > 1 && !cone.pivot_chunk_given && cone.row_starts.empty() &&
        takes_upper_first(column_order_for(column_order, cone.top_dim - bars1_dim, bars1_dim, N))) {
      const PivotOwnership blocks = cone.ownership(ranks);
      const PivotOwnership halves = halves_ownership(cone.columns, blocks, bars1_dim, N, group);
      redeal_columns(cone.columns, blocks, halves, group);
      cone.row_starts = halves.starts();
      cone.row_owners = halves.owners();
    }
    std::vector<PersistencePair> found = reduce_distributed_owned(std::move(cone.columns), cone.ownership(ranks), N, group, stats, column_order,
                                                                  step_methods, cone.top_primal ? 2 : 1);
    cone.columns = {};
    if (cone.dualized)  // cohomology pairs back to homology pairs (reduce_by_name's mapping)
      for (auto& p : found) p = {N - 1 - p.destroyer, N - 1 - p.creator};
    label_rows(first_row, cone.dualized);
    if (pairs.empty()) pairs = std::move(found);
    else pairs.insert(pairs.end(), found.begin(), found.end());
  }
  if (groups) mpi::check(MPI_Comm_free(&group), "MPI_Comm_free");
  return pairs;
}

// f(pair, its creator's record, its destroyer's) for each of `pairs`, in order: each pair's two
// records are asked of the ranks holding them (cone.info's blocks) and read back in the order asked,
// in rounds of at most pairs_per_round() pairs a rank, every buffer reserved at its exact size. All at
// once, the questions and answers were the largest rank's peak at 10^7 operations on 4 ranks (rank
// 0 holds 2.3 M of the 5 M pairs: 298 -> 368 MiB); grown by doubling, they made the read-out the
// peak of a one-process run (806 k operations: docs/benchmarks.md). Collective.
template <class F>
void read_out_records(const std::vector<PersistencePair>& pairs, const DistributedCone& cone, MPI_Comm comm, F&& f) {
  const std::size_t per_round = g_pairs_per_round;
  int size = 1;
  mpi::check(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  const Index block = (cone.num_columns + size - 1) / size;  // of the read-out records
  auto holder = [&](Index j) { return static_cast<std::size_t>(j / block); };
  long long rounds = static_cast<long long>((pairs.size() + per_round - 1) / per_round);
  mpi::check(MPI_Allreduce(MPI_IN_PLACE, &rounds, 1, MPI_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
  for (long long round = 0; round < rounds; ++round) {  // every rank the same rounds, some empty
    const auto first = pairs.begin() + static_cast<std::ptrdiff_t>(pairs.size() * static_cast<std::size_t>(round) / static_cast<std::size_t>(rounds));
    const auto last = pairs.begin() + static_cast<std::ptrdiff_t>(pairs.size() * static_cast<std::size_t>(round + 1) / static_cast<std::size_t>(rounds));
    std::vector<std::vector<Row>> asks(static_cast<std::size_t>(size));  // column indices: below 2^32 (kMaxColumns)
    {
      std::vector<std::size_t> count(asks.size(), 0);
      for (auto p = first; p != last; ++p) {
        ++count[holder(p->creator)];
        ++count[holder(p->destroyer)];
      }
      for (std::size_t r = 0; r < asks.size(); ++r) asks[r].reserve(count[r]);
    }
    for (auto p = first; p != last; ++p) {
      asks[holder(p->creator)].push_back(static_cast<Row>(p->creator));
      asks[holder(p->destroyer)].push_back(static_cast<Row>(p->destroyer));
    }
    std::vector<std::vector<Row>> asked = mpi::exchange_blocks(comm, std::move(asks), MPI_UINT32_T);
    std::vector<std::vector<std::uint64_t>> answers(asked.size());  // (op, dim << 32 | tag) each
    for (std::size_t r = 0; r < asked.size(); ++r) {
      answers[r].reserve(2 * asked[r].size());
      for (const Row j : asked[r]) {
        const ConeColumnInfo& info = cone.info[static_cast<std::size_t>(static_cast<Index>(j) - cone.info_first)];
        answers[r].insert(answers[r].end(), {static_cast<std::uint64_t>(info.op),
                                             static_cast<std::uint64_t>(info.dim) << 32 | static_cast<std::uint32_t>(info.tag)});
      }
      std::vector<Row>().swap(asked[r]);
    }
    const std::vector<std::vector<std::uint64_t>> answered = mpi::exchange_blocks(comm, std::move(answers), MPI_UINT64_T);
    std::vector<std::size_t> cursor(answered.size(), 0);
    auto next_info = [&](Index j) {
      const std::size_t r = holder(j);
      const std::uint64_t* a = &answered[r][cursor[r]];
      cursor[r] += 2;
      return ConeColumnInfo{static_cast<Index>(a[0]), static_cast<int>(a[1] >> 32), static_cast<int>(static_cast<std::uint32_t>(a[1]))};
    };
    for (auto p = first; p != last; ++p) {
      const ConeColumnInfo c = next_info(p->creator), e = next_info(p->destroyer);
      f(*p, c, e);
    }
  }
}

}  // namespace

std::vector<TaggedBar> reduce_and_read_out_local(DistributedCone& cone, MPI_Comm comm, int end_tag,
                                                 std::vector<ReductionStepStats>* stats, const std::string& column_order,
                                                 StepMethods step_methods) {
  const Index n = cone.num_insertions, m = cone.num_ops;
  std::vector<PersistencePair> pairs = reduce_cone_columns(cone, comm, stats, column_order, step_methods);
  std::vector<TaggedBar> bars;
  bars.reserve(pairs.size());
  read_out_records(pairs, cone, comm, [&](const PersistencePair& p, const ConeColumnInfo& c, const ConeColumnInfo& e) {
    ZigzagBar bar = bar_of_cone_pair(p.creator, p.destroyer, n, c.dim, c.op, e.op);
    if (bar.dim < 0 || bar.birth > m) return;
    // The two columns stand for different operations, so each end's op names its column.
    const int birth_tag = bar.birth - 1 == c.op ? c.tag : e.tag;
    const int death_tag = bar.death >= m ? end_tag : bar.death == c.op ? c.tag : e.tag;
    bar.death = std::min(bar.death, m);
    bars.push_back({bar, birth_tag, death_tag});
  });
  return bars;
}

std::vector<TaggedBar> reduce_and_read_out_distributed(DistributedCone& cone, MPI_Comm comm, int end_tag,
                                                       std::vector<ReductionStepStats>* stats, const std::string& column_order,
                                                       StepMethods step_methods) {
  std::vector<std::int64_t> flat;  // [dim, birth, death, birth tag, death tag] per bar
  {
    const std::vector<TaggedBar> mine = reduce_and_read_out_local(cone, comm, end_tag, stats, column_order, step_methods);
    flat.reserve(5 * mine.size());
    for (const auto& b : mine) flat.insert(flat.end(), {b.bar.dim, b.bar.birth, b.bar.death, b.birth_tag, b.death_tag});
  }  // (freed before the gather: rank 0 then holds every bar)
  const std::vector<std::int64_t> all = mpi::gather_blocks(comm, flat.data(), flat.size(), MPI_INT64_T);
  std::vector<TaggedBar> bars;
  bars.reserve(all.size() / 5);
  for (std::size_t at = 0; at + 4 < all.size(); at += 5)
    bars.push_back({{static_cast<int>(all[at]), all[at + 1], all[at + 2]}, static_cast<int>(all[at + 3]), static_cast<int>(all[at + 4])});
  std::sort(bars.begin(), bars.end(), [](const TaggedBar& a, const TaggedBar& b) { return a.bar < b.bar; });
  return bars;
}

}  // namespace lmtopo::topology
