#include "stages/slurm.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/schemas.hpp"
#include "io/work_manifest.hpp"
#include "stages/pipeline.hpp"

namespace fs = std::filesystem;

namespace lmtopo::stages {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command, returns (exit status, stdout).
std::pair<int, std::string> capture(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) throw RuntimeFailure("cannot run: " + command);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 1, out};
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// "[D-]HH:MM:SS" -> seconds.
long long seconds_of(const std::string& t) {
  std::smatch m;
  static const std::regex re(R"(^(?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2})$)");
  if (!std::regex_match(t, m, re)) throw InputError("slurm.time: expected [D-]HH:MM:SS, got '" + t + "'");
  return (m[1].matched ? std::stoll(m[1]) * 86400 : 0) + std::stoll(m[2]) * 3600 + std::stoll(m[3]) * 60 + std::stoll(m[4]);
}

std::string slurm_dir(const core::JobSpec& spec) { return (fs::path(spec.output) / "slurm").string(); }

nlohmann::json read_submissions(const core::JobSpec& spec) {
  std::ifstream in(fs::path(slurm_dir(spec)) / "submissions.json");
  if (!in) return nlohmann::json::array();
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_array() ? j : nlohmann::json::array();
}

// Array-task states of the given jobs from squeue: "JOBID_TASK" (or "JOBID") -> (state, reason).
std::map<std::string, std::pair<std::string, std::string>> queue_states(const std::vector<std::string>& job_ids) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  if (job_ids.empty()) return out;
  // All of this user's jobs, filtered here: `squeue -j` with an id SLURM has already purged fails
  // as a whole, which would hide the ones still queued.
  const std::set<std::string> wanted(job_ids.begin(), job_ids.end());
  const auto [rc, text] = capture("squeue -h -r --me -o '%i %T %r'");
  if (rc != 0) throw RuntimeFailure("squeue failed: " + trim(text));
  std::istringstream in(text);
  std::string id, state, reason;
  while (in >> id >> state) {
    std::getline(in, reason);
    if (wanted.count(id.substr(0, id.find('_')))) out[id] = {state, trim(reason)};
  }
  return out;
}

// Items of recorded submissions whose array task is still queued or running, per stage.
struct Active {
  std::map<std::string, std::set<std::string>> running, queued;
  std::map<std::string, std::string> job_of_stage;  // latest active job per stage
  std::map<std::string, std::vector<std::string>> notes;
};

Active active_items(const core::JobSpec& spec) {
  Active a;
  const auto subs = read_submissions(spec);
  std::vector<std::string> ids;
  for (const auto& s : subs)
    for (const auto& st : s["stages"])
      if (st.contains("job_id") && !st["job_id"].get<std::string>().empty()) ids.push_back(st["job_id"]);
  const auto states = queue_states(ids);
  for (const auto& s : subs)
    for (const auto& st : s["stages"]) {
      const std::string job = st.value("job_id", ""), stage = st["stage"];
      if (job.empty()) continue;
      std::vector<std::string> items;
      std::ifstream in(st["items_file"].get<std::string>());
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) items.push_back(line);
      const int pack = st["pack"];
      for (const auto& [key, sr] : states) {
        const auto us = key.find('_');
        if (key.substr(0, us) != job) continue;
        a.job_of_stage[stage] = job;
        std::vector<int> tasks;
        const std::string rest = us == std::string::npos ? "0" : key.substr(us + 1);
        if (rest.front() == '[') {  // a pending range "[a-b]" or "[a-b%m]" not yet split
          std::smatch m;
          static const std::regex re(R"(\[(\d+)(?:-(\d+))?)");
          if (std::regex_search(rest, m, re))
            for (int t = std::stoi(m[1]); t <= (m[2].matched ? std::stoi(m[2]) : std::stoi(m[1])); ++t) tasks.push_back(t);
        } else {
          tasks.push_back(std::stoi(rest));
        }
        for (int t : tasks)
          for (int k = t * pack; k < std::min<int>((t + 1) * pack, static_cast<int>(items.size())); ++k)
            (sr.first == "RUNNING" || sr.first == "COMPLETING" ? a.running : a.queued)[stage].insert(items[static_cast<std::size_t>(k)]);
        if (sr.second.find("DependencyNeverSatisfied") != std::string::npos)
          a.notes[stage].push_back("job " + key + " blocked: a stage it depends on failed (DependencyNeverSatisfied)");
      }
    }
  return a;
}

// Failure records the scripts leave: OUTPUT/slurm/state/failed/<stage>/<item>.json.
std::vector<nlohmann::json> failure_records(const core::JobSpec& spec, const std::string& stage) {
  std::vector<nlohmann::json> out;
  const fs::path dir = fs::path(slurm_dir(spec)) / "state" / "failed" / stage;
  if (!fs::is_directory(dir)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string tag = "@" + key + "@";
    for (std::size_t p = text.find(tag); p != std::string::npos; p = text.find(tag, p + value.size())) text.replace(p, tag.size(), value);
  }
  if (const auto p = text.find('@'); p != std::string::npos) {
    std::smatch m;
    static const std::regex left(R"(@[A-Z_]+@)");
    if (std::regex_search(text, m, left)) throw RuntimeFailure("slurm template: unfilled placeholder " + m.str());
  }
  return text;
}

}  // namespace

int cluster_max_array_size() {
  const auto [rc, text] = capture("scontrol show config");
  if (rc == 0) {
    std::smatch m;
    static const std::regex re(R"(MaxArraySize\s*=\s*(\d+))");
    if (std::regex_search(text, m, re)) return std::stoi(m[1]);
  }
  return 1001;
}

std::vector<StageSubmission> submit_study(const core::JobSpec& spec, const SubmitOptions& o, std::ostream& out) {
  const auto& cfg = spec.config;
  const nlohmann::json slurm = cfg.contains("slurm") ? cfg["slurm"] : nlohmann::json::object();
  auto get = [&](const char* key, const nlohmann::json& fallback) { return slurm.contains(key) ? slurm[key] : fallback; };
  std::vector<std::string> stages = pipeline_stages(spec);
  if (!o.stages.empty()) {
    for (const auto& s : o.stages)
      if (std::find(stages.begin(), stages.end(), s) == stages.end()) throw InputError("--stages: '" + s + "' is not a stage of this study");
    std::vector<std::string> kept;
    for (const auto& s : stages)
      if (std::find(o.stages.begin(), o.stages.end(), s) != o.stages.end()) kept.push_back(s);
    stages = kept;
  }
  int max_array = o.max_array_size > 0 ? o.max_array_size : get("max_array_size", 0).get<int>();
  if (max_array <= 0) max_array = o.dry_run ? 1001 : cluster_max_array_size();
  const Active active = active_items(spec);

  // With --retry-failed: from the first stage with failure records on.
  std::size_t first_stage = 0;
  if (o.retry_failed) {
    first_stage = stages.size();
    for (std::size_t i = 0; i < stages.size(); ++i)
      if (!failure_records(spec, stages[i]).empty()) {
        first_stage = i;
        break;
      }
    if (first_stage == stages.size()) out << "submit: no failed items recorded; nothing to retry\n";
  }

  // A new submission folder: OUTPUT/slurm/<UTC time>[-n]/.
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  fs::path dir = fs::path(slurm_dir(spec)) / stamp;
  for (int n = 1; fs::exists(dir); ++n) dir = fs::path(slurm_dir(spec)) / (std::string(stamp) + "-" + std::to_string(n));
  const fs::path logs = fs::path(slurm_dir(spec)) / "logs", state = fs::path(slurm_dir(spec)) / "state";
  const std::string job_path = fs::absolute(spec.file).string();

  std::vector<StageSubmission> subs;
  std::string previous_job, previous_stage;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const std::string& stage = stages[i];
    StageSubmission s;
    s.stage = stage;
    if (i >= first_stage) {
      const auto running = active.running.count(stage) ? active.running.at(stage) : std::set<std::string>{};
      const auto queued = active.queued.count(stage) ? active.queued.at(stage) : std::set<std::string>{};
      for (const auto& st : stage_item_states(spec, stage))
        if (st.state != "complete" && !running.count(st.id) && !queued.count(st.id)) s.items.push_back(st.id);
    }
    if (s.items.empty()) {
      out << "submit: " << stage << ": nothing to submit (complete, queued or running)\n";
      // Later stages still wait for this stage's active job, if any.
      if (active.job_of_stage.count(stage)) {
        previous_job = active.job_of_stage.at(stage);
        previous_stage = stage;
      }
      continue;
    }
    const int n = static_cast<int>(s.items.size());
    s.pack = std::max(1, get("array_pack", 1).get<int>());
    if ((n + s.pack - 1) / s.pack > max_array) s.pack = (n + max_array - 1) / max_array;
    s.tasks = (n + s.pack - 1) / s.pack;
    const std::string time = slurm.contains("time") && slurm["time"].contains(stage) ? slurm["time"][stage].get<std::string>() : "01:00:00";
    const long long limit = seconds_of(time);
    const long long signal = std::max<long long>(10, std::min<long long>(get("signal_seconds", 120).get<long long>(), limit / 2));
    const long long grace = std::min<long long>(get("grace_seconds", 60).get<long long>(), std::max<long long>(0, signal - 10));
    std::string extra;
    if (slurm.contains("partition")) extra += "#SBATCH --partition=" + slurm["partition"].get<std::string>() + "\n";
    if (slurm.contains("account")) extra += "#SBATCH --account=" + slurm["account"].get<std::string>() + "\n";
    if (get("gpus_per_task", 0).get<int>() > 0) extra += "#SBATCH --gpus-per-task=" + std::to_string(get("gpus_per_task", 0).get<int>()) + "\n";
    const std::string launcher = get("launcher", "srun").get<std::string>();
    s.items_file = (dir / (stage + ".items")).string();
    s.script = (dir / (stage + ".sbatch")).string();
    const std::string text = fill(core::embedded_template("stage.sbatch.in"),
                                  {{"STAGE", stage},
                                   {"STUDY", spec.study},
                                   {"LOG_DIR", logs.string()},
                                   {"SIGNAL_SECONDS", std::to_string(signal)},
                                   {"LAST_TASK", std::to_string(s.tasks - 1)},
                                   {"NODES", std::to_string(get("nodes", 1).get<int>())},
                                   {"TASKS_PER_NODE", std::to_string(get("tasks_per_node", 1).get<int>())},
                                   {"TIME", time},
                                   {"EXTRA_SBATCH", extra},
                                   {"LMTOPO", o.lmtopo},
                                   {"JOB", job_path},
                                   {"ITEMS_FILE", s.items_file},
                                   {"PACK", std::to_string(s.pack)},
                                   {"STATE_DIR", state.string()},
                                   {"GRACE_SECONDS", std::to_string(grace)},
                                   {"CHECK_PREVIOUS", o.afterany ? previous_stage : ""},
                                   {"LAUNCH", launcher == "srun" ? "srun --mpi=pmix --kill-on-bad-exit=1" : "mpirun"}});
    if (!previous_job.empty()) s.dependency = std::string(o.afterany ? "afterany:" : "afterok:") + previous_job;
    out << "submit: " << stage << ": " << n << " item(s) in " << s.tasks << " array task(s) of " << s.pack << " item(s)"
        << (s.dependency.empty() ? "" : ", after " + s.dependency + " (" + previous_stage + ")") << "\n";
    if (o.dry_run) {
      out << "---- " << s.script << "\n" << text << "---- " << s.items_file << "\n";
      for (const auto& it : s.items) out << it << "\n";
      previous_job = "<" + stage + ">";
    } else {
      fs::create_directories(dir);
      fs::create_directories(logs);
      fs::create_directories(state);
      io::write_file_atomically(s.script, text);
      std::string items_text;
      for (const auto& it : s.items) items_text += it + "\n";
      io::write_file_atomically(s.items_file, items_text);
      // A retried item starts clean: its old failure record goes when it is resubmitted.
      for (const auto& it : s.items) {
        std::string safe = it;
        for (std::size_t p = safe.find('/'); p != std::string::npos; p = safe.find('/', p + 2)) safe.replace(p, 1, "__");
        fs::remove(state / "failed" / stage / (safe + ".json"));
      }
      std::string command = "sbatch --parsable";
      if (!s.dependency.empty()) command += " --dependency=" + s.dependency + (o.afterany ? "" : " --kill-on-invalid-dep=yes");
      for (const auto& a : o.sbatch_args) command += " " + shell_quote(a);
      command += " " + shell_quote(s.script);
      const auto [rc, text_out] = capture(command);
      if (rc != 0) throw RuntimeFailure("sbatch failed for stage " + stage + ": " + trim(text_out));
      s.job_id = trim(text_out.substr(0, text_out.find(';')));
      out << "submit: " << stage << ": job " << s.job_id << "\n";
      previous_job = s.job_id;
    }
    previous_stage = stage;
    subs.push_back(s);
  }
  if (!o.dry_run && !subs.empty()) {
    auto all = read_submissions(spec);
    nlohmann::json rec = {{"id", dir.filename().string()}, {"time", stamp}, {"afterany", o.afterany}, {"stages", nlohmann::json::array()}};
    for (const auto& s : subs)
      rec["stages"].push_back({{"stage", s.stage}, {"job_id", s.job_id}, {"items", s.items.size()}, {"tasks", s.tasks},
                               {"pack", s.pack}, {"script", s.script}, {"items_file", s.items_file}, {"dependency", s.dependency}});
    all.push_back(rec);
    io::write_file_atomically((fs::path(slurm_dir(spec)) / "submissions.json").string(), all.dump(2) + "\n");
  }
  if (o.dry_run) {
    out << "dependency graph:";
    for (const auto& s : subs) out << " " << s.stage << (s.dependency.empty() ? "" : " <-(" + s.dependency.substr(0, s.dependency.find(':')) + ")");
    out << "\n(dry run: nothing submitted)\n";
  }
  return subs;
}

std::string nightly_entry(const core::JobSpec& spec, const std::string& lmtopo, const std::string& cron) {
  const std::string job = fs::absolute(spec.file).string();
  std::ostringstream e;
  e << "# lmtopo nightly run of study " << spec.study << ": submits only the work items that are not complete\n"
    << "# (new checkpoints, changed configuration), stages chained with afterany and a completion check.\n"
    << "# Install with `scrontab " << (fs::path(slurm_dir(spec)) / "nightly.scrontab").string() << "` (replaces your scrontab).\n"
    << "#SCRON --job-name=lmtopo-nightly-" << spec.study << "\n"
    << "#SCRON --time=00:10:00\n"
    << cron << " " << shell_quote(lmtopo) << " submit " << shell_quote(job) << " --afterany\n";
  fs::create_directories(slurm_dir(spec));
  io::write_file_atomically((fs::path(slurm_dir(spec)) / "nightly.scrontab").string(), e.str());
  return e.str();
}

std::vector<StageStatus> study_status(const core::JobSpec& spec, const std::vector<std::string>& wanted) {
  std::vector<std::string> stages = pipeline_stages(spec);
  for (const auto& s : wanted)
    if (std::find(stages.begin(), stages.end(), s) == stages.end()) throw InputError("--stage: '" + s + "' is not a stage of this study");
  const Active active = active_items(spec);
  std::vector<StageStatus> out;
  for (const auto& stage : stages) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), stage) == wanted.end()) continue;
    StageStatus st;
    st.stage = stage;
    std::map<std::string, nlohmann::json> failed;
    for (const auto& f : failure_records(spec, stage)) failed[f.value("item", "")] = f;
    for (const auto& it : stage_item_states(spec, stage)) {
      ++st.items;
      if (it.state == "complete") {
        ++st.done;
      } else if (active.running.count(stage) && active.running.at(stage).count(it.id)) {
        ++st.running;
      } else if (active.queued.count(stage) && active.queued.at(stage).count(it.id)) {
        ++st.queued;
      } else if (failed.count(it.id)) {
        ++st.failed;
        const auto& f = failed[it.id];
        st.failures.push_back(it.id + ": exit " + std::to_string(f.value("exit_code", -1)) + ", job " + f.value("job", "") +
                              ", log " + f.value("log", ""));
      } else {
        ++st.not_submitted;
      }
    }
    if (active.notes.count(stage)) st.notes = active.notes.at(stage);
    out.push_back(st);
  }
  return out;
}

}  // namespace lmtopo::stages
