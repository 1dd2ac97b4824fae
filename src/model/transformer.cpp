// The libtorch implementation of model/transformer.hpp: GPT-NeoX (parallel or sequential residual,
// partial rotary) and Llama (RMSNorm, rotary, grouped-query attention, SwiGLU), following the
// Hugging Face modelling code's order of operations so that outputs agree to float32 rounding.
#include "model/transformer.hpp"

#include <dlfcn.h>
#include <sched.h>

#include "model/torch_transformer.hpp"


#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "core/error.hpp"
#include "io/safetensors.hpp"

namespace lmtopo::model {


using detail::TorchTransformer;
using detail::torch_dtype;

void match_threads_to_cpu_affinity() {
  // mpirun binds each rank to its cores; libtorch and OpenBLAS otherwise start one thread per core of
  // the machine, which oversubscribes the rank's cores (measured: 4.7x slower extraction at 1 rank).
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return;
  const int cpus = std::max(1, CPU_COUNT(&set));
  torch::set_num_threads(cpus);
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(cpus);
}

std::unique_ptr<Transformer> Transformer::load(const std::string& dir, WeightDType dtype, const std::string& architecture) {
  match_threads_to_cpu_affinity();
  ModelConfig c = read_model_config(dir, architecture);
  io::Checkpoint ckpt(dir);
  auto from_checkpoint = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    const auto& v = ckpt.tensor(name);
    if (v.shape != shape) {
      std::string want, got;
      for (auto d : shape) want += (want.empty() ? "" : "x") + std::to_string(d);
      for (auto d : v.shape) got += (got.empty() ? "" : "x") + std::to_string(d);
      throw InputError(v.file + ": tensor " + name + ": shape " + got + " disagrees with config.json (expected " + want + ")");
    }
    // A copy: the memory map is released when the checkpoint goes out of scope.
    return torch::from_blob(const_cast<void*>(v.data), v.shape, torch_dtype(v.dtype)).clone();
  };
  return std::make_unique<TorchTransformer>(std::move(c), from_checkpoint,
                                            [&](const std::string& name) { return ckpt.has(name); }, torch_dtype(dtype));
}

}  // namespace lmtopo::model
