#include "core/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "core/error.hpp"

namespace lmtopo::core {
namespace {

double interval_from_environment() {
  const char* v = std::getenv("LMTOPO_PROGRESS_SECONDS");
  if (!v || !*v) return 30;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  if (*end != '\0' || !(s >= 0) || !std::isfinite(s))
    throw InputError(std::string("LMTOPO_PROGRESS_SECONDS: expected seconds >= 0 (0: no progress), got '") + v + "'");
  return s;
}

// Rates below 10 keep two significant digits ("0.08 evaluations/s"), larger ones are whole numbers.
std::string with_thousands(double x) {
  if (x > 0 && x < 10) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2g", x);
    return buf;
  }
  std::string digits = std::to_string(static_cast<long long>(std::llround(x)));
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
  return digits;
}

}  // namespace

std::string format_duration(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

std::string Progress::format(const std::string& label, std::uint64_t done, std::uint64_t total, const std::string& unit,
                             double amount_per_second, const std::string& rate_unit, double elapsed_s) {
  std::ostringstream o;
  o << label << ": " << done << "/" << total << " " << unit << " (" << (total ? 100 * done / total : 100) << "%), "
    << with_thousands(amount_per_second) << " " << (rate_unit.empty() ? unit : rate_unit) << "/s, "
    << format_duration(elapsed_s) << " elapsed, ETA ";
  if (done == 0) o << "?";
  else o << format_duration(elapsed_s * static_cast<double>(total - done) / static_cast<double>(done));
  return o.str();
}

Progress::Progress(bool enabled, std::string label, std::uint64_t total, std::string unit, std::string rate_unit)
    : enabled_(enabled), label_(std::move(label)), unit_(std::move(unit)), rate_unit_(std::move(rate_unit)), total_(total) {
  interval_s_ = interval_from_environment();  // on every rank, so that a bad value stops all of them
  enabled_ = enabled_ && interval_s_ > 0 && total_ > 0;
  if (!enabled_) return;
  tty_ = ::isatty(STDERR_FILENO) == 1;
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (!finished_ && !std::uncaught_exceptions()) finish();
  else if (tty_ && enabled_ && !finished_) std::cerr << "\n";
}

void Progress::advance(std::uint64_t items, std::uint64_t amount) {
  done_ += items;
  amount_ += amount;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? 0.25 : interval_s_)) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  // Work too short for a periodic line stays quiet; otherwise the last line says where it ended.
  const bool printed_any = printed_done_ != ~0ull;
  if (enabled_ && printed_any && (tty_ || printed_done_ != done_)) print(true);
}

void Progress::print(bool last) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(rate_unit_.empty() ? done_ : amount_) / elapsed : 0;
  const std::string line = format(label_, done_, total_, unit_, rate, rate_unit_, elapsed);
  printed_done_ = done_;
  if (tty_) std::cerr << "\r\033[K" << line << (last ? "\n" : "") << std::flush;
  else std::cerr << line << "\n" << std::flush;
}

}  // namespace lmtopo::core
