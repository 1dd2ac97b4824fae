#include "stages/neurons_common.hpp"

#include <algorithm>

#include "core/progress.hpp"
#include "mpi/collective.hpp"
#include "mpi/large_count.hpp"
#include "stages/prompt_batches.hpp"

namespace lmtopo::stages::neurons_common {
namespace {

template <typename T>
void sum_pieces(std::vector<T>& values, MPI_Datatype type, MPI_Comm comm) {
  const std::size_t piece = std::max<std::size_t>(1, mpi::max_message_elements());
  for (std::size_t at = 0; at < values.size(); at += piece)
    mpi::check(MPI_Allreduce(MPI_IN_PLACE, values.data() + at, static_cast<int>(std::min(piece, values.size() - at)), type, MPI_SUM, comm),
               "MPI_Allreduce");
}

}  // namespace

void sum_over_ranks(std::vector<float>& values, MPI_Comm comm) { sum_pieces(values, MPI_FLOAT, comm); }
void sum_over_ranks(std::vector<double>& values, MPI_Comm comm) { sum_pieces(values, MPI_DOUBLE, comm); }
void sum_over_ranks(std::vector<long long>& values, MPI_Comm comm) { sum_pieces(values, MPI_LONG_LONG, comm); }

std::vector<float> mean_pooled(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens, std::size_t batch,
                               const std::string& hook, const std::string& label, MPI_Comm comm) {
  const auto& c = net.config();
  const std::size_t P = net.point_names(hook).size();
  const auto W = static_cast<std::size_t>(model::hook_width(c, hook));
  const BatchShare share = share_batches(tokens, batch, mpi::rank(comm), mpi::size(comm));
  std::vector<float> all(tokens.size() * P * W, 0.0f);
  core::Progress progress(mpi::rank(comm) == share.reporter, label, share.hi - share.lo, "prompts", "tokens");
  mpi::on_all(comm, [&] {
    for (const auto& members : share.batches) {
      const model::Batch b = right_padded_batch(tokens, members, std::max<std::int64_t>(0, c.pad_id));
      const auto r = net.forward_requests(b, {{hook, model::Pooling::mean, hook}}).at(hook);  // [P, b, W]
      std::uint64_t batch_tokens = 0;
      for (std::size_t j = 0; j < members.size(); ++j) {
        for (std::size_t point = 0; point < P; ++point) {
          const float* from = r.values.data() + (point * members.size() + j) * W;
          std::copy(from, from + W, all.begin() + static_cast<std::ptrdiff_t>((members[j] * P + point) * W));
        }
        batch_tokens += tokens[members[j]].size();
      }
      progress.advance(members.size(), batch_tokens);
    }
  });
  progress.finish();
  sum_over_ranks(all, comm);
  return all;
}

const PromptsAndModel& study_inputs(const NeuronsOptions& o, PromptsAndModel& own) {
  if (o.loaded) return *o.loaded;
  own = load_prompts_and_model(o.prompts, {o.model_dir, o.architecture, o.device, model::WeightDType::float32, o.threads},
                               o.special_tokens);
  return own;
}

}  // namespace lmtopo::stages::neurons_common
