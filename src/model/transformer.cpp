// The libtorch implementation of model/transformer.hpp: GPT-NeoX (parallel or sequential residual,
// partial rotary) and Llama (RMSNorm, rotary, grouped-query attention, SwiGLU), following the
// Hugging Face modelling code's order of operations so that outputs agree to float32 rounding.
#include "model/transformer.hpp"

#include <dlfcn.h>
#include <sched.h>

#include "model/torch_transformer.hpp"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/provenance.hpp"
#include "io/safetensors.hpp"

namespace lmtopo::model {


using detail::TorchTransformer;
using detail::torch_dtype;

namespace {
int g_configured_threads = 0;
}

int configured_compute_threads() { return g_configured_threads; }

namespace {
// Whether the BLAS loaded is OpenBLAS with its own pthread pool (openblas_get_parallel() == 1), as
// opposed to one that runs on libtorch's OpenMP threads (OpenMP OpenBLAS, MKL) or a sequential one.
bool blas_has_own_thread_pool() {
  using GetParallel = int (*)();
  auto* f = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  return f && f() == 1;
}
}  // namespace

void configure_compute_threads(int threads) {
  // By default the CPUs of this process's binding: mpirun binds each rank to its cores, and libtorch and
  // OpenBLAS otherwise start one thread per core of the machine, which oversubscribes the rank's cores
  // (measured: 4.7x slower extraction at 1 rank).
  cpu_set_t set;
  CPU_ZERO(&set);
  const int bound = sched_getaffinity(0, sizeof set, &set) == 0 ? std::max(1, CPU_COUNT(&set)) : 0;
  const int n = threads > 0 ? threads : std::max(1, bound);
  // mpirun binds each rank to one core by default: more threads than that share it (measured: batch-1
  // generation 2.8x slower at 2 threads on one core than on two).
  if (bound > 0 && n > bound)
    std::cerr << "lmtopo: warning: " << n << " compute threads on the " << bound << " CPU(s) this process is bound to; bind each rank to "
              << n << " cores (mpirun --map-by slot:PE=" << n << ", srun --cpus-per-task=" << n << ") or use fewer threads\n";
  // A pthread OpenBLAS and libtorch's OpenMP pool are two pools of n threads on the same n cores; the
  // OpenMP workers spin between element-wise ops while OpenBLAS's need the cores for the GEMMs (measured
  // at 2 threads on SmolLM2: batch-1 generation 3.6x, eval 2.4x, extraction 1.9x slower than with
  // libtorch's pool at one thread). So the GEMMs get the n threads and element-wise ops run on one.
  const bool own_pool = blas_has_own_thread_pool();
  torch::set_num_threads(own_pool ? 1 : n);
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
  g_configured_threads = n;
  core::set_compute_threads(n);
  core::set_intra_op_threads(own_pool ? 1 : n);
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
    if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos)
      throw InputError("device: expected cuda:N with N a GPU index, got '" + name + "'");
    index = std::stoi(digits);
    if (index >= count)
      throw InputError("device: '" + name + "' asked for, but only " + std::to_string(count) + " GPU(s) are visible");
  }
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Every checkpoint tensor must be used by the forward pass: one left over means the checkpoint has a
// part lmtopo does not implement (a bias the config did not announce, an extra head), and states
// computed without it would differ from transformers'. Exceptions, named: buffers that transformers
// recomputes (causal masks, rotary inverse frequencies), and a stored copy of tied embeddings that
// is identical to them.
void refuse_unused_tensors(const io::Checkpoint& ckpt, const ModelConfig& config, const std::set<std::string>& consumed) {
  static const std::vector<std::string> derived = {".attn.bias", ".attn.masked_bias", ".attention.bias",
                                                   ".attention.masked_bias", ".rotary_emb.inv_freq"};
  const std::string embed = config.family == "gpt_neox" ? "gpt_neox.embed_in.weight"
                            : config.family == "llama"  ? "model.embed_tokens.weight"
                            : config.family == "gpt2"   ? "transformer.wte.weight"
                                                            : "transformer.word_embeddings.weight";
  const std::string head = config.family == "gpt_neox" ? "embed_out.weight" : "lm_head.weight";
  for (const auto& name : ckpt.names()) {
    if (consumed.count(name)) continue;
    if (std::any_of(derived.begin(), derived.end(), [&](const std::string& d) { return ends_with(name, d); })) continue;
    const auto& t = ckpt.tensor(name);
    if (name == head && config.tie_embeddings) {
      const auto& e = ckpt.tensor(embed);
      if (t.shape == e.shape && t.dtype == e.dtype && t.bytes == e.bytes && std::memcmp(t.data, e.data, t.bytes) == 0) continue;
      throw InputError(t.file + ": tensor " + name + ": differs from " + embed +
                       " although config.json says tie_word_embeddings: true (transformers would use the embeddings)");
    }
    throw InputError(t.file + ": tensor " + name + ": not used by lmtopo's " + config.model_type +
                     " forward pass (a part of the checkpoint lmtopo does not implement); refusing rather than ignoring it");
  }
}

}  // namespace

std::unique_ptr<Transformer> Transformer::load(const std::string& dir, WeightDType dtype, const std::string& architecture,
                                               const std::string& device) {
  if (configured_compute_threads() == 0) configure_compute_threads();
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
  std::set<std::string> consumed;
  auto from_checkpoint = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    const auto& v = ckpt.tensor(name);
    if (v.shape != shape) {
      std::string want, got;
      for (auto d : shape) want += (want.empty() ? "" : "x") + std::to_string(d);
      for (auto d : v.shape) got += (got.empty() ? "" : "x") + std::to_string(d);
      throw InputError(v.file + ": tensor " + name + ": shape " + got + " disagrees with config.json (expected " + want + ")");
    }
    if (v.dtype == io::TensorDType::i32) throw InputError(v.file + ": tensor " + name + ": dtype I32 is not a weight dtype (F32, F16 or BF16)");
    consumed.insert(name);
    // A copy: the memory map is released when the checkpoint goes out of scope.
    return torch::from_blob(const_cast<void*>(v.data), v.shape, torch_dtype(v.dtype)).clone();
  };
  auto model = std::make_unique<TorchTransformer>(std::move(c), from_checkpoint,
                                                  [&](const std::string& name) { return ckpt.has(name); }, torch_dtype(dtype), where);
  refuse_unused_tensors(ckpt, model->config(), consumed);
  return model;
}

}  // namespace lmtopo::model
