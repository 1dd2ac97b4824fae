// The allocator's policy for large blocks, for the memory-bound distributed work (cone build,
// reduction) whose peak per rank is the point (docs/methods.md, "Large blocks mapped").
#pragma once

#include <cstddef>

namespace lmtopo::core {

// Blocks of at least this many bytes are mapped for themselves and unmapped when freed.
constexpr std::size_t kMappedBlockBytes = std::size_t{1} << 20;

// Fixes glibc's mmap threshold at kMappedBlockBytes. By default glibc raises the threshold to the
// largest mapped block freed so far (up to 32 MiB), after which blocks below it come from the heap,
// whose freed middle is kept by the process: the reduction's batches, inboxes and per-round buffers
// then leave a rank's resident memory at their high-water mark. Fixed, a freed block of 1 MiB or
// more goes back at once. Idempotent; no effect (and false) without glibc.
bool map_large_blocks();

// Gives back the whole pages within [first, last) of memory the caller owns and will not read again
// (they read as zeros if it does); the partial pages at either end are kept. Returns the pages given
// back, [first, last) (empty when none was, or when the system refused).
struct ReleasedPages {
  char* first;
  char* last;
};
ReleasedPages release_pages(void* first, void* last);

}  // namespace lmtopo::core
