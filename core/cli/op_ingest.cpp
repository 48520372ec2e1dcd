// `daybreak ingest --spool DIR`: the status-callback ingest for sites whose web front receives
// Meta's webhooks and spools the raw requests, one file per request in the format
// of channels/status_parse.hpp. Each file goes through the receiver's own path (verify the
// X-Hub-Signature-256 over the raw body, store it, apply its statuses), so the two cannot drift.
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/callbacks.hpp"
#include "cli/commands.hpp"
#include "store/pg_status.hpp"

namespace daybreak {
namespace {

struct IngestOptions {
  std::string spool;
};

}  // namespace

void add_ingest_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<IngestOptions>();
  auto* sub = app.add_subcommand("ingest", "Verify, store and apply spooled WhatsApp status callbacks");
  sub->fallthrough();  // global flags may follow: `daybreak ingest --spool DIR --json`
  sub->add_option("--spool", o->spool, "Directory of spooled requests (*.req); done/ and rejected/ are made in it")->required();
  sub->callback([o, &g, &action] {
    action = [o, &g] {
      auto ctx = make_context(g, "daybreak");
      if (!ctx.cfg.whatsapp.app_secret.configured()) {
        throw ConfigError("whatsapp.app_secret is not set: status callbacks cannot be verified, so none is ingested");
      }
      nlohmann::json rep;
      if (!ctx.cfg.database_url.empty()) {
        // The PostgreSQL ledger; the SQLite file, when present, keeps account-error alerts.
        store::PgStatusStore pg(ctx.cfg.database_url, /*migrate=*/true);
        std::unique_ptr<store::Db> alerts_db;
        std::error_code ec;
        if (std::filesystem::exists(ctx.cfg.database_path, ec)) alerts_db = std::make_unique<store::Db>(ctx.cfg.database_path);
        rep = ingest_spool_pg(pg, alerts_db.get(), ctx.cfg, o->spool, ctx.clock->now(), *ctx.log);
      } else {
        store::Db db(ctx.cfg.database_path);
        rep = ingest_spool(db, ctx.cfg, o->spool, ctx.clock->now(), *ctx.log);
      }
      if (ctx.json) {
        print_json(rep);
      } else {
        std::cout << rep["files"] << " file(s): " << rep["stored"] << " stored (" << rep["duplicates"] << " duplicate), "
                  << rep["rejected"].size() << " rejected, " << rep["malformed"].size() << " malformed; "
                  << rep["new_updates"] << " new status(es), " << rep["applied"] << " applied ("
                  << rep["reconciled"] << " reconciled), " << rep["pending"] << " pending\n";
        for (const auto& r : rep["rejected"]) {
          std::cout << "rejected " << r["file"].get<std::string>() << ": " << r["reason"].get<std::string>() << "\n";
        }
        for (const auto& m : rep["malformed"]) {
          std::cout << "malformed " << m["file"].get<std::string>() << ": " << m["error"].get<std::string>() << "\n";
        }
      }
      return rep["rejected"].empty() ? kExitOk : kExitCheckFailed;
    };
  });
}

}  // namespace daybreak
