// The subcommand table. Each subcommand owns one option table; the same table parses the command
// line, prints `lmtopo <sub> --help` and generates docs/cli.md, so the docs cannot drift.
#pragma once
#include <boost/program_options.hpp>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include <stdexcept>

#include "core/error.hpp"
#include "model/transformer.hpp"
#include "topology/reducers.hpp"

namespace lmtopo::cli {

namespace po = boost::program_options;

struct Positional {
  std::string name;   // option name the positional maps to
  int max_count;      // -1 for unlimited
};

struct Command {
  std::string name;
  std::string summary;           // one line for `lmtopo --help`
  std::string usage;             // e.g. "lmtopo barcode --format fzz IN -o OUT [options]"
  std::string description;       // a paragraph for --help and docs/cli.md
  std::function<void(po::options_description&)> add_options;
  std::vector<Positional> positionals;
  // What arguments after a bare `--` are for ("PETSc options", "sbatch options"); empty: the
  // subcommand takes none, and any given are an error rather than silently ignored.
  std::string passthrough_use;
  std::function<int(const po::variables_map&, const std::vector<std::string>& passthrough)> run;
};

// All subcommands that work, in the order `lmtopo --help` lists them.
const std::vector<Command>& commands();

// Builds the option table of `cmd` (including --help).
po::options_description options_of(const Command& cmd);

// The Markdown CLI reference (docs/cli.md).
std::string cli_reference_markdown();

// Registration functions, one per subcommand file.
Command make_barcode_command();
Command make_summarize_command();
Command make_validate_command();
Command make_inspect_command();
Command make_convert_command();
Command make_plan_command();
Command make_prepare_command();
Command make_zigzag_command();
Command make_sweep_command();
Command make_extract_command();
Command make_eval_command();
Command make_generate_command();
Command make_neurons_command();
Command make_aggregate_command();
Command make_report_command();
Command make_prune_command();
Command make_train_command();
Command make_run_command();
Command make_submit_command();
Command make_status_command();

// InputError naming the first option of `names` that is missing (for the one-off forms, whose
// options are required only when no job spec is given).
void require_options(const po::variables_map& vm, std::initializer_list<const char*> names);

// The non-empty items of comma-separated option values ("a,b" or repeated options, or both).
std::vector<std::string> comma_separated(const std::vector<std::string>& values);

// --dualize's value, checked (auto, true or false; topology::resolve_dualize applies it).
std::string dualize_option(const po::variables_map& vm);

// Refuses `option`, when `given`, unless `reducer` is the distributed one (the only reducer that
// `what`: "deals pivots to ranks", ...).
void require_distributed_reducer(const char* option, bool given, const std::string& reducer, const char* what);

// --column-order's value, checked (topology::require_column_order), and refused unless `reducer` is
// the distributed one (the only reducer that takes columns in a chosen order); its help text.
std::string column_order_option(const po::variables_map& vm, const std::string& reducer);
extern const char* const kColumnOrderHelp;
// --top-ranks: its help, and its value checked (the distributed reducer's; 0 or more, -1 for auto:
// topology::auto_top_ranks).
extern const char* const kTopRanksHelp;
int top_ranks_option(const po::variables_map& vm, const std::string& reducer);
// --dualize's help (barcode and zigzag).
extern const char* const kDualizeHelp;

// How the distributed reducer takes the steps in index order: --speculate-runs (0, off, or a run
// length of at most 2^20 columns) or --row-split, not both; and its upper-first steps: row loans
// unless --no-row-loans. None of them unless `reducer` is the distributed one; their help texts.
topology::StepMethods step_methods_option(const po::variables_map& vm, const std::string& reducer);
extern const char* const kSpeculateRunsHelp;
extern const char* const kRowSplitHelp;
extern const char* const kNoRowLoansHelp;

// The items of a comma-separated option, each converted by std::sto* (`convert(item, used)`); an item
// that does not convert whole is an error naming the option.
template <typename T, typename Convert>
std::vector<T> converted_items(const std::string& text, const std::string& option, Convert convert) {
  std::vector<T> out;
  for (const auto& item : comma_separated({text})) {
    std::size_t used = 0;
    try {
      out.push_back(convert(item, used));
    } catch (const std::logic_error&) {
      used = 0;
    }
    if (used != item.size()) throw InputError(option + ": '" + item + "' in '" + text + "' is not a valid item");
  }
  return out;
}

// The job-spec form of a stage's subcommand: the positional JOB.yaml (`job_help` says what it runs),
// --item K, --item-id ID, --force (run_job_stage reads them).
void add_job_stage_options(po::options_description& d, const std::string& job_help);

// The model runtime's options of extract, eval, generate and neurons: --threads, --device,
// --special-tokens, --architecture.
void add_runtime_options(po::options_description& d);

// The intervention options of eval and generate (--skip-blocks, --ffn-set, --ffn-add, --interventions)
// and the interventions they give.
void add_intervention_options(po::options_description& d);
model::Interventions interventions_from_options(const po::variables_map& vm);

// The job-spec form of a single stage (every item, or --item K).
int run_job_stage(const po::variables_map& vm, const std::string& stage);

}  // namespace lmtopo::cli
