// The libtorch implementation of model/transformer.hpp: GPT-NeoX (parallel or sequential residual,
// partial rotary) and Llama (RMSNorm, rotary, grouped-query attention, SwiGLU), following the
// Hugging Face modelling code's order of operations so that outputs agree to float32 rounding.
#include "model/transformer.hpp"

#include <dlfcn.h>
#include <sched.h>

#include "model/torch_transformer.hpp"


#include <cmath>
#include <cstdlib>
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

namespace {

// "cpu", "cuda" (this rank's GPU: the launcher's node-local rank modulo the visible GPUs) or "cuda:N".
torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name != "cuda" && name.rfind("cuda:", 0) != 0)
    throw InputError("device: expected cpu, cuda or cuda:N, got '" + name + "'");
  if (!torch::cuda::is_available())
    throw InputError("device: '" + name + "' asked for, but libtorch sees no CUDA GPU here (none visible, or a CPU-only libtorch)");
  const auto count = static_cast<int>(torch::cuda::device_count());
  int index = 0;
  if (name == "cuda") {
    for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"})
      if (const char* v = std::getenv(var)) {
        index = std::atoi(v) % count;
        break;
      }
  } else {
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
      throw InputError("device: expected cuda:N with N a GPU index, got '" + name + "'");
    index = std::stoi(digits);
    if (index >= count)
      throw InputError("device: '" + name + "' asked for, but only " + std::to_string(count) + " GPU(s) are visible");
  }
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
}

}  // namespace

std::unique_ptr<Transformer> Transformer::load(const std::string& dir, WeightDType dtype, const std::string& architecture,
                                               const std::string& device) {
  match_threads_to_cpu_affinity();
  const torch::Device where = resolve_device(device);
  if (dtype == WeightDType::float16 && where.is_cpu()) {
    // libtorch 1.x has no float16 CPU kernels for LayerNorm/matmul; say so before loading anything.
    try {
      const auto probe = torch::ones({2, 2}, torch::kFloat16);
      (void)torch::layer_norm(torch::matmul(probe, probe), {2});
    } catch (const c10::Error&) {
      throw InputError("dtype float16 on cpu: this libtorch (" + std::string(TORCH_VERSION) +
                       ") has no float16 CPU kernels; use bfloat16 or float32 on cpu, or float16 on cuda");
    }
  }
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
                                            [&](const std::string& name) { return ckpt.has(name); }, torch_dtype(dtype), where);
}

}  // namespace lmtopo::model
