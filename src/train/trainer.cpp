#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/jobspec.hpp"
#include "io/h5store.hpp"
#include "io/safetensors.hpp"
#include "model/tokenizer.hpp"
#include "model/torch_transformer.hpp"
#include "mpi/collective.hpp"
#include "train/bpe_trainer.hpp"
#include "train/spatial_loss.hpp"

namespace fs = std::filesystem;

namespace lmtopo::train {
namespace {

using torch::Tensor;

model::ModelConfig config_of(const TrainOptions& o) {
  model::ModelConfig c;
  c.model_type = c.family = "gpt_neox";
  c.num_layers = o.layers;
  c.hidden = o.hidden;
  c.heads = o.heads;
  c.kv_heads = o.heads;
  c.head_dim = o.hidden / o.heads;
  c.intermediate = o.intermediate;
  c.vocab = o.vocab_size;
  c.norm_eps = 1e-5;
  c.activation = "gelu";
  c.parallel_residual = true;
  c.rotary_pct = o.rotary_pct;
  c.rope_theta = 10000.0;
  c.attention_bias = true;
  c.bos_id = 0;
  c.eos_id = 0;
  c.pad_id = 1;
  return c;
}

nlohmann::json hf_config(const TrainOptions& o) {
  return {{"architectures", {"GPTNeoXForCausalLM"}},
          {"model_type", "gpt_neox"},
          {"vocab_size", o.vocab_size},
          {"hidden_size", o.hidden},
          {"num_hidden_layers", o.layers},
          {"num_attention_heads", o.heads},
          {"intermediate_size", o.intermediate},
          {"hidden_act", "gelu"},
          {"rotary_pct", o.rotary_pct},
          {"rotary_emb_base", 10000},
          {"max_position_embeddings", std::max(2048, o.seq_len)},
          {"layer_norm_eps", 1e-5},
          {"use_parallel_residual", true},
          {"tie_word_embeddings", false},
          {"attention_bias", true},
          {"bos_token_id", 0},
          {"eos_token_id", 0},
          {"pad_token_id", 1},
          {"initializer_range", 0.02},
          {"hidden_dropout", 0.0},
          {"attention_dropout", 0.0},
          {"torch_dtype", "float32"},
          {"use_cache", true}};
}

// Windows of seq_len+1 tokens over the EOS-joined token stream.
std::vector<std::vector<std::int64_t>> windows(const model::Tokenizer& tok, const std::vector<std::string>& texts, int seq_len) {
  std::vector<std::int64_t> stream;
  for (const auto& t : texts) {
    const auto ids = tok.encode(t);
    stream.insert(stream.end(), ids.begin(), ids.end());
    stream.push_back(0);  // <|endoftext|>
  }
  std::vector<std::vector<std::int64_t>> out;
  const auto S = static_cast<std::size_t>(seq_len);
  for (std::size_t i = 0; i + S + 1 <= stream.size(); i += S)
    out.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(i), stream.begin() + static_cast<std::ptrdiff_t>(i + S + 1));
  return out;
}

Tensor stack_windows(const std::vector<std::vector<std::int64_t>>& all, const std::vector<std::size_t>& pick) {
  std::vector<std::int64_t> flat;
  for (auto i : pick) flat.insert(flat.end(), all[i].begin(), all[i].end());
  const auto n = static_cast<std::int64_t>(pick.size()), len = pick.empty() ? 0 : static_cast<std::int64_t>(all[pick[0]].size());
  return torch::from_blob(flat.data(), {n, len}, torch::kInt64).clone();
}

// Sum of next-token cross-entropies over the windows; `keep` sees the hook points (spatial loss).
Tensor loss_sum(const model::detail::TorchTransformer& net, const Tensor& windows_t,
                const std::function<void(const char*, const Tensor&)>& keep = [](const char*, const Tensor&) {}) {
  const Tensor inputs = windows_t.slice(1, 0, windows_t.size(1) - 1), targets = windows_t.slice(1, 1);
  const Tensor logits = net.logits(inputs, keep);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

double allreduce_sum(MPI_Comm comm, double v) {
  double out = v;
  if (mpi::initialized()) mpi::check(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, comm), "MPI_Allreduce");
  return out;
}

std::string spatial_sheet_list(const SpatialTrainingOptions& s) {
  std::string out;
  for (const auto& h : s.sheets) out += (out.empty() ? "" : ",") + h;
  return out;
}

// DIR/train_log.h5 (train-log/1), written collectively (rank 0's rows).
void write_train_log(const TrainResult& r, const TrainOptions& o, MPI_Comm comm) {
  io::H5Output log(r.log_path, comm, "train-log/1", o.config);
  const bool root = mpi::rank(comm) == 0;
  const auto n = static_cast<std::uint64_t>(r.loss.size()), k = static_cast<std::uint64_t>(r.saved_steps.size());
  std::vector<long long> steps(r.saved_steps.begin(), r.saved_steps.end());
  log.create_numeric("/train/loss", io::DType::f64, {n}, false);
  log.create_numeric("/train/lr", io::DType::f64, {n}, false);
  log.create_numeric("/train/cross_entropy", io::DType::f64, {n}, false);
  log.create_numeric("/heldout/step", io::DType::i64, {k}, false);
  log.create_numeric("/heldout/loss", io::DType::f64, {k}, false);
  log.write_rows("/train/loss", 0, root ? n : 0, r.loss.data());
  log.write_rows("/train/lr", 0, root ? n : 0, r.lr.data());
  log.write_rows("/train/cross_entropy", 0, root ? n : 0, r.cross_entropy.data());
  if (o.spatial.enabled) {
    log.create_numeric("/train/spatial_loss", io::DType::f64, {n}, false);
    log.write_rows("/train/spatial_loss", 0, root ? n : 0, r.spatial_loss.data());
    log.set_attribute("/train/spatial_loss", "alpha", o.spatial.alpha);
    log.set_attribute("/train/spatial_loss", "sheets", spatial_sheet_list(o.spatial));
  }
  log.write_rows("/heldout/step", 0, root ? k : 0, steps.data());
  log.write_rows("/heldout/loss", 0, root ? k : 0, r.heldout_loss.data());
  log.commit();
}

}  // namespace

void split_heldout(TrainOptions& o, const std::vector<std::string>& texts, std::size_t every) {
  for (std::size_t i = 0; i < texts.size(); ++i) (i % every == 0 ? o.heldout_texts : o.train_texts).push_back(texts[i]);
}

std::vector<int> checkpoint_schedule(int steps, int every) { return core::checkpoint_schedule(steps, every); }

TrainResult train_model(const TrainOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  if (model::configured_compute_threads() == 0) model::configure_compute_threads();
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  if (o.batch % size != 0)
    throw InputError("--batch: the global batch (" + std::to_string(o.batch) + ") must be divisible by the ranks (" +
                     std::to_string(size) + ")");
  if (o.hidden % o.heads != 0) throw InputError("--hidden: expected a multiple of --heads");
  if (static_cast<int>((o.hidden / o.heads) * o.rotary_pct) % 2 != 0)
    throw InputError("--hidden/--heads: the rotary part of a head (head size x " + std::to_string(o.rotary_pct) +
                     ") must be even");
  if (o.train_texts.empty()) throw InputError("--corpus: no training texts");
  check_spatial_training(o.spatial, "--spatial-");
  TrainResult result;

  // The tokenizer is trained once, on rank 0, and shared as its tokenizer.json.
  const std::string tok_path = (fs::path(o.output_dir) / "tokenizer.json").string();
  std::string tok_json;
  mpi::on_root(comm, [&] {
    fs::create_directories(o.output_dir);
    tok_json = train_byte_level_bpe(o.train_texts, o.vocab_size, {"<|endoftext|>", "<|padding|>"}).dump();
    std::ofstream(tok_path) << tok_json;
  });
  mpi::check(MPI_Barrier(comm), "MPI_Barrier");
  const auto tok = model::Tokenizer::load(tok_path);
  const auto train = windows(*tok, o.train_texts, o.seq_len);
  const auto heldout = windows(*tok, o.heldout_texts, o.seq_len);
  if (train.size() < static_cast<std::size_t>(o.batch))
    throw InputError("--seq-len/--batch: the corpus gives only " + std::to_string(train.size()) + " windows of " +
                     std::to_string(o.seq_len) + " tokens");

  torch::manual_seed(o.seed);
  auto init = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    const bool norm = name.find("layernorm.weight") != std::string::npos || name.find("layer_norm.weight") != std::string::npos;
    if (norm) return torch::ones(shape);
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) return torch::zeros(shape);
    return torch::randn(shape) * 0.02;
  };
  model::detail::TorchTransformer net(config_of(o), init, [](const std::string&) { return true; }, torch::kFloat32);
  std::vector<Tensor> params;
  for (const auto& [name, t] : net.parameters()) params.push_back(t.set_requires_grad(true));
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).weight_decay(o.weight_decay));
  std::unique_ptr<SpatialLoss> spatial;
  if (o.spatial.enabled) spatial = std::make_unique<SpatialLoss>(o.spatial, config_of(o));

  auto heldout_loss = [&] {
    torch::NoGradGuard no_grad;
    double sum = 0, tokens = 0;
    for (std::size_t i = static_cast<std::size_t>(rank); i < heldout.size(); i += static_cast<std::size_t>(size)) {
      sum += loss_sum(net, stack_windows(heldout, {i})).item<double>();
      tokens += static_cast<double>(o.seq_len);
    }
    sum = allreduce_sum(comm, sum);
    tokens = allreduce_sum(comm, tokens);
    return tokens > 0 ? sum / tokens : 0.0;
  };
  auto save = [&](int step) {
    result.saved_steps.push_back(step);
    result.heldout_loss.push_back(heldout_loss());
    mpi::on_root(comm, [&] {
      const fs::path dir = fs::path(o.output_dir) / ("step" + std::to_string(step));
      fs::create_directories(dir);
      std::vector<Tensor> keep;
      std::vector<io::TensorToWrite> out;
      for (const auto& [name, t] : net.parameters()) {
        keep.push_back(t.detach().contiguous());
        out.push_back({name, io::TensorDType::f32, std::vector<std::int64_t>(t.sizes().begin(), t.sizes().end()),
                       keep.back().data_ptr()});
      }
      io::write_safetensors((dir / "model.safetensors").string(), out);
      std::ofstream(dir / "config.json") << hf_config(o).dump(2) << "\n";
      fs::copy_file(tok_path, dir / "tokenizer.json", fs::copy_options::overwrite_existing);
      if (spatial) spatial->save_positions(dir.string());
    });
  };

  // One permutation of the windows per epoch, identical on every rank.
  std::mt19937_64 rng(o.seed);
  std::vector<std::size_t> order;
  const auto per_rank = static_cast<std::size_t>(o.batch / size);
  std::size_t cursor = 0;
  for (int step = 0; step < o.steps; ++step) {
    if (std::binary_search(o.save_steps.begin(), o.save_steps.end(), step)) save(step);
    std::vector<std::size_t> global;
    while (global.size() < static_cast<std::size_t>(o.batch)) {
      if (cursor == order.size()) {
        order.resize(train.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      global.push_back(order[cursor++]);
    }
    const std::vector<std::size_t> mine(global.begin() + static_cast<std::ptrdiff_t>(per_rank * static_cast<std::size_t>(rank)),
                                        global.begin() + static_cast<std::ptrdiff_t>(per_rank * static_cast<std::size_t>(rank + 1)));
    const double lr = step < o.warmup ? o.lr * (step + 1) / o.warmup
                                      : o.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * (step - o.warmup) / std::max(1, o.steps - o.warmup))));
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    const auto started = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    const double denom = static_cast<double>(o.batch) * o.seq_len;
    Tensor loss = loss_sum(net, stack_windows(train, mine), spatial ? spatial->recorder() : [](const char*, const Tensor&) {}) / denom;
    result.cross_entropy.push_back(allreduce_sum(comm, loss.item<double>()));
    if (spatial) {
      // The same SL on every rank; with alpha = 0 it is measured only, so the step is the plain trainer's.
      const Tensor sl = spatial->step_loss(comm, o.spatial.alpha > 0);
      result.spatial_loss.push_back(sl.item<double>());
      if (o.spatial.alpha > 0) loss = loss + (o.spatial.alpha * sl).to(torch::kFloat32);
    }
    loss.backward();
    // Data parallel: the global-mean gradient is the sum of the ranks' parts.
    for (auto& p : params) {
      Tensor g = p.grad();
      if (mpi::initialized() && size > 1)
        mpi::check(MPI_Allreduce(MPI_IN_PLACE, g.data_ptr<float>(), static_cast<int>(g.numel()), MPI_FLOAT, MPI_SUM, comm),
                   "MPI_Allreduce");
    }
    torch::nn::utils::clip_grad_norm_(params, o.clip);
    optimizer.step();
    result.loss.push_back(result.cross_entropy.back() + (spatial ? o.spatial.alpha * result.spatial_loss.back() : 0.0));
    result.lr.push_back(lr);
    result.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  if (std::binary_search(o.save_steps.begin(), o.save_steps.end(), o.steps)) save(o.steps);

  result.log_path = (fs::path(o.output_dir) / "train_log.h5").string();
  write_train_log(result, o, comm);
  return result;
}

}  // namespace lmtopo::train
