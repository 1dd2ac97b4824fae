// core::map_large_blocks: a block of 1 MiB or more is mapped for itself even after a larger mapped
// block was freed (glibc's default would then serve it from the heap and keep it when freed). Its
// own executable: the heap of a fresh process has no free chunk that could serve the blocks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "core/memory.hpp"

#if defined(__GLIBC__)
#include <malloc.h>

namespace {

// Bytes in mapped blocks now.
std::size_t mapped_bytes() { return mallinfo2().hblkhd; }

char* touched_block(std::size_t bytes) {
  auto* block = static_cast<char*>(std::malloc(bytes));
  std::memset(block, 1, bytes);
  asm volatile("" : : "r"(block) : "memory");  // the block escapes: not elided
  return block;
}

TEST(MapLargeBlocks, BlockAfterALargerFreedOneIsMappedAndGoesBack) {
  ASSERT_TRUE(lmtopo::core::map_large_blocks());
  std::free(touched_block(8u << 20));  // by default this would raise the threshold to 8 MiB
  const std::size_t before = mapped_bytes();
  char* block = touched_block(2u << 20);
  EXPECT_GE(mapped_bytes(), before + (2u << 20));
  std::free(block);
  EXPECT_EQ(mapped_bytes(), before);
  // Below the threshold: from the heap.
  char* small = touched_block(lmtopo::core::kMappedBlockBytes / 4);
  EXPECT_EQ(mapped_bytes(), before);
  std::free(small);
}

}  // namespace
#endif
