// check: validate job files the way pre and post read them.
#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "cli/preset_view.hpp"
#include "jobfile/reader.hpp"
#include "session/key_files.hpp"
#include "util/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace ephemera::cli {

namespace {

using nlohmann::json;

json position(const util::Position& p) {
  return json{{"file", p.file}, {"line", p.line}, {"column", p.column}};
}

json located_strings(const std::vector<jobfile::Located<std::string>>& items) {
  json out = json::array();
  for (const auto& i : items) {
    out.push_back(json{{"value", i.value}, {"position", position(i.pos)}});
  }
  return out;
}

json to_json(const jobfile::JobSpec& job) {
  json stanzas = json::array();
  for (const auto& s : job.persist) {
    stanzas.push_back(json{
        {"name", s.name.value},
        {"source", s.source_file},
        {"position", position(s.pos)},
        {"rules", located_strings(s.rules)},
        {"epoch", s.epoch.value},
        {"cache_key", s.cache_key.value},
        {"key_files", located_strings(s.key_files)},
        {"restore_keys", located_strings(s.restore_keys)},
        {"restore", s.restore},
        {"save", s.save},
        {"restore_on_protected", s.restore_on_protected},
        {"share", s.share == jobfile::Share::branch ? "branch" : "repository"},
        {"max_size", s.max_size ? json(*s.max_size) : json(nullptr)},
        {"level", s.level ? json(*s.level) : json(nullptr)},
        {"preset", preset_json(s)},
    });
  }
  json warnings = json::array();
  for (const auto& w : job.warnings) {
    warnings.push_back(json{{"position", position(w.pos)}, {"message", w.message}});
  }
  return json{{"file", job.file},
              {"persist_file", job.persist_file ? json(*job.persist_file) : json(nullptr)},
              {"name", job.name},
              {"variety", job.variety},
              {"enable", job.enable},
              {"target", job.target ? json(*job.target) : json(nullptr)},
              {"persist", stanzas},
              {"warnings", warnings}};
}

std::string sources(const jobfile::JobSpec& job) {
  std::vector<std::string> files;
  for (const auto& s : job.persist) {
    if (std::find(files.begin(), files.end(), s.source_file) == files.end()) {
      files.push_back(s.source_file);
    }
  }
  if (files.empty()) {
    return "";
  }
  std::string out = ", from " + files[0];
  for (size_t i = 1; i < files.size(); ++i) {
    out += " and " + files[i];
  }
  return out;
}

// Each stanza's key files against the tree they would be read in: one matching nothing
// gives a constant key, which check would otherwise call ok.
void check_key_files(jobfile::JobSpec& job, const rules::Anchors& anchors) {
  for (const auto& s : job.persist) {
    if (s.key_files.empty()) {
      continue;
    }
    try {
      auto k = session::compute_key(s, anchors);
      job.warnings.insert(job.warnings.end(), k.warnings.begin(), k.warnings.end());
    } catch (const util::Error& e) {
      job.warnings.push_back({util::Severity::warning, s.pos,
                              fmt::format("persist '{}': {}", s.name.value, e.what())});
    }
  }
}

int run_check(const Globals& g, const std::vector<std::string>& files, const std::string& persist,
              const ContextOptions& o) {
  int code = k_exit_ok;
  rules::Anchors anchors;
  anchors.root = g.root;
  anchors.home = home_of(o);
  anchors.work = workdir_of(o);
  json out = json::array();
  for (const auto& f : files) {
    try {
      std::optional<std::filesystem::path> extra;
      if (!persist.empty()) {
        extra = persist;
      }
      auto job = jobfile::load_job(f, extra);
      check_key_files(job, anchors);
      for (const auto& w : job.warnings) {
        std::fprintf(stderr, "%s\n", w.str().c_str());
      }
      if (g.json) {
        out.push_back(to_json(job));
      } else {
        size_t n = job.persist.size();
        std::printf("%s: ok (%zu persist stanza%s%s)%s\n", f.c_str(), n, n == 1 ? "" : "s",
                    sources(job).c_str(), job.enable ? "" : " [disabled]");
        for (const auto& s : job.persist) {
          std::printf("  %s: %s (epoch %lld)\n", s.name.value.c_str(), s.pos.str().c_str(),
                      static_cast<long long>(s.epoch.value));
          for (const auto& line : preset_lines(s)) {
            std::printf("    %s\n", line.c_str());
          }
        }
      }
    } catch (const util::InputError& e) {
      for (const auto& d : e.diagnostics()) {
        std::fprintf(stderr, "%s\n", d.str().c_str());
      }
      code = k_exit_usage;
    }
  }
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  }
  return code;
}

} // namespace

void add_check(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("check", "Validate job files (exit 0, or 2 on any error)");
  auto files = std::make_shared<std::vector<std::string>>();
  auto persist = std::make_shared<std::string>();
  sub.add_option("files", *files, "Job scripts (*.sh) or TOML files").required();
  auto o = std::make_shared<ContextOptions>();
  sub.add_option("--persist", *persist, "A persist file other than the sibling");
  sub.add_option("--workdir", o->workdir,
                 "Where the job runs, for its key_files (default: current directory)");
  sub.add_option("--home", o->home, "The job's $HOME, for '~/' key_files (default: $HOME)");
  sub.callback([&g, &action, files, persist, o] {
    action = [&g, files, persist, o] { return run_check(g, *files, *persist, *o); };
  });
}

} // namespace ephemera::cli
