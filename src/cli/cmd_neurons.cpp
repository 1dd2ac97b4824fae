// `lmtopo neurons`: neuron-level studies on a model and a corpus (key_linguistic, repetition).
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "mpi/collective.hpp"
#include "stages/neurons.hpp"

namespace lmtopo::cli {
namespace {

int run_neurons_cmd(const po::variables_map& vm, const std::vector<std::string>&) {
  if (vm.count("job")) return run_job_stage(vm, "neurons");
  require_options(vm, {"model", "prompts", "output"});
  stages::NeuronsOptions o;
  o.study = vm["study"].as<std::string>();
  o.model_dir = vm["model"].as<std::string>();
  o.prompts = vm["prompts"].as<std::string>();
  o.output = vm["output"].as<std::string>();
  o.batch = vm["batch"].as<int>();
  o.threshold = vm["threshold"].as<double>();
  o.held_out = vm["held-out"].as<double>();
  o.ablation = vm["ablation"].as<std::string>();
  o.control_draws = vm["control-draws"].as<int>();
  o.seed = vm["seed"].as<std::uint64_t>();
  o.threads = vm["threads"].as<int>();
  o.device = vm["device"].as<std::string>();
  o.special_tokens = vm["special-tokens"].as<std::string>();
  o.architecture = vm["architecture"].as<std::string>();
  auto& r = o.repetition;
  r.texts = vm["texts"].as<int>();
  r.prefix_tokens = vm["prefix-tokens"].as<int>();
  r.new_tokens = vm["new-tokens"].as<int>();
  r.ngram = vm["ngram"].as<int>();
  r.min_occurrences = vm["min-occurrences"].as<int>();
  r.window = vm["window"].as<int>();
  r.min_second = vm["min-second"].as<int>();
  r.span = vm["span"].as<int>();
  r.top_k = vm["top-k"].as<long long>();
  r.activate_value = vm["activate-value"].as<double>();
  auto& sd = o.sensitive;
  if (vm.count("blocks"))
    sd.blocks = converted_items<int>(vm["blocks"].as<std::string>(), "--blocks", [](const std::string& x, std::size_t& n) { return std::stoi(x, &n); });
  sd.lengths = converted_items<double>(vm["lengths"].as<std::string>(), "--lengths", [](const std::string& x, std::size_t& n) { return std::stod(x, &n); });
  sd.families = comma_separated({vm["families"].as<std::string>()});
  sd.ridge = vm["ridge"].as<double>();
  sd.kl_threshold = vm["kl-threshold"].as<double>();
  if (vm.count("sae-decoders")) sd.sae_decoders = comma_separated({vm["sae-decoders"].as<std::string>()});
  sd.sae_tensor = vm["sae-tensor"].as<std::string>();
  auto& sp = o.spatial;
  if (vm.count("contrast")) sp.contrast = comma_separated({vm["contrast"].as<std::string>()});
  sp.sheets = comma_separated({vm["sheets"].as<std::string>()});
  sp.permutations = vm["permutations"].as<int>();
  sp.alpha = vm["alpha"].as<double>();
  sp.sheet_seed = vm["sheet-seed"].as<std::uint64_t>();
  sp.max_distance = vm["max-distance"].as<int>();
  o.config = {{"study", o.study}, {"model", o.model_dir}, {"prompts", o.prompts}, {"batch", o.batch}, {"threshold", o.threshold},
              {"held_out", o.held_out}, {"ablation", o.ablation}, {"control_draws", o.control_draws}, {"seed", o.seed},
              {"threads", o.threads}, {"device", o.device}, {"special_tokens", o.special_tokens}, {"architecture", o.architecture},
              {"hook", "mlp_act"}, {"dtype", "float32"}};
  if (o.study == "key_linguistic") o.config["pooling"] = "mean";
  if (o.study == "repetition")
    o.config["repetition"] = {{"texts", r.texts}, {"prefix_tokens", r.prefix_tokens}, {"new_tokens", r.new_tokens}, {"ngram", r.ngram},
                              {"min_occurrences", r.min_occurrences}, {"window", r.window}, {"min_second", r.min_second},
                              {"span", r.span}, {"top_k", r.top_k}, {"activate_value", r.activate_value}};
  if (o.study == "sensitive_directions")
    o.config["sensitive_directions"] = {{"blocks", sd.blocks}, {"lengths", sd.lengths}, {"families", sd.families}, {"ridge", sd.ridge},
                                        {"kl_threshold", sd.kl_threshold}, {"position", "last"}, {"sae_decoders", sd.sae_decoders},
                                        {"sae_tensor", sd.sae_tensor}};
  if (o.study == "spatial") {
    o.config["spatial"] = {{"contrast", sp.contrast}, {"sheets", sp.sheets}, {"permutations", sp.permutations}, {"alpha", sp.alpha},
                           {"sheet_seed", sp.sheet_seed}, {"max_distance", sp.max_distance}};
    o.config["hook"] = sp.sheets;
    o.config["pooling"] = "mean";
  }
#ifdef LMTOPO_TORCH_HELPER
  const auto s = stages::run_neurons(o, MPI_COMM_WORLD);
#else
  stages::NeuronsSummary s;  // not reached: main() hands `neurons` to lmtopo-torch
  throw RuntimeFailure("neurons runs in lmtopo-torch");
#endif
  if (mpi::rank() == 0 && o.study == "repetition")
    std::cout << "neurons repetition: " << s.texts << " texts (" << s.generated_tokens << " tokens generated in all conditions), " << s.kept_texts
              << " kept; top " << s.top_k << " units of " << s.layers << " blocks; repetition rate " << std::setprecision(3) << s.base_rate
              << ", deactivated " << s.deactivated_rate << ", activated " << s.activated_rate << "; generation " << std::fixed
              << std::setprecision(1) << s.generation_seconds << " s, rise " << s.rise_seconds << " s, interventions "
              << s.intervention_seconds << " s -> " << o.output << "\n";
  if (mpi::rank() == 0 && o.study == "sensitive_directions")
    std::cout << "neurons sensitive_directions: " << s.prompts << " prompts, " << s.perturbed_rows << " perturbed forward rows; activations "
              << std::fixed << std::setprecision(1) << s.activation_seconds << " s, perturbations " << s.perturbation_seconds << " s -> "
              << o.output << "\n";
  if (mpi::rank() == 0 && o.study == "spatial")
    std::cout << "neurons spatial: " << s.prompts << " prompts of " << sp.contrast.at(0) << " and " << sp.contrast.at(1) << ", " << sp.sheets.size()
              << " sheet(s) x " << s.layers << " blocks; largest Moran's I " << std::setprecision(3) << s.max_moran_i << "; " << std::fixed
              << std::setprecision(1) << s.activation_seconds << " s -> " << o.output << "\n";
  if (mpi::rank() == 0 && o.study == "key_linguistic")
    std::cout << "neurons " << o.study << ": " << s.layers << " blocks, " << s.languages << " languages, " << s.analysis_prompts
              << " prompts analysed, " << s.held_out_prompts << " held out; " << s.key_units << " key units; activations "
              << std::fixed << std::setprecision(1) << s.activation_seconds << " s, ablation " << s.ablation_seconds << " s -> " << o.output << "\n";
  return 0;
}

}  // namespace

Command make_neurons_command() {
  Command c;
  c.name = "neurons";
  c.summary = "neuron-level studies: key linguistic neurons with ablation, repetition neurons with interventions, sensitive directions (rank-parallel)";
  c.usage = "[mpirun -n P] lmtopo neurons JOB.yaml [--item K] [--force]\n   or: [mpirun -n P] lmtopo neurons --study key_linguistic --model DIR --prompts FILE.jsonl [--threshold 2] "
            "[--held-out 0.25] [--ablation zero|mean] [--control-draws 5] [--seed S] -o OUT.h5\n   or: [mpirun -n P] lmtopo neurons --study repetition --model DIR --prompts FILE.jsonl [--texts 200] "
            "[--prefix-tokens 10] [--new-tokens 200] [--top-k K] [--control-draws 5] [--seed S] -o OUT.h5\n   or: [mpirun -n P] lmtopo neurons --study sensitive_directions --model DIR --prompts FILE.jsonl [--blocks B,...] "
            "[--lengths 0,1,2,...] [--families random,towards_other,gaussian,sae] [--sae-decoders F.safetensors,...] [--kl-threshold 0.1] [--seed S] -o OUT.h5\n"
            "   or: [mpirun -n P] lmtopo neurons --study spatial --model DIR --prompts FILE.jsonl --contrast en,de [--sheets attn_output,mlp_act] "
            "[--permutations 999] [--alpha 0.05] [--sheet-seed S] [--max-distance 8] -o OUT.h5";
  c.description =
      "key_linguistic (science.md §4, docs/neurons.md): every block's FFN units (mlp_act) mean-pooled over each "
      "prompt's tokens; per block and language (prompts need `lang`) each unit's share of the mean pairwise cosine "
      "among the language's prompts, z-scored across languages (population sd); key units have z > --threshold. "
      "Each language's last --held-out share of prompts (file order) is kept out of that analysis and evaluated: "
      "per-language perplexity with each language's key units set to 0 (--ablation zero) or to their mean over the "
      "analysed prompts (mean) at every block, against --control-draws seeded draws of as many random units per block, "
      "and against no ablation. Writes OUT.h5 (neurons/1, schemas/hdf5/neurons.json) and OUT.key_neurons.csv, "
      "OUT.ablation.csv beside it. The job-spec form runs one work item per model checkpoint on the prepared corpus "
      "(section neurons of the spec) into OUTPUT/neurons/<model>/<checkpoint>.h5. "
      "repetition (science.md §6): --texts prefixes of --prefix-tokens tokens sampled from the tokenized prompts (--seed), each "
      "continued greedily for --new-tokens tokens (EOS included); a text repeats when an --ngram occurs --min-occurrences "
      "times at equal spacing within --window tokens, and is kept when its second occurrence starts at --min-second or later "
      "with --span tokens after it. Per FFN unit, the mean over kept texts of its activation over the --span tokens from the "
      "second occurrence minus the --span before; the --top-k largest (default 0.5% of all units) are repetition neurons. "
      "Every prefix is continued again with them set to 0 (deactivate) and raised by --activate-value (activate), and with as "
      "many random units per block (--control-draws draws); the repetition rate of each condition. Writes OUT.h5 and "
      "OUT.repetition_neurons.csv, OUT.repetition_rate.csv. "
      "sensitive_directions (science.md §7): each prompt's residual stream before each of --blocks (default the middle one), "
      "at its last token, pushed x + L u/|u| for each L of --lengths along a direction of each of --families: random "
      "(isotropic), towards_other (another prompt's activation there minus this one's), gaussian (v1 - v2 drawn from a "
      "Gaussian fitted to the block's activations, covariance + --ridge I), sae (a row, drawn uniformly among the non-zero ones, "
      "of an SAE decoder [features, hidden]: tensor --sae-tensor of one --sae-decoders file per block); KL(p_orig || p_perturbed) of that token's "
      "next-token distribution, mean and quantiles over prompts, and the length where the mean reaches --kl-threshold. "
      "Writes OUT.h5 and OUT.sensitivity.csv, OUT.crossing.csv. "
      "spatial (science.md §5, TopoLM's measurements): each sheet (a hook of --sheets at every block) has its units on a "
      "side x side grid (side = ceil(sqrt(units))), placed by a seeded permutation per sheet and block (--sheet-seed; the "
      "placement is recorded, or the positions a spatially trained checkpoint carries in unit_positions.safetensors); the "
      "prompts of the two --contrast groups mean-pooled (a group is a language, or LANGUAGE:scrambled: its prompts with their "
      "words in a seeded random order, TopoLM's sentences vs. word lists); per unit Welch's t (first group "
      "minus second) with Benjamini-Hochberg q; Moran's I of the t-map with queen contiguity (row-standardised) with its "
      "normal z and p and a --permutations p-value; clusters of significant units (q < --alpha, same sign, queen-connected); "
      "the mean correlation of unit responses at grid distances 1..--max-distance. Blocks are split over the ranks. Writes "
      "OUT.h5 and OUT.moran.csv.";
  c.add_options = [](po::options_description& d) {
    add_job_stage_options(d, "every checkpoint of the study");
    d.add_options()("study", po::value<std::string>()->default_value("key_linguistic"), "key_linguistic, repetition, sensitive_directions or spatial")(
        "model", po::value<std::string>(), "checkpoint folder (Hugging Face layout)")(
        "prompts", po::value<std::string>(), "JSONL prompts with lang (and group for parallel sentences), or a corpus.h5")(
        "batch", po::value<int>()->default_value(16), "prompts per forward pass")(
        "threshold", po::value<double>()->default_value(2.0), "key if the z-score across languages exceeds this")(
        "held-out", po::value<double>()->default_value(0.25), "share of each language's prompts held out for the ablation; 0: no ablation")(
        "ablation", po::value<std::string>()->default_value("zero"), "zero or mean: the value the ablated units are set to")(
        "control-draws", po::value<int>()->default_value(5), "random unit sets of the same size per block (seeded)")(
        "seed", po::value<std::uint64_t>()->default_value(0), "seed of the control draws (repetition: and of the prefixes; sensitive_directions: of the directions)")(
        "texts", po::value<int>()->default_value(200), "repetition: continuations studied")(
        "prefix-tokens", po::value<int>()->default_value(10), "repetition: tokens of each sampled prefix")(
        "new-tokens", po::value<int>()->default_value(200), "repetition: greedy tokens after each prefix")(
        "ngram", po::value<int>()->default_value(10), "repetition: length of the repeated n-gram")(
        "min-occurrences", po::value<int>()->default_value(3), "repetition: occurrences at equal spacing")(
        "window", po::value<int>()->default_value(100), "repetition: tokens that hold all the occurrences")(
        "min-second", po::value<int>()->default_value(50), "repetition: earliest start of the second occurrence of a kept text")(
        "span", po::value<int>()->default_value(30), "repetition: tokens after (and before) the second occurrence compared")(
        "top-k", po::value<long long>()->default_value(0), "repetition: repetition neurons; 0: 0.5% of all FFN units")(
        "activate-value", po::value<double>()->default_value(1.0), "repetition: added to the top-K units in the activate condition")(
        "blocks", po::value<std::string>(), "sensitive_directions: blocks before which the residual stream is perturbed (default: the middle one)")(
        "lengths", po::value<std::string>()->default_value("0,1,2,4,8,16,32,64,128"), "sensitive_directions: perturbation lengths L, increasing")(
        "families", po::value<std::string>()->default_value("random,towards_other,gaussian"), "sensitive_directions: direction families")(
        "ridge", po::value<double>()->default_value(0.01), "sensitive_directions: added to the fitted covariance's diagonal")(
        "kl-threshold", po::value<double>()->default_value(0.1), "sensitive_directions: KL whose crossing length is reported")(
        "sae-decoders", po::value<std::string>(), "sensitive_directions, family sae: SAE decoder safetensors files, one per block of --blocks, in order")(
        "sae-tensor", po::value<std::string>()->default_value("W_dec"), "sensitive_directions, family sae: the decoder tensor's name ([features, hidden])")(
        "contrast", po::value<std::string>(), "spatial: the two groups of the t-maps, e.g. en,de or en,en:scrambled")(
        "sheets", po::value<std::string>()->default_value("attn_output,mlp_act"), "spatial: hooks whose units form the sheets")(
        "permutations", po::value<int>()->default_value(999), "spatial: permutations of Moran's I's p-value")(
        "alpha", po::value<double>()->default_value(0.05), "spatial: FDR level of the significant units")(
        "sheet-seed", po::value<std::uint64_t>()->default_value(0), "spatial: seed of the units' placement on the sheets")(
        "max-distance", po::value<int>()->default_value(8), "spatial: grid distances of the correlation curve")(
        "output,o", po::value<std::string>(), "HDF5 file to write (neurons/1)");
    add_runtime_options(d);
  };
  c.positionals = {{"job", 1}};
  c.run = run_neurons_cmd;
  return c;
}

}  // namespace lmtopo::cli
