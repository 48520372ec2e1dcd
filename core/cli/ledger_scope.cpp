// Which `daybreak` subcommands may run while [database] url names a PostgreSQL ledger
// (README "What speaks PostgreSQL, precisely"). Three kinds:
//  - they speak PostgreSQL: status, doctor, migrate-ledger, pause, resume, cancel, resend,
//    content withdraw, content replace, export deliveries|attempts, dead (list, show, replay,
//    dismiss), audit; and, changing the SQLite file too (both or neither, PostgreSQL reached
//    first): send-now, assign and advisors add|update|pause|resume|opt-in|opt-out;
//  - they work on the local SQLite file by design: the planning side (import, generate, explain,
//    advisors list|show, content list|show), the file itself (backup, restore, retention), what is
//    kept only there (alerts, schedule, status rejected, ingest of spooled callbacks);
//  - every other one would change or report deliveries a dispatch on PostgreSQL never sees, so
//    it is refused (exit 3, nothing opened) rather than silently writing the SQLite file.
//    `--database PATH` names the SQLite file explicitly and lifts the refusal.
#include <array>
#include <string_view>

#include "cli/op_support.hpp"
#include "config/config.hpp"

namespace daybreak::ops {
namespace {

// send-now, assign and the advisors changes are not here: they change the SQLite file and
// PostgreSQL together (op_send_now.cpp, op_overrides.cpp, op_advisors.cpp).
constexpr std::array<std::string_view, 2> kRefused = {"export reports", "serve"};

bool starts_with_word(std::string_view path, std::string_view prefix) {
  return path == prefix || (path.size() > prefix.size() && path.substr(0, prefix.size()) == prefix && path[prefix.size()] == ' ');
}

}  // namespace

bool refused_on_postgresql(const std::string& path) {
  for (auto p : kRefused) {
    if (starts_with_word(path, p)) return true;
  }
  return false;
}

void refuse_on_postgresql(const GlobalOptions& g, const std::string& path) {
  if (!refused_on_postgresql(path) || !g.database.empty()) return;
  auto ctx = make_context(g, "daybreak");
  if (ctx.cfg.database_url.empty()) return;
  throw ConfigError("daybreak " + path +
                    ": refused: [database] url names a PostgreSQL ledger and this command works only on the SQLite file, "
                    "so a dispatch on PostgreSQL would not see it (README \"What speaks PostgreSQL, precisely\"); "
                    "give --database PATH to change the SQLite file anyway");
}

}  // namespace daybreak::ops
