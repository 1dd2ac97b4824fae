#include "stages/extract.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "io/corpus.hpp"
#include "io/h5store.hpp"
#include "model/tokenizer.hpp"
#include "model/transformer.hpp"
#include "stages/prompt_batches.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::stages {
namespace {

std::uint16_t to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
  const std::uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

}  // namespace

ExtractSummary run_extract(const ExtractOptions& o, MPI_Comm comm) {
  mpi::ensure_initialized();
  const int rank = mpi::rank(comm), size = mpi::size(comm);
  if (o.pool != "last" && o.pool != "mean") throw InputError("--pool: expected last or mean, got '" + o.pool + "'");
  if (o.dtype != "float32" && o.dtype != "bfloat16")
    throw InputError("--dtype: expected float32 or bfloat16, got '" + o.dtype + "'");
  if (o.batch < 1) throw InputError("--batch: expected at least 1, got " + std::to_string(o.batch));
  if (o.hooks.empty()) throw InputError("--hook: expected at least one hook");
  for (const auto& h : o.hooks)
    if (std::find(model::portable_hooks().begin(), model::portable_hooks().end(), h) == model::portable_hooks().end()) {
      std::string names;
      for (const auto& p : model::portable_hooks()) names += (names.empty() ? "" : ", ") + p;
      throw InputError("--hook: unknown hook '" + h + "' (expected one of: " + names + ")");
    }

  PromptsAndModel loaded;
  mpi::on_all(comm, [&] {
    loaded = load_prompts_and_model(o.prompts, {o.model_dir, o.architecture, o.device,
                                                o.dtype == "bfloat16" ? model::WeightDType::bfloat16 : model::WeightDType::float32, o.threads},
                                    o.special_tokens);
  });
  const auto& prompts = loaded.prompts;
  const auto& tokens = loaded.tokens;
  auto& net = loaded.net;
  const std::size_t n = prompts.size();
  const std::size_t bs = static_cast<std::size_t>(o.batch);
  const BatchShare share = share_batches(tokens, bs, rank, size);
  const std::size_t lo = share.lo, hi = share.hi;
  const std::size_t count = hi - lo;

  const model::Pooling pooling = o.pool == "last" ? model::Pooling::last : model::Pooling::mean;
  // Outputs: each hook pooled as asked (/activations/<hook>), plus the FFN mean if asked (/ffn/mean).
  std::vector<model::Transformer::HookRequest> requests;
  std::map<std::string, std::string> dataset_of;  // request key -> dataset path
  std::map<std::string, std::string> hook_of;
  for (const auto& h : o.hooks) {
    requests.push_back({h, pooling, h});
    dataset_of[h] = "/activations/" + h;
    hook_of[h] = h;
  }
  if (o.ffn_mean) {
    requests.push_back({"mlp_act", model::Pooling::mean, "ffn_mean"});
    dataset_of["ffn_mean"] = "/ffn/mean";
    hook_of["ffn_mean"] = "mlp_act";
  }
  // Per-token FFN states of chosen prompts, in prompt order; this rank's run of them is contiguous.
  std::vector<bool> chosen(n, false);
  {
    std::map<std::string, std::size_t> row_of;
    for (std::size_t i = 0; i < n; ++i) row_of[prompts[i].id] = i;
    for (const auto& id : o.ffn_token_prompts) {
      const auto it = row_of.find(id);
      if (it == row_of.end()) throw InputError("--ffn-tokens: no prompt with id '" + id + "' in " + o.prompts);
      chosen[it->second] = true;
    }
  }
  std::uint64_t tokens_before = 0, tokens_total = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (chosen[i]) {
      if (i < lo) tokens_before += tokens[i].size();
      tokens_total += tokens[i].size();
    }
  std::vector<float> token_values;  // [points, my chosen tokens, intermediate], filled point by point below
  std::vector<std::vector<float>> token_rows;  // per chosen prompt of mine: [points, n_tokens, intermediate]
  std::vector<long long> token_prompt, token_position, token_id;
  std::map<std::string, std::vector<float>> slabs;  // request key -> [points, count, width]
  std::map<std::string, std::vector<std::int64_t>> shapes;
  std::map<std::string, std::vector<std::string>> point_names;
  for (const auto& [key, hook] : hook_of) point_names[key] = net->point_names(hook);
  const auto ffn_points = static_cast<std::size_t>(net->point_names("mlp_act").size());
  const auto ffn_width = static_cast<std::size_t>(net->config().intermediate);
  // The rank with the largest share reports it; the shares are balanced by tokens, so its ETA is the job's.
  core::Progress progress(rank == share.reporter, "extract " + o.model_dir + (size > 1 ? " (rank " + std::to_string(share.reporter) + " of " + std::to_string(size) + ")" : ""),
                          share.hi - share.lo, "prompts", "tokens");
  std::map<std::size_t, std::vector<float>> token_rows_of;  // chosen prompt of mine -> [points, n_tokens, intermediate]
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const std::size_t B = members.size();
      const model::Batch batch = right_padded_batch(tokens, members, std::max<long long>(0, net->config().pad_id));
      auto batch_requests = requests;
      const bool tokens_here = std::any_of(members.begin(), members.end(), [&](std::size_t i) { return chosen[i]; });
      if (tokens_here) batch_requests.push_back({"mlp_act", model::Pooling::none, "ffn_tokens"});
      const auto out = net->forward_requests(batch, batch_requests);
      if (tokens_here) {
        const auto& r = out.at("ffn_tokens");  // [points, B, T, I]
        const auto T = static_cast<std::size_t>(r.shape[2]), I = static_cast<std::size_t>(r.shape[3]);
        for (std::size_t j = 0; j < B; ++j) {
          const std::size_t i = members[j];
          if (!chosen[i]) continue;
          std::vector<float> rows(ffn_points * tokens[i].size() * I);
          for (std::size_t p = 0; p < ffn_points; ++p)
            for (std::size_t t = 0; t < tokens[i].size(); ++t)
              std::memcpy(rows.data() + (p * tokens[i].size() + t) * I, r.values.data() + ((p * B + j) * T + t) * I, I * sizeof(float));
          token_rows_of[i] = std::move(rows);
        }
      }
      for (const auto& req : requests) {
        const std::string& h = req.key;
        const auto& r = out.at(h);  // [points, B, W]
        const auto points = static_cast<std::size_t>(r.shape[0]), width = static_cast<std::size_t>(r.shape[2]);
        auto& slab = slabs[h];
        if (slab.empty()) {
          slab.assign(points * count * width, 0.0f);
          shapes[h] = {r.shape[0], static_cast<std::int64_t>(n), r.shape[2]};
        }
        for (std::size_t p = 0; p < points; ++p)
          for (std::size_t j = 0; j < B; ++j) {
            const float* src = r.values.data() + (p * B + j) * width;
            for (std::size_t w = 0; w < width; ++w)
              if (!std::isfinite(src[w]))
                throw InputError(o.model_dir + ": non-finite activation in hook " + h + " point " + std::to_string(p) +
                                 " for prompt '" + prompts[members[j]].id + "' (corrupt weights?)");
            std::memcpy(slab.data() + (p * count + (members[j] - lo)) * width, src, width * sizeof(float));
          }
      }
      long long batch_real_tokens = 0;
      for (auto i : members) batch_real_tokens += static_cast<long long>(tokens[i].size());
      progress.advance(B, static_cast<std::uint64_t>(batch_real_tokens));
    }
  });
  // Chosen prompts' tokens in prompt order (batches visit a window's prompts sorted by length).
  for (auto& [i, rows] : token_rows_of) {
    token_rows.push_back(std::move(rows));
    for (std::size_t t = 0; t < tokens[i].size(); ++t) {
      token_prompt.push_back(static_cast<long long>(i));
      token_position.push_back(static_cast<long long>(t));
      token_id.push_back(tokens[i][t]);
    }
  }
  progress.finish();
  // Ranks without prompts still need the shapes: take them from the model config.
  for (const auto& req : requests) {
    const std::string& h = req.key;
    long long dims[3] = {0, 0, 0};
    if (shapes.count(h)) std::copy(shapes[h].begin(), shapes[h].end(), dims);
    long long global[3];
    mpi::check(MPI_Allreduce(dims, global, 3, MPI_LONG_LONG, MPI_MAX, comm), "MPI_Allreduce");
    shapes[h] = {global[0], global[1], global[2]};
  }

  nlohmann::json config = o.config;
  io::H5Output out(o.output, comm, "activations/1", config);
  for (const auto& req : requests) {
    const std::string& h = req.key;
    const auto& s = shapes[h];
    const std::string name = dataset_of[h];
    const auto type = o.dtype == "bfloat16" ? io::DType::bf16 : io::DType::f32;
    out.create_numeric(name, type, {static_cast<std::uint64_t>(s[0]), static_cast<std::uint64_t>(s[1]), static_cast<std::uint64_t>(s[2])}, false);
    out.set_attribute(name, "points", point_names[h]);
    out.set_attribute(name, "pooling", std::string(req.pooling == model::Pooling::last ? "last" : "mean"));
    out.set_attribute(name, "hook", hook_of[h]);
    out.set_attribute(name, "dtype", o.dtype);
    out.set_attribute(name, "special_tokens", o.special_tokens);
    const auto& slab = slabs[h];
    if (type == io::DType::bf16) {
      std::vector<std::uint16_t> half(slab.size());
      for (std::size_t i = 0; i < slab.size(); ++i) half[i] = to_bf16(slab[i]);
      out.write_slab(name, 1, lo, count, half.data());
    } else {
      out.write_slab(name, 1, lo, count, slab.data());
    }
  }
  if (!o.ffn_token_prompts.empty()) {
    // [points, tokens of the chosen prompts, intermediate], float32, with each token's prompt row,
    // position and token id; this rank writes its contiguous run of tokens.
    const std::uint64_t mine = token_prompt.size();
    token_values.assign(ffn_points * mine * ffn_width, 0.0f);
    std::size_t at = 0;
    for (const auto& rows : token_rows) {
      const std::size_t nt = rows.size() / (ffn_points * ffn_width);
      for (std::size_t p = 0; p < ffn_points; ++p)
        std::memcpy(token_values.data() + (p * mine + at) * ffn_width, rows.data() + p * nt * ffn_width, nt * ffn_width * sizeof(float));
      at += nt;
    }
    out.create_numeric("/ffn/tokens/values", io::DType::f32, {ffn_points, tokens_total, ffn_width}, false);
    out.write_slab("/ffn/tokens/values", 1, tokens_before, mine, token_values.data());
    out.set_attribute("/ffn/tokens/values", "points", net->point_names("mlp_act"));
    out.set_attribute("/ffn/tokens/values", "hook", "mlp_act");
    out.set_attribute("/ffn/tokens/values", "pooling", "none");
    for (const auto& [name, v] : std::map<std::string, const std::vector<long long>*>{
             {"/ffn/tokens/prompt", &token_prompt}, {"/ffn/tokens/position", &token_position}, {"/ffn/tokens/token_id", &token_id}}) {
      out.create_numeric(name, io::DType::i64, {tokens_total}, false);
      out.write_rows(name, tokens_before, mine, v->data());
    }
  }
  std::vector<std::string> ids, langs;
  std::vector<long long> groups, ntok;
  std::size_t width = 1;
  for (std::size_t i = lo; i < hi; ++i) {
    ids.push_back(prompts[i].id);
    langs.push_back(prompts[i].lang);
    groups.push_back(prompts[i].group);
    ntok.push_back(static_cast<long long>(tokens[i].size()));
    width = std::max({width, ids.back().size(), langs.back().size()});
  }
  out.create_strings("/prompts/id", n, width, false);
  out.create_strings("/prompts/lang", n, width, false);
  out.create_numeric("/prompts/group", io::DType::i64, {n}, false);
  out.create_numeric("/prompts/n_tokens", io::DType::i64, {n}, false);
  out.write_string_rows("/prompts/id", lo, ids);
  out.write_string_rows("/prompts/lang", lo, langs);
  out.write_rows("/prompts/group", lo, count, groups.data());
  out.write_rows("/prompts/n_tokens", lo, count, ntok.data());
  out.commit();

  ExtractSummary s;
  s.prompts = static_cast<long long>(n);
  for (const auto& t : tokens) s.tokens += static_cast<long long>(t.size());
  s.points = static_cast<int>(shapes[o.hooks[0]][0]);
  for (auto c : share.prompts_per_rank) s.prompts_per_rank.push_back(static_cast<long long>(c));
  return s;
}

}  // namespace lmtopo::stages
