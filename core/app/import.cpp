#include "app/import.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <variant>

#include "app/errors.hpp"
#include "domain/csv.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"

namespace daybreak {
namespace {

// Thrown inside the write transaction to roll it back when the file had problems.
struct Rejected {};

// 1 MiB reads: few system calls, and still a constant, small buffer however large the file.
constexpr std::size_t kReadChunk = 1U << 20U;

// Incremental SHA-256 of the bytes read, so the audit row says exactly which file was imported.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 unavailable");
  }
  void update(const char* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(kHex[md[i] >> 4U]);
      out.push_back(kHex[md[i] & 0xFU]);
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// A row that passed validation, on its way to the store.
using ValidRow = std::variant<Advisor, Content, Assignment>;

// Writes validated rows through the store modules; used only by the thread that owns the
// write transaction.
class Writer {
 public:
  Writer(store::Db& db, Millis now) : db_(db), now_(now) {}

  void write(ValidRow&& row) {
    if (auto* a = std::get_if<Advisor>(&row)) {
      store::AdvisorUpsert(db_, store::AdvisorUpsertParams{std::move(*a), now_});
      ++written_;
    } else if (auto* c = std::get_if<Content>(&row)) {
      store::ContentUpsert(db_, store::ContentUpsertParams{std::move(*c), now_});
      ++written_;
    } else if (auto* s = std::get_if<Assignment>(&row)) {
      // An import never undoes an operator's override; it reports how many it left alone.
      // Foreign keys guard the advisor and content checked during validation: one that vanished
      // since then fails the whole write, named here.
      std::string what = "assignment of \"" + s->advisor_id + "\" on " + s->date + " to \"" + s->content_id + "\"";
      try {
        if (store::AssignmentUpsert(db_, store::AssignmentUpsertParams{std::move(*s), now_, /*keep_override=*/true})) {
          ++written_;
        } else {
          ++kept_overrides_;
        }
      } catch (const store::StoreError& e) {
        throw store::StoreError(what + ": " + e.what() + " (did the database change while the file was checked?)");
      }
    }
  }

  std::size_t written() const { return written_; }
  std::size_t kept_overrides() const { return kept_overrides_; }

 private:
  store::Db& db_;
  Millis now_;
  std::size_t written_ = 0;
  std::size_t kept_overrides_ = 0;
};

// The validating side of an import: the CSV parser's callback. It checks the header, validates
// every row, collects the problems, and hands each valid row to `sink` while the file is still
// clean (a sink that returns false cancels the run). It opens no transaction: assignments look
// advisors and content up one short autocommit read at a time.
class Importer {
 public:
  using Sink = std::function<bool(ValidRow&&)>;

  Importer(store::Db* db, const ImportRules& rules, const ImportOptions& opts, Sink sink)
      : db_(db), rules_(rules), opts_(opts), sink_(std::move(sink)) {
    report_.kind = opts.kind;
    report_.dry_run = opts.dry_run;
    report_.file = opts.path == "-" ? std::string("<stdin>") : opts.path;
  }

  ImportReport& report() { return report_; }
  bool cancelled() const { return cancelled_; }
  /// Assignments: every content item looked up while validating, as it was then (body dropped).
  const std::unordered_map<std::string, std::optional<Content>>& content_seen() const { return content_cache_; }

  void add_problem(Problem p) {
    ++report_.problem_count;
    if (opts_.max_problems == 0 || report_.problems.size() < opts_.max_problems) report_.problems.push_back(std::move(p));
  }

  void on_record(const CsvRecord& rec) {
    if (!header_seen_) {
      header_seen_ = true;
      on_header(rec);
      return;
    }
    ++report_.rows;
    if (header_bad_) return;  // the columns are unknown: rows cannot be checked
    row_problems_.clear();
    std::optional<ValidRow> row;
    switch (opts_.kind) {
      case ImportKind::advisors:
        if (auto a = advisors_->validate(rec, row_problems_)) row.emplace(std::move(*a));
        break;
      case ImportKind::content:
        if (auto c = content_->validate(rec, row_problems_)) row.emplace(std::move(*c));
        break;
      case ImportKind::assignments:
        if (auto s = assignments_->validate(rec, row_problems_)) row.emplace(std::move(*s));
        break;
    }
    for (auto& p : row_problems_) add_problem(std::move(p));
    // Rows go to the store only while the file is clean so far: after the first problem the
    // transaction will be rolled back anyway, and validating alone is cheaper.
    if (row && sink_ && report_.problem_count == 0 && !cancelled_) cancelled_ = !sink_(std::move(*row));
  }

  // After the last record: an empty file has no header to speak of.
  void finish() {
    if (!header_seen_) {
      add_problem(Problem{report_.file, 0, "",
                          "the file is empty; expected the header " + join_list(expected_columns(opts_.kind), ',')});
    }
  }

 private:
  void on_header(const CsvRecord& rec) {
    HeaderCheck hc = check_header(opts_.kind, rec, report_.file);
    if (!hc.problems.empty()) {
      header_bad_ = true;
      for (auto& p : hc.problems) add_problem(std::move(p));
      return;
    }
    switch (opts_.kind) {
      case ImportKind::advisors: advisors_.emplace(rules_, report_.file, hc.columns); break;
      case ImportKind::content: content_.emplace(rules_, report_.file, hc.columns); break;
      case ImportKind::assignments: assignments_.emplace(report_.file, hc.columns, lookups(), opts_.source); break;
    }
  }

  AssignmentLookups lookups() {
    AssignmentLookups l;
    l.advisor_exists = [this](const std::string& id) { return db_ != nullptr && store::AdvisorExists(*db_, id); };
    // Content is shared by many rows and the table is small: look each item up once. The body
    // is dropped from the cached copy since the validator needs only the validity fields.
    l.content = [this](const std::string& id) -> std::optional<Content> {
      auto it = content_cache_.find(id);
      if (it == content_cache_.end()) {
        std::optional<Content> c;
        if (db_ != nullptr) c = store::ContentGet(*db_, id);
        if (c) c->body.clear();
        it = content_cache_.emplace(id, std::move(c)).first;
      }
      return it->second;
    };
    return l;
  }

  store::Db* db_;  // assignments only: lookups of advisors and content
  const ImportRules& rules_;
  const ImportOptions& opts_;
  Sink sink_;
  ImportReport report_;
  bool header_seen_ = false;
  bool header_bad_ = false;
  bool cancelled_ = false;
  std::vector<Problem> row_problems_;
  std::optional<AdvisorValidator> advisors_;
  std::optional<ContentValidator> content_;
  std::optional<AssignmentValidator> assignments_;
  std::unordered_map<std::string, std::optional<Content>> content_cache_;
};

// Streams the input through the parser into the importer; returns the SHA-256 of what was read.
std::string stream_file(const ImportOptions& opts, Importer& imp) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (opts.path != "-") {
    std::error_code ec;
    if (std::filesystem::is_directory(opts.path, ec)) throw UsageError("cannot read " + opts.path + ": is a directory");
    file.open(opts.path, std::ios::binary);
    if (!file) throw UsageError("cannot read " + opts.path + ": " + std::strerror(errno));
    in = &file;
  }
  CsvParser parser([&imp](const CsvRecord& rec) { imp.on_record(rec); });
  Sha256 sha;
  std::string buf(kReadChunk, '\0');
  while (!parser.stopped() && !imp.cancelled()) {
    in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto n = static_cast<std::size_t>(in->gcount());
    if (n == 0) break;
    sha.update(buf.data(), n);
    parser.feed(std::string_view(buf.data(), n));
  }
  if (in->bad()) throw UsageError("cannot read " + imp.report().file + ": " + std::strerror(errno));
  parser.finish();
  imp.finish();
  return sha.hex();
}

// Staged rows are inserted in plain transactions of kStageBatch rows: they touch only the
// connection's temp database, so no lock on the ledger is taken, and batching saves a journal
// round per row.
constexpr std::size_t kStageBatch = 4096;

class TempBatches {
 public:
  explicit TempBatches(store::Db* db) : db_(db) {}
  TempBatches(const TempBatches&) = delete;
  TempBatches& operator=(const TempBatches&) = delete;
  ~TempBatches() {
    if (open_) {
      try {
        db_->exec("ROLLBACK");
      } catch (...) {  // NOLINT(bugprone-empty-catch): already failing; the staging is reset before reuse
      }
    }
  }
  void before_row() {
    if (open_ && rows_ >= kStageBatch) finish();
    if (!open_) {
      db_->exec("BEGIN");
      open_ = true;
    }
    ++rows_;
  }
  void finish() {
    if (!open_) return;
    db_->exec("COMMIT");
    open_ = false;
    rows_ = 0;
  }

 private:
  store::Db* db_;
  bool open_ = false;
  std::size_t rows_ = 0;
};

// Assignments, inside the write transaction: each content item the rows name (a handful, however
// many rows) must still be as validation saw it, or a withdrawal or a new validity period that
// landed in between would be imported past. A change becomes a problem and the file is rejected.
void recheck_content(store::Db& db, const std::unordered_map<std::string, std::optional<Content>>& seen,
                     ImportReport& report) {
  for (const auto& [id, then] : seen) {
    if (!then) continue;  // unknown then: the rows naming it were rejected already
    auto now = store::ContentGet(db, id);
    std::string change;
    if (!now) {
      change = "is no longer stored";
    } else if (now->withdrawn && !then->withdrawn) {
      change = "was withdrawn";
    } else if (now->valid_from != then->valid_from || now->valid_until != then->valid_until) {
      change = "had its validity changed";
    }
    if (change.empty()) continue;
    ++report.problem_count;
    report.problems.push_back(Problem{report.file, 0, "content_id",
                                      "\"" + id + "\" " + change + " while the file was being checked; run the import again"});
  }
}

void write_audit(store::Db& db, const ImportOptions& opts, const ImportReport& r, Millis now) {
  nlohmann::json after = {{"rows", r.imported}, {"sha256", r.sha256}};
  if (opts.kind == ImportKind::assignments) {
    after["source"] = std::string(to_string(opts.source));
    after["kept_overrides"] = r.kept_overrides;
  }
  std::string target = opts.path;
  if (opts.path != "-") {
    std::error_code ec;
    auto abs = std::filesystem::absolute(opts.path, ec);
    if (!ec) target = abs.string();
  }
  store::guarded("writing the audit log", [&] {
    auto& q = db.stmt(
        "INSERT INTO audit_log (at, actor, sudo_user, command, reason, target, before, after) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)");
    q.bind(1, static_cast<std::int64_t>(now));
    q.bind(2, opts.actor);
    if (opts.sudo_user.empty()) {
      q.bind(3);
    } else {
      q.bind(3, opts.sudo_user);
    }
    q.bind(4, "import " + std::string(to_string(opts.kind)));
    q.bind(5, opts.reason);
    q.bind(6, target);
    q.bind(7, after.dump());
    q.exec();
  });
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "1 advisor", "3 content items", "2 assignments".
std::string noun(ImportKind k, std::size_t n) {
  switch (k) {
    case ImportKind::advisors: return plural(n, "advisor", "advisors");
    case ImportKind::content: return plural(n, "content item", "content items");
    case ImportKind::assignments: return plural(n, "assignment", "assignments");
  }
  return std::to_string(n);
}

}  // namespace

ImportReport run_import(store::Db* db, const ImportRules& rules, const ImportOptions& opts, Millis now) {
  if (!opts.dry_run && db == nullptr) throw std::invalid_argument("run_import: a real import needs a database");
  // 1. Read and validate the whole input with no transaction open, keeping the valid rows while
  //    the file is clean. However slow the input (a pipe) or large the file, the dispatcher's
  //    writer is never kept waiting by this phase.
  //    Advisors, the large files, wait in TEMP tables of this connection (see AdvisorStage), so
  //    the write is a few set-wise statements; content and assignments wait in memory.
  const bool staged = !opts.dry_run && opts.kind == ImportKind::advisors;
  std::vector<ValidRow> rows;
  TempBatches temp(staged ? db : nullptr);
  Importer::Sink sink;
  if (staged) {
    store::AdvisorStageReset(*db);
    sink = [&temp, db](ValidRow&& row) {
      temp.before_row();
      store::AdvisorStage(*db, std::get<Advisor>(row));
      return true;
    };
  } else if (!opts.dry_run) {
    sink = [&rows](ValidRow&& row) {
      rows.push_back(std::move(row));
      return true;
    };
  }
  Importer imp(db, rules, opts, std::move(sink));
  imp.report().sha256 = stream_file(opts, imp);
  temp.finish();
  ImportReport report = std::move(imp.report());
  if (!report.ok() && staged) store::AdvisorStageReset(*db);  // give the staged rows' memory back
  if (opts.dry_run || !report.ok()) return report;  // nothing written
  if (staged) store::AdvisorStagePruneUnchanged(*db);  // a re-import writes only what changed
  if (opts.after_validation) opts.after_validation();

  // 2. One short write transaction for the whole file: all of it or nothing.
  using Steady = std::chrono::steady_clock;
  Steady::time_point locked{};
  try {
    db->write_tx([&] {
      locked = Steady::now();  // BEGIN IMMEDIATE returned: this connection holds the write lock
      if (opts.kind == ImportKind::assignments) recheck_content(*db, imp.content_seen(), report);
      if (!report.ok()) throw Rejected{};
      if (staged) {
        store::AdvisorApplyStaged(*db, now);
        report.imported = report.rows;  // every row is imported, changed or not (as an upsert would)
      } else {
        Writer writer(*db, now);
        for (auto& row : rows) writer.write(std::move(row));
        report.imported = writer.written();
        report.kept_overrides = writer.kept_overrides();
      }
      write_audit(*db, opts, report, now);
    });
  } catch (const Rejected&) {
    report.imported = 0;
    report.kept_overrides = 0;
  }
  report.write_lock_ms = std::chrono::duration<double, std::milli>(Steady::now() - locked).count();
  if (staged) store::AdvisorStageReset(*db);  // give the staged rows' memory back
  return report;
}

std::string format_import_report(const ImportReport& r) {
  if (r.ok()) {
    if (r.dry_run) {
      return r.file + ": " + plural(r.rows, "row", "rows") + " valid (dry run: nothing written)";
    }
    std::string out = "imported " + noun(r.kind, r.imported) + " from " + r.file;
    if (r.kept_overrides > 0) out += " (" + plural(r.kept_overrides, "operator override", "operator overrides") + " kept)";
    return out;
  }
  std::string out = r.file + ": " + plural(r.problem_count, "problem", "problems") + " in " + plural(r.rows, "row", "rows") +
                    "; " + (r.dry_run ? "dry run" : "nothing imported");
  for (const auto& p : r.problems) out += "\n" + p.text();
  if (r.problem_count > r.problems.size()) out += "\n… and " + std::to_string(r.problem_count - r.problems.size()) + " more";
  return out;
}

nlohmann::json import_report_json(const ImportReport& r) {
  nlohmann::json j = {
      {"ok", r.ok()},
      {"kind", std::string(to_string(r.kind))},
      {"file", r.file},
      {"dry_run", r.dry_run},
      {"rows", r.rows},
      {"imported", r.imported},
      {"sha256", r.sha256},
  };
  if (r.kind == ImportKind::assignments) j["kept_overrides"] = r.kept_overrides;
  if (!r.ok()) {
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& p : r.problems) {
      errors.push_back({{"line", p.line == 0 ? nlohmann::json(nullptr) : nlohmann::json(p.line)},
                        {"field", p.field.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.field)},
                        {"message", p.message}});
    }
    j["error_count"] = r.problem_count;
    j["errors"] = std::move(errors);
    j["errors_omitted"] = r.problem_count - r.problems.size();
  }
  return j;
}

}  // namespace daybreak
