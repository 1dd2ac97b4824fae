// Forward throughput of lmtopo's transformer runtime: random token batches through a checkpoint
// folder, hooks pooled at the last token (what `extract` does). Prints one JSON line with tokens/s and
// the peak resident memory, for bench/forward_vs_transformers.py to set against transformers.
// Usage: bench_forward MODEL_DIR BATCH SEQ ITERS [cpu|cuda] [float32|bfloat16|float16]
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include "core/error.hpp"
#include "model/transformer.hpp"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: bench_forward MODEL_DIR BATCH SEQ ITERS [cpu|cuda] [float32|bfloat16|float16]\n";
    return 2;
  }
  using lmtopo::model::WeightDType;
  const std::string device = argc > 5 ? argv[5] : "cpu", dtype_name = argc > 6 ? argv[6] : "float32";
  const WeightDType dtype = dtype_name == "bfloat16"  ? WeightDType::bfloat16
                            : dtype_name == "float16" ? WeightDType::float16
                                                      : WeightDType::float32;
  try {
    auto model = lmtopo::model::Transformer::load(argv[1], dtype, "", device);
    lmtopo::model::Batch b;
    b.batch = std::atoll(argv[2]);
    b.seq = std::atoll(argv[3]);
    const int iters = std::atoi(argv[4]);
    std::mt19937_64 rng(1);
    std::uniform_int_distribution<std::int64_t> token(0, model->config().vocab - 1);
    for (std::int64_t i = 0; i < b.batch * b.seq; ++i) b.ids.push_back(token(rng));
    b.mask.assign(b.ids.size(), 1);
    const std::vector<std::string> hooks{"block_output"};
    model->forward(b, hooks, lmtopo::model::Pooling::last);  // warm-up (allocator, kernels)
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) model->forward(b, hooks, lmtopo::model::Pooling::last);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    std::cout << "{\"tokens_per_s\": " << static_cast<double>(b.batch * b.seq * iters) / s << ", \"seconds\": " << s
              << ", \"max_rss_mib\": " << static_cast<double>(u.ru_maxrss) / 1024.0 << ", \"device\": \""
              << model->device_name() << "\"}\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_forward: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
