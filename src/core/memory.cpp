#include "core/memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lmtopo::core {

bool map_large_blocks() {
#if defined(__GLIBC__)
  // Setting the threshold also turns off its dynamic adjustment (and the trim threshold's).
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMappedBlockBytes)) == 1;
#else
  return false;
#endif
}

ReleasedPages release_pages(void* first, void* last) {
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::uintptr_t from = (reinterpret_cast<std::uintptr_t>(first) + page - 1) / page * page;
  const std::uintptr_t to = reinterpret_cast<std::uintptr_t>(last) / page * page;
  // Advice, not a requirement: on failure the pages simply stay.
  if (to <= from || madvise(reinterpret_cast<void*>(from), to - from, MADV_DONTNEED) != 0) return {nullptr, nullptr};
  return {reinterpret_cast<char*>(from), reinterpret_cast<char*>(to)};
}

}  // namespace lmtopo::core
