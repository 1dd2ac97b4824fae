// Job specs: YAML -> JSON -> validated against schemas/job.schema.json (field paths, did-you-mean)
// -> semantic checks the schema cannot express -> typed config with defaults applied.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::core {

// Parses a YAML file into JSON. Plain scalars become null/bool/integer/number where YAML 1.2's core
// schema says so; quoted scalars stay strings. Malformed YAML or duplicate keys -> InputError
// naming file, line and column.
nlohmann::json yaml_file_to_json(const std::string& path);

struct CheckpointRef {
  std::string label;  // e.g. "step1000", or the folder name
  std::string dir;    // absolute or relative to the working directory
  long long step = -1;  // training step when known from a template
};

struct ModelSpec {
  std::string name;
  std::string architecture;  // empty: from config.json
  bool from_train = false;   // checkpoints come from this study's train stage
  std::vector<CheckpointRef> checkpoints;  // empty for from_train models (see trained_checkpoints)
  // from_train: the study's train section (defaults applied) with the model's own train fields over it.
  nlohmann::json train;
};

struct DataSpec {
  std::string source;  // gettext | jsonl
  std::string path;
  std::vector<std::string> domains;
  std::vector<std::string> languages;
  long long prompts = 0;
  long long seed = 0;
  long long min_chars = 0;
  long long max_chars = 0;
};

struct JobSpec {
  std::string file;        // the spec's path
  std::string base_dir;    // relative paths in the spec are relative to this
  nlohmann::json config;   // effective config: defaults applied
  // The spec as written (no defaults): work items are keyed by it, so a later lmtopo that adds an
  // option with a default does not make finished work look stale (see work_item_section).
  nlohmann::json written;
  std::string study;
  std::string output;      // resolved output root
  std::vector<ModelSpec> models;
  DataSpec data;
  bool has_stage(const std::string& section) const { return config.contains(section); }
};

// Loads and validates; throws InputError "FILE: field.path: expectation" on the first problem.
JobSpec load_job_spec(const std::string& path);

// Pythia-like checkpoint steps: 0, powers of two, every `every` steps (if > 0) and the last.
std::vector<int> checkpoint_schedule(int steps, int every);

// The checkpoints of a model: as listed, or (from_train) the step<N>/ folders the train stage saves
// under <output>/checkpoints/<name>/ by the spec's schedule (whether written yet or not), by step.
std::vector<CheckpointRef> trained_checkpoints(const JobSpec& spec, const ModelSpec& model);

// The section of the spec as written that a work item's result depends on ({} when absent).
nlohmann::json work_item_section(const JobSpec& spec, const std::string& section);

// sha256 of the canonical JSON dump of `value` (keys sorted), for staleness checks.
std::string config_hash(const nlohmann::json& value);

}  // namespace lmtopo::core
