// export: one save as a plain tar.zst that GNU tar reads.
#include "session/export.hpp"

#include "cli/commands.hpp"
#include "cli/context.hpp"
#include "cli/named_save.hpp"
#include "report/report.hpp"
#include "session/store_open.hpp"
#include "store/short_id.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace ephemera::cli {

namespace {

struct ExportFlags {
  std::string save;
  std::string out;
};

// What the output may be, checked before the store is opened: stdout that is not a terminal
// (compressed bytes would only garble it), or a file whose directory exists and that is not
// a directory itself.
void check_out(const std::string& out) {
  if (out.empty()) {
    throw util::InputError("export: give the file to write (OUT.tar.zst), or - for stdout");
  }
  if (out == "-") {
    if (::isatty(STDOUT_FILENO) == 1) {
      throw util::InputError("export: stdout is a terminal; redirect it, or give a file to write");
    }
    return;
  }
  struct stat st {};
  if (::stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw util::InputError(
        fmt::format("export: {} is a directory; give the file to write", util::printable(out)));
  }
  std::filesystem::path dir = std::filesystem::path(out).parent_path();
  if (dir.empty()) {
    dir = ".";
  }
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw util::InputError(fmt::format("export: {}: no such directory to write {} in",
                                       util::printable(dir.string()), util::printable(out)));
  }
}

int run_export(const Globals& g, const ExportFlags& flags) {
  check_out(flags.out);
  auto options = store_options(g);
  std::string where = store::redact_url(options.resolved_url());
  auto c = session::open_catalog(options);
  auto named = find_named_save(*c, flags.save, where, true);
  const auto& m = named.save();
  if (named.from_file && !named.in_store) {
    util::log::warn("export: the store has no manifest {}; exporting the objects the file names",
                    util::printable(m.object));
  }
  auto r = session::export_save(*c, m, flags.out);
  if (g.json) {
    nlohmann::json j{{"id", store::short_id(m)},
                     {"out", flags.out},
                     {"content_addressed", r.content_addressed},
                     {"files", r.files},
                     {"unpacked_bytes", r.bytes},
                     {"written_bytes", r.written},
                     {"fetched_bytes", r.fetched},
                     {"seconds", r.seconds}};
    // stdout may be the archive itself: the summary goes where the log does.
    std::fprintf(flags.out == "-" ? stderr : stdout, "%s\n", j.dump(2).c_str());
    return k_exit_ok;
  }
  util::log::info("exported save {} ({}) to {}: {} files, {} unpacked, {} written, {:.2f} s",
                  store::short_id(m), util::printable(c->link(m)),
                  flags.out == "-" ? "stdout" : util::printable(flags.out), r.files,
                  report::human_bytes(r.bytes), report::human_bytes(r.written), r.seconds);
  return k_exit_ok;
}

} // namespace

void add_export(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand(
      "export", "Write one save as a plain tar.zst (GNU tar reads it), whatever its format");
  auto flags = std::make_shared<ExportFlags>();
  sub.add_option("save", flags->save,
                 "The id ls prints, a SHA-256 prefix, an object key, a link, or a manifest file")
      .required();
  sub.add_option("out", flags->out, "The file to write (replaced only once all is verified), or -")
      .required();
  sub.callback([&g, &action, flags] { action = [&g, flags] { return run_export(g, *flags); }; });
}

} // namespace ephemera::cli
