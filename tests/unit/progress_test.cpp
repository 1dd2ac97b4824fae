// The progress line's format (core/progress.hpp): counts, percentage, rate, elapsed and ETA.
#include <gtest/gtest.h>

#include "core/progress.hpp"

using lmtopo::core::format_duration;
using lmtopo::core::Progress;

TEST(Progress, DurationsReadAsClockTimes) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65.4), "1:05");
  EXPECT_EQ(format_duration(3 * 3600 + 62), "3:01:02");
}

TEST(Progress, LineHasCountsRateElapsedAndEta) {
  // 40 of 160 prompts in 20 s: 3 times as long again to go.
  EXPECT_EQ(Progress::format("extract m", 40, 160, "prompts", 2130.4, "tokens", 20),
            "extract m: 40/160 prompts (25%), 2,130 tokens/s, 0:20 elapsed, ETA 1:00");
  EXPECT_EQ(Progress::format("zigzag", 0, 31, "layers", 0, "", 0), "zigzag: 0/31 layers (0%), 0 layers/s, 0:00 elapsed, ETA ?");
  EXPECT_EQ(Progress::format("x", 7, 7, "items", 1234567, "ops", 3723), "x: 7/7 items (100%), 1,234,567 ops/s, 1:02:03 elapsed, ETA 0:00");
  EXPECT_EQ(Progress::format("n", 5, 49, "evaluations", 0.0758, "", 66), "n: 5/49 evaluations (10%), 0.076 evaluations/s, 1:06 elapsed, ETA 9:41");
}
