// `daybreak doctor`: the pre-flight check, run by the 21:30 job after planning and by hand
// before a morning. Each check is one row {name, ok, message}; any failed row → exit 1, so cron
// and monitoring see it. It reads and probes but changes nothing (the database is never
// migrated or created here: a missing or old schema is reported, not fixed).
#include <curl/curl.h>
#include <date/tz.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "channels/graph_api.hpp"
#include "domain/time.hpp"
#include "app/plan.hpp"
#include "app/templates_check.hpp"
#include "app/schedule.hpp"
#include "domain/schedule.hpp"
#include "store/db.hpp"
#include "store/migrations.hpp"
#include "store/pg_ledger.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

struct DoctorOptions {
  long min_free_mb = 1024;  // a 1M-advisor morning writes a few hundred MB of rows, attempts and WAL
  bool check_providers = false;
  std::string date;         // the delivery day whose plan is checked (default: the next slot's day)
  // Deliveries are on time against our clock, with a 30 s lead and a 5 min deadline; a clock
  // more than 2 s off is already visible in the lag figures. 2 s, not less: an HTTP Date header
  // has one-second resolution, so a reading within ±1 s is noise.
  long max_clock_skew_ms = 2000;
};

/// The provider's clock, read from the Date header of the credentials check: the reference the
/// clock_sync row compares the system clock with when there is one.
struct ProviderClock {
  std::string url;
  Millis skew_ms = 0;  ///< system clock minus the provider's; positive: we are ahead
};

struct Check {
  std::string name;
  bool ok = false;
  std::string message;
  bool warn = false;  ///< passes, but needs attention soon (shown WARN, exit code unchanged)
};

std::string octal_mode(mode_t m) {
  std::ostringstream o;
  o << std::oct << (m & 0777);
  return o.str();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Config and its permissions. Returns the loaded config (built-in defaults when it failed, so
// the other checks still run against the --database given, if any) and whether it loaded.
bool check_config(const GlobalOptions& g, std::vector<Check>& rows, Config& cfg) {
  std::string path = resolve_config_path(g.config_path);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    rows.push_back({"config", false, path + ": no such file (commands would fall back to built-in defaults, which have no senders)"});
    rows.push_back({"config_permissions", false, path + ": not checked, the file does not exist"});
    return false;
  }
  bool loaded = false;
  std::string perm_problem;
  try {
    cfg = load_config(path);
    loaded = true;
    rows.push_back({"config", true, path + ": valid"});
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    if (msg.find("readable by others") != std::string::npos) {
      // The file is refused only for its mode: report that in its own row, validate the rest.
      perm_problem = msg;
      try {
        cfg = parse_config(read_file(path), "");
        cfg.source = path;
        loaded = true;
        rows.push_back({"config", true, path + ": valid apart from its permissions (see config_permissions)"});
      } catch (const ConfigError& e2) {
        rows.push_back({"config", false, e2.what()});
      }
    } else {
      rows.push_back({"config", false, msg});
    }
  }
  if (!perm_problem.empty()) {
    rows.push_back({"config_permissions", false, perm_problem});
  } else if (st.st_mode & S_IWOTH) {
    rows.push_back({"config_permissions", false, path + ": writable by others (mode " + octal_mode(st.st_mode) +
                                                     "): anyone could redirect the database or the provider; run chmod o-w " + path});
  } else {
    rows.push_back({"config_permissions", true, path + ": mode " + octal_mode(st.st_mode) +
                                                    ((st.st_mode & S_IROTH) ? ", holds no inline secrets" : "")});
  }
  return loaded;
}

void check_timezones(const Config& cfg, std::vector<Check>& rows) {
  std::vector<std::string> zones = {"Asia/Kolkata"};
  if (cfg.default_timezone != "Asia/Kolkata") zones.push_back(cfg.default_timezone);
  std::string bad;
  for (const auto& z : zones) {
    try {
      (void)date::locate_zone(z);
    } catch (const std::exception& e) {
      bad += (bad.empty() ? "" : "; ") + z + ": " + e.what();
    }
  }
  if (bad.empty()) {
    rows.push_back({"timezone_data", true, "resolves " + [&] { std::string s; for (auto& z : zones) s += (s.empty() ? "" : ", ") + z; return s; }()});
  } else {
    rows.push_back({"timezone_data", false, bad + " (install the tzdata package)"});
  }
}

// Writable directory, then the file and its schema; never creates or migrates anything.
void check_database(const Config& cfg, const DoctorOptions& o, std::vector<Check>& rows, std::unique_ptr<store::Db>& db) {
  const std::string& path = cfg.database_path;
  fs::path dir = fs::absolute(path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    rows.push_back({"database_writable", false, dir.string() + ": directory does not exist (database " + path + ")"});
  } else {
    // Create and remove a file rather than trust access(2): root passes access() on a
    // read-only file system, and SQLite needs to create the -wal and -shm files beside it.
    std::string probe = (dir / ".daybreak-doctor-XXXXXX").string();
    int fd = ::mkstemp(probe.data());
    if (fd < 0) {
      rows.push_back({"database_writable", false, dir.string() + ": cannot create files there (" + std::strerror(errno) +
                                                      "); SQLite needs the directory writable for its -wal and -shm files"});
    } else {
      ::close(fd);
      ::unlink(probe.c_str());
      if (fs::exists(path, ec) && ::access(path.c_str(), W_OK) != 0) {
        rows.push_back({"database_writable", false, path + ": file is not writable (" + std::strerror(errno) + ")"});
      } else {
        rows.push_back({"database_writable", true, dir.string() + ": writable"});
      }
    }
  }

  struct statvfs vfs{};
  if (::statvfs(fs::is_directory(dir, ec) ? dir.c_str() : "/", &vfs) == 0) {
    long free_mb = static_cast<long>(static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize / (1024 * 1024));
    std::string m = std::to_string(free_mb) + " MB free on the database's file system (threshold " + std::to_string(o.min_free_mb) + " MB)";
    rows.push_back({"disk_space", free_mb >= o.min_free_mb, m});
  } else {
    rows.push_back({"disk_space", false, dir.string() + ": statvfs failed: " + std::strerror(errno)});
  }

  int latest = 0;
  for (const auto& m : store::embedded_migrations()) latest = std::max(latest, m.version);
  if (!fs::exists(path, ec)) {
    rows.push_back({"database_schema", false, path + ": does not exist yet (the first import creates and migrates it)"});
    return;
  }
  try {
    store::OpenOptions oo;
    oo.migrate = false;
    oo.busy_timeout_ms = 2000;
    db = std::make_unique<store::Db>(path, oo);
    int v = db->schema_version();
    if (v == latest) {
      rows.push_back({"database_schema", true, "schema version " + std::to_string(v) + " (latest)"});
    } else if (v < latest) {
      rows.push_back({"database_schema", false, "schema version " + std::to_string(v) + ", this build has " + std::to_string(latest) +
                                                    ": " + std::to_string(latest - v) + " migration(s) pending; the next command that opens the database applies them (back it up first)"});
    } else {
      rows.push_back({"database_schema", false, "schema version " + std::to_string(v) + " is newer than this build's " +
                                                    std::to_string(latest) + ": the binaries are older than the database"});
    }
  } catch (const std::exception& e) {
    rows.push_back({"database_schema", false, path + ": " + e.what()});
    db.reset();
  }
}

void check_senders(const Config& cfg, bool config_ok, std::vector<Check>& rows) {
  if (!config_ok) {
    rows.push_back({"senders", false, "not checked: the configuration did not load"});
    return;
  }
  if (cfg.senders.empty()) {
    rows.push_back({"senders", false, "no senders configured ([[whatsapp.senders]]): dispatch refuses to start"});
    return;
  }
  std::string list, missing;
  for (const auto& s : cfg.senders) {
    list += (list.empty() ? "" : ", ") + s.id + " (" + std::string(to_string(s.channel)) + ", " + std::to_string(static_cast<int>(s.mps)) + " mps)";
    // Whether a token is configured, not its value: reading it is --check-providers' business,
    // so doctor runs in a shell without the senders' token variables.
    if (s.channel == Channel::whatsapp && (s.phone_number_id.empty() || !s.token.configured())) {
      missing += (missing.empty() ? "" : ", ") + s.id + (!s.token.configured() ? " has no token" : " has no phone_number_id");
    }
  }
  if (!missing.empty()) {
    rows.push_back({"senders", false, missing});
  } else {
    rows.push_back({"senders", true, std::to_string(cfg.senders.size()) + ": " + list});
  }
}

void check_plan(const Config& cfg, store::Db* db, const std::string& day, Millis now, std::vector<Check>& rows) {
  if (!db) {
    rows.push_back({"plan", false, "not checked: the database could not be read"});
    return;
  }
  try {
    auto runs = store::RunListForDate(*db, day);
    if (runs.empty()) {
      // Not planned: fine until schedule.plan_deadline on the day before, a failure after it.
      const auto& sc = cfg.schedule;
      auto d = parse_date(day);
      auto deadline = d ? slot_instant(add_days(*d, -1), sc.plan_deadline_minutes, sc.timezone) : Result<Millis>(d.error());
      const bool late = deadline && now >= *deadline;
      rows.push_back({"plan", !late,
                      day + ": not planned " + (late ? "by " : "yet (the nightly job runs at ") +
                          (late ? format_minutes(sc.plan_deadline_minutes) + " " + sc.timezone +
                                      ": run daybreak-nightly, or dispatch plans it itself at " +
                                      format_minutes(sc.dispatch_minutes) + " (alert night_missed)"
                                : format_minutes(sc.nightly_minutes) + " " + sc.timezone + ")")});
      return;
    }
    std::string bad;
    std::int64_t planned = 0;
    for (const auto& r : runs) {
      planned += r.planned_count;
      if (r.feasible) continue;
      auto j = nlohmann::json::parse(r.plan_report, nullptr, false);
      std::string why = j.is_object() ? j.value("recommendation", std::string()) : std::string();
      bad += (bad.empty() ? "" : "; ") + std::string("run ") + std::to_string(r.run_id) + " (" +
             format_instant(r.slot_at, cfg.default_timezone) + ") is infeasible" + (why.empty() ? "" : ": " + why);
    }
    if (!bad.empty()) {
      rows.push_back({"plan", false, day + ": " + bad});
    } else {
      rows.push_back({"plan", true, day + ": " + std::to_string(runs.size()) + " run(s), " + std::to_string(planned) + " deliveries, all feasible"});
    }
  } catch (const std::exception& e) {
    rows.push_back({"plan", false, e.what()});
  }
}

// A harmless GET of the phone number object: 200 means the token is accepted for that number.
// Meta: GET /{version}/{phone_number_id} returns the phone number object (id,
// display_phone_number, verified_name, quality_rating); an invalid token is error 190
// (OAuthException), an unknown id error 100 subcode 33. The first Date header also gives the
// provider's clock to the clock_sync row.
/// whatsapp_templates: every item `day` sends over WhatsApp has an approved template for its
/// language and header ([[whatsapp.templates]]); passes without a table (one template_name).
void check_templates(const Config& cfg, store::Db* db, const std::string& day, std::vector<Check>& rows) {
  if (cfg.whatsapp.templates.empty()) {
    rows.push_back({"whatsapp_templates", true, "one template for every item (whatsapp.template_name " + cfg.whatsapp.template_name + ")"});
    return;
  }
  if (!db) {
    rows.push_back({"whatsapp_templates", false, "not checked: the database could not be read"});
    return;
  }
  try {
    const auto missing = missing_templates(*db, cfg, day);
    if (missing.empty()) {
      rows.push_back({"whatsapp_templates", true,
                      day + ": every item sent over WhatsApp has a template for its language and header (" +
                          std::to_string(cfg.whatsapp.templates.size()) + " configured)"});
      return;
    }
    std::string msg = day + ": ";
    for (std::size_t i = 0; i < missing.size(); ++i) msg += (i ? "; " : "") + describe(missing[i]);
    rows.push_back({"whatsapp_templates", false, msg + " (Meta would answer 132001 for each)"});
  } catch (const std::exception& e) {
    rows.push_back({"whatsapp_templates", false, e.what()});
  }
}

/// emergency_content: a pull (or an expired item) on `day` is safe when an emergency item valid
/// that day can replace the item (domain/emergency.hpp). Fails when delivery.emergency_language
/// itself has none (nothing is left to fall back on: some language's deliveries would be held);
/// passes with a "warning:" message when languages in use lack their own but the default covers
/// them.
void check_emergency_content(const Config& cfg, store::Db* db, const std::string& day, std::vector<Check>& rows) {
  if (!db) {
    rows.push_back({"emergency_content", false, "not checked: the database could not be read"});
    return;
  }
  try {
    auto missing = languages_without_emergency(*db, cfg, day);
    std::string uncovered, covered;
    for (const auto& l : missing) {
      std::string item = l["language"].get<std::string>() + " (" + std::to_string(l["advisors"].get<std::int64_t>()) + " advisors)";
      std::string& list = l["covered_by"].is_null() ? uncovered : covered;
      list += (list.empty() ? "" : ", ") + item;
    }
    if (!uncovered.empty()) {
      rows.push_back({"emergency_content", false,
                      day + ": no emergency item valid in " + uncovered + " nor in delivery.emergency_language " + cfg.emergency_language +
                          ": a pull or an expired item would hold those deliveries unsent; import an emergency item (emergency=true) "
                          "in " + cfg.emergency_language});
    } else if (!covered.empty()) {
      rows.push_back({"emergency_content", true,
                      "warning: " + day + ": no emergency item in " + covered + "; the " + cfg.emergency_language +
                          " emergency item would be sent to them after a pull"});
    } else {
      rows.push_back({"emergency_content", true, day + ": every language in use has an emergency item"});
    }
  } catch (const std::exception& e) {
    rows.push_back({"emergency_content", false, e.what()});
  }
}

void check_providers(const Config& cfg, std::vector<Check>& rows, std::optional<ProviderClock>& ref) {
  SystemClock system;  // the machine's own clock, never DAYBREAK_CLOCK: that is what is checked
  for (const auto& s : cfg.senders) {
    if (s.channel != Channel::whatsapp) continue;
    std::string url = cfg.whatsapp.graph_base + "/" + cfg.whatsapp.api_version + "/" + s.phone_number_id;
    std::string token;
    try {
      token = s.token.value();  // names the key and the variable (or file) when it cannot be read
    } catch (const ConfigError& e) {
      rows.push_back({"provider:" + s.id, false, e.what()});
      continue;
    }
    CURL* h = curl_easy_init();
    if (!h) {
      rows.push_back({"provider:" + s.id, false, "curl_easy_init failed"});
      continue;
    }
    std::string auth = "Authorization: Bearer " + token;
    curl_slist* hdrs = curl_slist_append(nullptr, auth.c_str());
    std::string body;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cfg.whatsapp.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, cfg.whatsapp.request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, +[](char* p, size_t sz, size_t n, void* ud) -> size_t {
      auto* b = static_cast<std::string*>(ud);
      if (b->size() < 65536) b->append(p, sz * n);
      return sz * n;
    });
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    std::string date_header;
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, +[](char* p, size_t sz, size_t n, void* ud) -> size_t {
      std::string line(p, sz * n);
      if (line.size() > 5 && strncasecmp(line.c_str(), "date:", 5) == 0) {
        auto* d = static_cast<std::string*>(ud);
        *d = line.substr(5);
        while (!d->empty() && (d->back() == '\r' || d->back() == '\n' || d->back() == ' ')) d->pop_back();
      }
      return sz * n;
    });
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &date_header);
    const Millis t0 = system.now();
    CURLcode rc = curl_easy_perform(h);
    const Millis t1 = system.now();
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    // The token never appears in a message: only the URL (no secret in it) and the outcome.
    if (rc != CURLE_OK) {
      rows.push_back({"provider:" + s.id, false, "GET " + url + ": " + curl_easy_strerror(rc)});
      continue;
    }
    if (!ref && !date_header.empty()) {
      time_t server = curl_getdate(date_header.c_str(), nullptr);
      // The header says the second the answer was made; compare its middle with the middle of
      // our request.
      if (server > 0) ref = ProviderClock{url, (t0 + t1) / 2 - (static_cast<Millis>(server) * 1000 + 500)};
    }
    if (status == 200) {
      rows.push_back({"provider:" + s.id, true, "GET " + url + ": 200, credentials accepted"});
      continue;
    }
    auto j = nlohmann::json::parse(body, nullptr, false);
    std::string detail;
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      int code = j["error"].value("code", 0);
      detail = "error " + std::to_string(code) + " " + j["error"].value("message", std::string());
      if (code == 190) detail += " (token rejected: renew it)";
      if (code == 100) detail += " (check phone_number_id " + s.phone_number_id + ")";
    }
    rows.push_back({"provider:" + s.id, false, "GET " + url + ": HTTP " + std::to_string(status) + (detail.empty() ? "" : ", " + detail)});
  }
}

// The kernel's view, as systemd's NTPSynchronized (timedatectl) reads it: adjtimex(2) and a
// maximum error below 16 s (src/basic/time-util.c ntp_synced(): STA_UNSYNC alone is ignored, as
// NTP clients may set it to keep the kernel off the RTC). With the provider's clock at hand
// (--check-providers), the measured offset decides: it is what the deliveries are judged by.
void check_clock(const DoctorOptions& o, const std::optional<ProviderClock>& ref, std::vector<Check>& rows) {
  struct timex tx{};  // modes = 0: read only
  int state = ::ntp_adjtime(&tx);
  const bool kernel_known = state != -1;
  const bool kernel_synced = kernel_known && tx.maxerror < 16000000;
  std::string kernel = !kernel_known ? std::string("the kernel's NTP state is not readable (") + std::strerror(errno) + ")"
                       : kernel_synced ? "the kernel reports it synchronised (max error " + std::to_string(tx.maxerror / 1000) + " ms)"
                                       : "the kernel reports it not synchronised (no NTP client disciplines it)";
  if (ref) {
    const Millis off = ref->skew_ms;
    const std::string amount = std::to_string(std::llabs(off)) + " ms " + (off >= 0 ? "ahead of" : "behind");
    if (std::llabs(off) > o.max_clock_skew_ms) {
      rows.push_back({"clock_sync", false, "system clock is " + amount + " the provider's (Date header of " + ref->url + "; limit " +
                                               std::to_string(o.max_clock_skew_ms) + " ms); " + kernel +
                                               ": fix time synchronisation (chrony or systemd-timesyncd) before the morning"});
    } else {
      rows.push_back({"clock_sync", true, "system clock within " + std::to_string(o.max_clock_skew_ms) + " ms of the provider's (" + amount +
                                              " it, Date header resolution 1 s); " + kernel});
    }
    return;
  }
  if (kernel_synced) {
    rows.push_back({"clock_sync", true, kernel});
  } else {
    rows.push_back({"clock_sync", false, "system clock: " + kernel +
                                             "; run an NTP client (chrony or systemd-timesyncd), or add --check-providers to measure the "
                                             "offset against the provider's clock instead"});
  }
}

/// whatsapp_api_version: the configured Graph API version against Meta's dated table
/// (channels/graph_api.hpp): a warning from 60 days before its end, a failure after it.
void check_api_version(const Config& cfg, Millis now, std::vector<Check>& rows) {
  if (cfg.senders_of(Channel::whatsapp).empty()) return;
  auto today = local_date(now, cfg.default_timezone);
  if (!today) return;  // the timezone_data row says why
  const auto c = channels::check_graph_api_version(cfg.whatsapp.api_version, *today);
  using L = channels::GraphApiVersionCheck::Level;
  rows.push_back({"whatsapp_api_version", c.level != L::expired, c.message, c.level == L::warn || c.level == L::unknown});
}

int doctor(const GlobalOptions& g, const DoctorOptions& o) {
  std::vector<Check> rows;
  Config cfg;
  bool config_ok = check_config(g, rows, cfg);
  if (!g.database.empty()) {
    cfg.database_path = g.database;
    cfg.database_url.clear();  // --database names a SQLite file, as for every command
  }
  check_timezones(cfg, rows);
  std::unique_ptr<store::Db> db;
  check_database(cfg, o, rows, db);
  // [database] url: dispatch's ledger is on PostgreSQL (the night is still planned on the SQLite
  // file checked above): reachable, migrated to this build's level, its tables usable.
  if (!cfg.database_url.empty()) {
    for (auto& r : store::check_pg_ledger(cfg.database_url)) rows.push_back({r.name, r.ok, r.message});
  }
  check_senders(cfg, config_ok, rows);
  // Which delivery day: --date, else the next slot's day by the (possibly simulated) clock.
  auto clock = make_clock_from_env();
  std::string day = o.date;
  try {
    day = resolve_date_option(o.date, cfg, clock->now());
    check_plan(cfg, db.get(), day, clock->now(), rows);
    check_emergency_content(cfg, db.get(), day, rows);
    check_templates(cfg, db.get(), day, rows);
    check_api_version(cfg, clock->now(), rows);
  } catch (const std::exception& e) {  // e.g. no time zone data: the timezone_data row says why
    rows.push_back({"plan", false, std::string("not checked: ") + e.what()});
  }
  // The installed schedule (systemd timers, crontabs) against [schedule], on this host's zone.
  try {
    std::vector<ScheduleRow> srows;
    inspect_installed_schedule(cfg, clock->now(), host_timezone(), srows);
    for (auto& r : srows) rows.push_back({r.name, r.ok, r.message});
  } catch (const std::exception& e) {
    rows.push_back({"schedule", false, std::string("not checked: ") + e.what()});
  }
  std::optional<ProviderClock> ref;
  if (o.check_providers && config_ok) check_providers(cfg, rows, ref);
  check_clock(o, ref, rows);

  bool all_ok = std::all_of(rows.begin(), rows.end(), [](const Check& c) { return c.ok; });
  if (g.json) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : rows) {
      nlohmann::json row{{"name", c.name}, {"ok", c.ok}, {"message", c.message}};
      if (c.warn) row["warn"] = true;
      checks.push_back(std::move(row));
    }
    print_json({{"ok", all_ok}, {"date", day}, {"checks", checks}});
  } else {
    for (const auto& c : rows) std::cout << (!c.ok ? "FAIL  " : c.warn ? "WARN  " : "ok    ") << c.name << ": " << c.message << "\n";
    std::cout << (all_ok ? "doctor: all checks passed\n" : "doctor: some checks failed\n");
  }
  return all_ok ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_doctor_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<DoctorOptions>();
  auto* sub = app.add_subcommand("doctor", "Pre-flight check: config, database (and the PostgreSQL ledger when [database] url is set), disk, permissions, time zones, clock, senders, credentials, tomorrow's plan");
  sub->add_option("--min-free-mb", o->min_free_mb, "Free space required on the database's file system (default 1024)")
      ->check(CLI::Range(0L, 100000000L));
  sub->add_option("--date", o->date, "Delivery day whose plan is checked (default: the day of the next slot)");
  sub->add_flag("--check-providers", o->check_providers,
                "Also GET each WhatsApp sender's phone number with its token, and compare the clock with the provider's");
  sub->add_option("--max-clock-skew-ms", o->max_clock_skew_ms, "Largest accepted offset from the provider's clock (default 2000)")
      ->check(CLI::Range(0L, 86400000L));
  sub->fallthrough();  // global flags may follow: `daybreak doctor --json`
  sub->callback([o, &g, &action] { action = [o, &g] { return doctor(g, *o); }; });
}

}  // namespace daybreak
