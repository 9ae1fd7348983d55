// Restoring and saving one stanza: the store, the archive and the state dir meet here.
#include "archive/archive.hpp"
#include "ephemera_config.hpp"
#include "session/cas_transfer.hpp"
#include "session/fingerprint.hpp"
#include "session/layout.hpp"
#include "session/progress.hpp"
#include "session/session.hpp"
#include "store/catalog.hpp"
#include "util/budget.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

namespace ephemera::session {

namespace fs = std::filesystem;

namespace {

// Whether a restore that failed on one candidate tries the next: its archive was missing,
// corrupt or refused, and the next save may be sound. Not when the store is unreachable or
// this machine is failing: the next would fail the same way, only later.
bool worth_another(const std::exception& e) {
  if (const auto* s = dynamic_cast<const util::StoreError*>(&e)) {
    return s->kind() == util::StoreErrorKind::not_found ||
           s->kind() == util::StoreErrorKind::permanent;
  }
  return dynamic_cast<const util::ArchiveError*>(&e) != nullptr;
}

// The warning for a candidate a restore passed over: which save, and why.
std::string passed_over(const store::Catalog& catalog, const store::Manifest& m,
                        const std::exception& e) {
  return fmt::format("passed over {} (saved {} on branch '{}'): {}", catalog.link(m), m.created,
                     util::printable(m.branch), e.what());
}

report::ArchiveInfo archive_info(const store::Catalog& catalog, const store::Manifest& m) {
  report::ArchiveInfo a;
  a.link = catalog.link(m);
  a.presigned = catalog.presigned_link(m).value_or("");
  a.sha256 = m.sha256;
  a.compressed_bytes = m.compressed_size;
  a.unpacked_bytes = m.unpacked_bytes;
  a.files = m.files;
  a.key = m.key;
  a.created = m.created;
  a.job_id = m.job_id;
  a.commit = m.commit;
  a.branch = m.branch;
  a.trusted = m.trusted;
  return a;
}

// The report entry of a stanza this phase acts on, before it is known how it went.
report::Entry acting_on(const Stanza& stanza, Phase phase) {
  report::Entry entry;
  entry.phase = phase;
  entry.name = stanza.name();
  entry.acted = true;
  return entry;
}

} // namespace

report::Entry Session::restore(const Stanza& stanza, Phase phase,
                               const std::optional<std::string>& key_override) {
  const auto& spec = stanza.spec();
  const auto& rules = stanza.rules();
  auto start = std::chrono::steady_clock::now();
  report::Entry entry = acting_on(stanza, phase);
  try {
    entry.key_wanted = key_override ? *key_override : key_of(stanza);
    util::budget::check(fmt::format("restore '{}'", entry.name)); // an earlier stanza spent it
    const auto& prefixes = spec.restore_keys;
    store::LookupRequest request = lookup_request(stanza, entry.key_wanted);
    for (const auto& step : request.steps) {
      entry.looked_for.push_back(step.value);
    }
    auto found_all = catalog().lookup(request);
    const auto& candidates = found_all.candidates;
    if (candidates.empty()) {
      entry.result = report::Result::miss;
      util::log::info("restore '{}': miss (looked for key '{}'{})", entry.name,
                      util::printable(entry.key_wanted),
                      prefixes.empty() ? "" : fmt::format(", then {} prefix(es)", prefixes.size()));
      explain(entry, request);
      entry.seconds = seconds_since(start);
      return entry;
    }
    // What a restore of this stanza killed before its commit or rollback staged, as its
    // journal lists it (never a file of the job's that merely looks like a temporary one),
    // within the directories these rules reach; then this restore's own journal.
    fs::path journal = m_state.journal(stanza.name());
    auto admit = [&](const std::string& base, const std::string& rel) {
      return reaches(rules, m_anchors, base, rel);
    };
    if (size_t swept = archive::sweep_staged(journal, admit); swept > 0) {
      util::log::info("restore '{}': removed {} name(s) an interrupted restore had staged",
                      entry.name, swept);
    }
    fs::create_directories(journal.parent_path());
    // The fingerprint post compares with: when nothing was where the rules start, the
    // entries as the restore wrote them; otherwise (files were already there, a restore
    // inside a job) a walk of the restored set. A failed candidate's unpack removes all it
    // wrote, so this holds for each.
    bool absent = starts_absent(rules, m_anchors);
    std::optional<WrittenSet> written;
    uint64_t fetched = 0; // compressed bytes read: the archive's, or the index's and packs'
    // Fetches and unpacks one candidate, recording it as the entry's archive.
    auto attempt = [&](const store::Candidate& found) -> archive::UnpackResult {
      const auto& m = found.manifest;
      entry.step = found.step.prefix ? report::Step::prefix : report::Step::exact;
      entry.prefix = found.step.prefix ? found.step.value : "";
      entry.branch_match = found.own_branch ? "own" : "other";
      entry.archive = archive_info(catalog(), m);
      archive::UnpackOptions opts;
      opts.max_unpacked_bytes = m.unpacked_bytes;
      opts.journal = journal;
      opts.resolve = confinement(rules, m_anchors);
      if (absent) { // a fresh set for each candidate
        written.emplace(rules, m_anchors);
        opts.written = written->fn();
      }
      if (m.content == store::k_content_cas) {
        // Fetched, verified and written at once: no download to wait for.
        ProgressLine progress(fmt::format("restoring '{}'", entry.name), m.unpacked_bytes);
        opts.progress = progress.fn();
        auto unpacked =
            restore_content_addressed(catalog(), m, opts, m_state, stanza.name(), fetched);
        progress.finish();
        return unpacked;
      }

      // A store on this machine is unpacked where it lies; any other is downloaded (hashing
      // on the way, so a bad download is a clean miss) into the state dir first. Either way
      // the unpack hashes what it reads: the job can write the state dir, and a store writer
      // the store's directory.
      std::optional<util::TempDir> tmp;
      fs::path file;
      int local = catalog().open_verified(m);
      util::Fd closer(local);
      if (local < 0) {
        tmp.emplace(m_state.scratch(), "restore");
        file = tmp->path() / "archive.tar.zst";
        ProgressLine fetching(fmt::format("restoring '{}': downloading", entry.name),
                              m.compressed_size);
        catalog().download(m, file, fetching.bytes_fn());
      }
      opts.expected_sha256 = m.sha256; // checked on the bytes the unpack reads, before its commit
      opts.expected_size = m.compressed_size;
      fetched = m.compressed_size;
      ProgressLine progress(fmt::format("restoring '{}': unpacking", entry.name), m.unpacked_bytes);
      opts.progress = progress.fn();
      auto unpacked = local >= 0 ? archive::unpack_fd(local, opts) : archive::unpack(file, opts);
      progress.finish();
      return unpacked;
    };
    const store::Manifest* chosen = nullptr;
    archive::UnpackResult unpacked;
    for (size_t i = 0; chosen == nullptr; ++i) {
      try {
        unpacked = attempt(candidates[i]);
        chosen = &candidates[i].manifest;
      } catch (const std::exception& e) {
        if (i + 1 == candidates.size() || !worth_another(e)) {
          throw;
        }
        entry.warnings.push_back(passed_over(catalog(), candidates[i].manifest, e));
        util::log::warn("restore '{}': {}; trying the next candidate", entry.name,
                        entry.warnings.back());
      }
    }
    const auto& m = *chosen;
    entry.seconds = seconds_since(start);
    // An archive that wrote no file and no link (an empty set, saved before save refused
    // them, or a store writer's) warms nothing: a miss, so the job builds cold.
    if (unpacked.files + unpacked.symlinks == 0) {
      entry.result = report::Result::miss;
      entry.step = report::Step::none; // no step hit; the archive stays, to say which one was empty
      entry.prefix.clear();
      entry.branch_match.clear();
      entry.reason += "; the archive found holds no file or symlink: nothing was restored";
      entry.warnings.push_back(
          fmt::format("{} holds no file or symlink: counted as a miss", entry.archive->link));
      util::log::info("restore '{}': miss: {}", entry.name, entry.warnings.back());
      return entry;
    }
    entry.result = report::Result::hit;
    catalog().mark_used(m, context().trusted, found_all.use_markers); // for gc (usage.hpp)
    util::log::info(
        "restored '{}' ({} key '{}', {} branch '{}'{}): {}, {}", entry.name,
        entry.step == report::Step::exact ? "exact" : "prefix '" + entry.prefix + "' ->",
        util::printable(m.key), entry.branch_match, util::printable(m.branch),
        entry.warnings.empty()
            ? ""
            : fmt::format(", after passing over {} candidate(s)", entry.warnings.size()),
        cost_line(unpacked.files, unpacked.bytes, fetched, entry.seconds), entry.archive->link);
    entry.moved_bytes = fetched;
    std::optional<rules::WalkResult> restored;
    if (written) {
      restored = written->finish();
    }
    if (!restored) {
      restored = rules::walk(rules, m_anchors);
    }
    m_state.save_fingerprint(stanza.name(), entry.key_wanted,
                             fingerprint(*restored, spec.content_addressed));
  } catch (const util::InputError&) {
    throw;
  } catch (const util::BudgetExceeded& e) {
    entry = out_of_budget(std::move(entry), e); // what it fetched or unpacked is gone
    entry.seconds = seconds_since(start);
  } catch (const std::exception& e) {
    entry = fail(std::move(entry), "unable to restore", e);
    entry.seconds = seconds_since(start);
  }
  return entry;
}

report::Entry Session::save(const Stanza& stanza, Phase phase) {
  const auto& spec = stanza.spec();
  const auto& rules = stanza.rules();
  auto start = std::chrono::steady_clock::now();
  report::Entry entry = acting_on(stanza, phase);
  try {
    entry.key_wanted = key_of(stanza);
    auto walked = rules::walk(rules, m_anchors);
    for (const auto& w : walked.warnings) {
      entry.warnings.push_back(w);
      util::log::warn("save '{}': {}", entry.name, w);
    }
    for (size_t i = 0; i < rules.rules().size(); ++i) {
      const auto& rule = rules.rules()[i];
      if (rule.must_match && walked.rule_hits.at(i) == 0) {
        throw util::Error(fmt::format("rule '{}' must match at least one file ('=') and matched "
                                      "none",
                                      rule.text));
      }
    }
    auto print = fingerprint(walked, spec.content_addressed);
    if (auto previous = m_state.load_fingerprint(stanza.name());
        previous && previous->first == entry.key_wanted && previous->second == print) {
      entry.result = report::Result::unchanged;
      entry.reason += "; nothing changed since the restore (same key, same files): save skipped";
      entry.seconds = seconds_since(start);
      util::log::info("save '{}': skipped, nothing changed since the restore of key '{}'",
                      entry.name, entry.key_wanted);
      return entry;
    }
    store::Manifest partial;
    partial.repository = context().repository;
    partial.target = job().spec.target.value_or("");
    partial.name = stanza.name();
    partial.epoch = spec.epoch.value;
    partial.key = entry.key_wanted;
    partial.job_id = context().job_id;
    partial.commit = context().commit;
    partial.branch = context().branch;
    partial.event = policy::to_string(context().event);
    partial.trusted = context().trusted;
    partial.origin = context().origin;
    for (const auto& r : spec.rules) {
      partial.rules.push_back(r.value);
    }
    partial.rules_digest = rules::rules_digest(rules.rules());
    partial.tool_version = EPHEMERA_VERSION;
    // An archive of no file and no link would be restored as a hit, so a job's `if ephemera
    // restore X` would call the cache warm for ever: nothing is saved (as actions/cache
    // does for a path that matches nothing). The report has no result of its own for this
    // (its schema is versioned): skipped, with the reason.
    auto nothing = [&](uint64_t directories) {
      entry.result = report::Result::skipped;
      entry.reason += "; the rules matched no file or symlink: nothing to save";
      entry.warnings.push_back(fmt::format(
          "the rules matched no file or symlink{}: not saved (an empty archive "
          "would be restored as a hit)",
          directories > 0 ? fmt::format(" (only {} empty directories)", directories) : ""));
      util::log::warn("save '{}': {}", entry.name, entry.warnings.back());
      entry.seconds = seconds_since(start);
      return entry;
    };
    auto too_large = [&](const std::string& what, uint64_t bytes) {
      entry.result = report::Result::too_large;
      entry.warnings.push_back(fmt::format("{} {} compressed, over max_size {}: not saved", what,
                                           report::human_bytes(bytes),
                                           report::human_bytes(*spec.max_size)));
      util::log::warn("save '{}': {}", entry.name, entry.warnings.back());
      entry.seconds = seconds_since(start);
      return entry;
    };
    auto items = pack_items(walked, rules, m_anchors);
    uint64_t total = 0;
    for (const auto& w : walked.entries) {
      total += w.size;
    }
    if (saves_content_addressed()) {
      uint64_t linked = 0;
      for (const auto& i : items) {
        linked += i.type == archive::EntryType::directory ? 0 : 1;
      }
      if (linked == 0) {
        return nothing(items.size());
      }
      // Reading, chunking and uploading what is new, at once.
      ProgressLine progress(fmt::format("saving '{}'", entry.name), total);
      std::vector<std::string> passed_over;
      auto saved = save_content_addressed(catalog(), save_scope(partial), items,
                                          spec.level.value_or(3), m_state, stanza.name(),
                                          progress.fn(), entry.warnings, passed_over);
      progress.finish();
      if (saved.files + saved.symlinks == 0) {
        return nothing(saved.directories);
      }
      // What a restore of it fetches at most: every pack it uses. The packs and the index
      // stay unreferenced, for gc.
      if (spec.max_size && saved.stored_bytes > *spec.max_size) {
        return too_large("the saved state's packs are", saved.stored_bytes);
      }
      partial.content = store::k_content_cas;
      partial.archive = saved.index_key;
      partial.sha256 = saved.index_sha256;
      partial.compressed_size = saved.index_bytes;
      partial.unpacked_bytes = saved.unpacked_bytes;
      partial.files = saved.files;
      auto m = catalog().publish_index(partial);
      entry.result = report::Result::saved;
      entry.archive = archive_info(catalog(), m);
      entry.moved_bytes = saved.uploaded();
      entry.seconds = seconds_since(start);
      double rate =
          entry.seconds > 0 ? static_cast<double>(saved.unpacked_bytes) / 1e6 / entry.seconds : 0;
      // What it did not build on, and why: in the summary line, where it explains the bytes.
      std::string based;
      for (const auto& p : passed_over) {
        based += "; " + p;
      }
      if (!based.empty() && !saved.base_used) {
        based += "; saved in full";
      }
      util::log::info("saved '{}' key '{}': {} files, {}, uploaded {} new of {} ({} new "
                      "pack(s), index {}), {:.2f} s, {:.1f} MB/s, {}{}",
                      entry.name, m.key, saved.files, report::human_bytes(saved.unpacked_bytes),
                      report::human_bytes(saved.uploaded()),
                      report::human_bytes(saved.unpacked_bytes), saved.packs,
                      report::human_bytes(saved.index_bytes), entry.seconds, rate,
                      entry.archive->link, based);
      return entry;
    }
    util::TempDir tmp(m_state.scratch(), "save");
    fs::path file = tmp.path() / "archive.tar.zst";
    archive::PackOptions opts;
    opts.level = spec.level.value_or(3);
    ProgressLine progress(fmt::format("saving '{}': packing", entry.name), total);
    opts.progress = progress.fn();
    auto packed = archive::pack(items, file, opts);
    progress.finish();
    if (packed.files + packed.symlinks == 0) {
      return nothing(packed.directories);
    }
    if (spec.max_size && packed.compressed_bytes > *spec.max_size) {
      return too_large("the archive is", packed.compressed_bytes);
    }
    partial.sha256 = packed.sha256;
    partial.compressed_size = packed.compressed_bytes;
    partial.unpacked_bytes = packed.unpacked_bytes;
    partial.files = packed.files;
    ProgressLine uploading(fmt::format("saving '{}': uploading", entry.name),
                           packed.compressed_bytes);
    auto m = catalog().publish(partial, file, uploading.bytes_fn());
    uploading.finish();
    entry.result = report::Result::saved;
    entry.archive = archive_info(catalog(), m);
    entry.moved_bytes = packed.compressed_bytes;
    entry.seconds = seconds_since(start);
    util::log::info(
        "saved '{}' key '{}': {}, {}", entry.name, m.key,
        cost_line(packed.files, packed.unpacked_bytes, packed.compressed_bytes, entry.seconds),
        entry.archive->link);
  } catch (const util::InputError&) {
    throw;
  } catch (const std::exception& e) {
    entry = fail(std::move(entry), "unable to save", e);
    entry.seconds = seconds_since(start);
  }
  return entry;
}

} // namespace ephemera::session
