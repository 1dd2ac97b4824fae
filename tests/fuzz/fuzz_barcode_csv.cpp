// Barcode CSV (paper 1's released layout), then its layer summaries for L read from the bars.
#include <algorithm>

#include "fuzz_common.hpp"
#include "io/barcode_csv.hpp"
#include "topology/layer_summaries.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("bars.csv", data, size);
  return fuzz::expect_parse_or_input_error([&] {
    const auto bars = lmtopo::io::read_position_bars_csv(path);
    int max_death = 0;
    for (const auto& b : bars) max_death = std::max(max_death, b.death);
    const int L = (max_death + 1) / 2;
    if (L < 2 || L > 256) return;
    try {
      const auto layer_bars = lmtopo::topology::to_layer_bars(bars, L, 1);
      (void)lmtopo::topology::summarize_layers(layer_bars, L, 1);
    } catch (const std::invalid_argument&) {  // what the CLI turns into an InputError naming the file
    }
  });
}
