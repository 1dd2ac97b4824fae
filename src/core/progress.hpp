// Progress of long work on stderr: items done of total, the rate of a work quantity (tokens/s, ops/s),
// elapsed time and ETA. On a terminal, one live line rewritten in place (at most 4 times a second);
// otherwise (SLURM logs, pipes) a plain line every LMTOPO_PROGRESS_SECONDS seconds (default 30; 0
// turns progress off) and, if any was printed, a last one at the end (short work stays quiet). Only the reporting rank makes an enabled one.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace lmtopo::core {

class Progress {
 public:
  // `label`: what is running ("extract pythia/step1000"); `unit`: the items ("prompts"); `rate_unit`:
  // the quantity whose rate is shown ("tokens"), empty for items.
  Progress(bool enabled, std::string label, std::uint64_t total, std::string unit, std::string rate_unit = "");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::uint64_t items, std::uint64_t amount = 0);
  void finish();

  // The line as printed (for tests and logs); public so that its format is testable without a clock.
  static std::string format(const std::string& label, std::uint64_t done, std::uint64_t total, const std::string& unit,
                            double amount_per_second, const std::string& rate_unit, double elapsed_s);

 private:
  void print(bool last);
  bool enabled_, tty_ = false, finished_ = false;
  std::string label_, unit_, rate_unit_;
  std::uint64_t total_, done_ = 0, amount_ = 0, printed_done_ = ~0ull;
  double interval_s_ = 30;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// "1:05:09", "2:03"
std::string format_duration(double seconds);

}  // namespace lmtopo::core
