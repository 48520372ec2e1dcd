// The WhatsApp error policy (channels/whatsapp_errors.hpp, docs/whatsapp-errors.md): every row
// of the table through the adapter's classification of a Meta error answer, an unknown code, the
// scopes' effect on breakers and senders, and the Graph API version dates.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "channels/graph_api.hpp"
#include "channels/whatsapp.hpp"
#include "channels/whatsapp_errors.hpp"
#include "config/config.hpp"
#include "domain/breaker.hpp"
#include "domain/retry.hpp"
#include "engine/sender_pool.hpp"

namespace daybreak::channels {
namespace {

WhatsAppConfig wa_config() {
  WhatsAppConfig wa;
  wa.graph_base = "http://127.0.0.1:1";
  wa.number_pause_ms = 3'600'000;
  wa.account_pause_ms = 86'400'000;
  return wa;
}

SenderConfig wa_sender() {
  SenderConfig s;
  s.id = "wa-1";
  s.phone_number_id = "100000001";
  s.token = "tok";
  return s;
}

/// Meta's error answer for `code` (the shape of the "WhatsApp error codes" page).
Response error_answer(long code, long subcode = 0) {
  Response r;
  r.transport_ok = true;
  r.status = 400;
  nlohmann::json e = {{"message", "(#" + std::to_string(code) + ") title"},
                      {"type", "OAuthException"},
                      {"code", code},
                      {"error_data", {{"messaging_product", "whatsapp"}, {"details", "details"}}},
                      {"fbtrace_id", "AbCdEfGhIjKlMnOpQrStUvW"}};
  if (subcode) e["error_subcode"] = subcode;
  r.body = nlohmann::json{{"error", e}}.dump();
  return r;
}

TEST(WhatsAppErrorPolicy, EveryRowIsClassifiedAsTheTableSays) {
  const auto wa = wa_config();
  WhatsAppAdapter a(wa, wa_sender());
  std::size_t rows = 0;
  for (const auto& row : whatsapp_error_table()) {
    ++rows;
    for (long code : {row.code, row.code_last > row.code ? row.code_last : row.code}) {
      SCOPED_TRACE("code " + std::to_string(code));
      const auto res = a.classify(error_answer(code, row.subcode >= 0 ? row.subcode : 0));
      EXPECT_FALSE(res.accepted);
      EXPECT_FALSE(res.unknown_code);
      EXPECT_EQ(res.kind, row.kind);
      EXPECT_EQ(res.scope, row.scope);
      EXPECT_EQ(res.error_code, std::to_string(code));
      EXPECT_EQ(res.trace_id, "AbCdEfGhIjKlMnOpQrStUvW");
      EXPECT_EQ(res.retry_after_ms, row.retry_after_ms);
      EXPECT_EQ(classify_whatsapp_error(code, 0), row.kind);
      // Actions and kinds agree: the dispatcher acts on kind and scope.
      switch (row.action) {
        case WhatsAppAction::pause_number:
          EXPECT_EQ(row.scope, ErrorScope::phone_number);
          EXPECT_EQ(row.kind, FailureKind::sender_blocked);
          EXPECT_EQ(res.pause_ms, wa.number_pause_ms);
          break;
        case WhatsAppAction::stop_account:
          EXPECT_EQ(row.scope, ErrorScope::account);
          EXPECT_EQ(row.kind, FailureKind::sender_blocked);
          EXPECT_EQ(res.pause_ms, wa.account_pause_ms);
          break;
        case WhatsAppAction::template_fallback:
          EXPECT_EQ(row.scope, ErrorScope::template_);
          EXPECT_EQ(row.kind, FailureKind::permanent);  // no retry: emergency content, else the next channel
          EXPECT_EQ(res.pause_ms, 0);
          break;
        case WhatsAppAction::next_channel: EXPECT_EQ(row.kind, FailureKind::permanent); break;
        case WhatsAppAction::credentials: EXPECT_EQ(row.kind, FailureKind::credentials); break;
        case WhatsAppAction::rate_limit:
          EXPECT_EQ(row.kind, FailureKind::sender_rate_limited);
          EXPECT_GT(row.retry_after_ms, 0);
          break;
        case WhatsAppAction::retry:
          EXPECT_TRUE(row.kind == FailureKind::retryable || row.kind == FailureKind::recipient_throttled);
          break;
      }
      if (row.kind == FailureKind::sender_blocked) {
        EXPECT_TRUE(row.action == WhatsAppAction::pause_number || row.action == WhatsAppAction::stop_account);
      }
    }
  }
  EXPECT_GE(rows, 40u);
}

TEST(WhatsAppErrorPolicy, TheCodesThatWereWrongOrMissing) {
  struct Want {
    long code;
    ErrorScope scope;
    WhatsAppAction action;
  };
  const Want wants[] = {
      {131048, ErrorScope::phone_number, WhatsAppAction::pause_number},
      {133010, ErrorScope::phone_number, WhatsAppAction::pause_number},
      {368, ErrorScope::account, WhatsAppAction::stop_account},
      {131031, ErrorScope::account, WhatsAppAction::stop_account},
      {131042, ErrorScope::account, WhatsAppAction::stop_account},
      {132015, ErrorScope::template_, WhatsAppAction::template_fallback},
      {132016, ErrorScope::template_, WhatsAppAction::template_fallback},
      {132001, ErrorScope::template_, WhatsAppAction::template_fallback},
      {131053, ErrorScope::template_, WhatsAppAction::template_fallback},
      {131050, ErrorScope::advisor, WhatsAppAction::next_channel},
      {131056, ErrorScope::advisor, WhatsAppAction::retry},
  };
  for (const auto& w : wants) {
    const auto* r = find_whatsapp_error(w.code, 0);
    ASSERT_NE(r, nullptr) << w.code;
    EXPECT_EQ(r->scope, w.scope) << w.code;
    EXPECT_EQ(r->action, w.action) << w.code;
  }
  // The pair rate limit (about one message per 6 s to one user) is never retried sooner.
  EXPECT_GE(find_whatsapp_error(131056, 0)->retry_after_ms, 6000);
  RetryPolicy p;
  for (std::uint64_t random : {0ULL, 1ULL << 40, ~0ULL}) {
    auto d = decide_after_failure(p, FailureKind::recipient_throttled, 1, 1'000'000, 1'000'000 + 300'000, false,
                                  find_whatsapp_error(131056, 0)->retry_after_ms, random);
    EXPECT_EQ(d.action, RetryDecision::retry);
    EXPECT_GE(d.next_attempt_at, 1'000'000 + 6000);
  }
  // A range row: Meta's 200-299 "API Permission".
  EXPECT_EQ(find_whatsapp_error(250, 0)->action, WhatsAppAction::credentials);
}

TEST(WhatsAppErrorPolicy, UnknownCodeTakesTheCautiousDefault) {
  WhatsAppAdapter a(wa_config(), wa_sender());
  const auto res = a.classify(error_answer(139999));
  EXPECT_TRUE(res.unknown_code);
  EXPECT_EQ(res.kind, FailureKind::retryable);
  EXPECT_EQ(res.scope, ErrorScope::message);
  EXPECT_EQ(res.pause_ms, 0);
  EXPECT_EQ(res.error_code, "139999");
  EXPECT_EQ(find_whatsapp_error(139999, 0), nullptr);
  // Bounded: retryable attempts end at max_attempts (then next channel or dead).
  RetryPolicy p;
  EXPECT_EQ(decide_after_failure(p, FailureKind::retryable, p.max_attempts, 0, 600'000, false, 0, 7).action,
            RetryDecision::dead);
}

TEST(WhatsAppErrorPolicy, SendAnswerHeldForQualityAssessment) {
  WhatsAppAdapter a(wa_config(), wa_sender());
  Response r;
  r.transport_ok = true;
  r.status = 200;
  r.body = R"({"messaging_product":"whatsapp","contacts":[{"input":"+91","wa_id":"91"}],)"
           R"("messages":[{"id":"wamid.X","message_status":"held_for_quality_assessment"}]})";
  auto res = a.classify(r);
  EXPECT_TRUE(res.accepted);
  EXPECT_TRUE(res.held_for_quality);
  r.body = R"({"messages":[{"id":"wamid.Y","message_status":"accepted"}]})";
  res = a.classify(r);
  EXPECT_TRUE(res.accepted);
  EXPECT_FALSE(res.held_for_quality);
}

// docs/whatsapp-errors.md is the table's readable form: each code has its row, with its scope and action.
TEST(WhatsAppErrorPolicy, TheDocumentListsEveryRow) {
  std::ifstream in(std::string(DAYBREAK_SOURCE_DIR) + "/docs/whatsapp-errors.md");
  ASSERT_TRUE(in) << "docs/whatsapp-errors.md";
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, std::string> doc_rows;  // "| 131048 |" → the whole line
  std::string line;
  while (std::getline(ss, line)) {
    if (line.rfind("| ", 0) != 0) continue;
    const auto end = line.find(" |", 2);
    if (end != std::string::npos) doc_rows[line.substr(2, end - 2)] = line;
  }
  for (const auto& row : whatsapp_error_table()) {
    const std::string key =
        row.code_last > row.code ? std::to_string(row.code) + "-" + std::to_string(row.code_last) : std::to_string(row.code);
    auto it = doc_rows.find(key);
    ASSERT_NE(it, doc_rows.end()) << "no row for " << key;
    EXPECT_NE(it->second.find("| " + std::string(to_string(row.scope)) + " |"), std::string::npos) << it->second;
    EXPECT_NE(it->second.find("`" + std::string(to_string(row.action)) + "`"), std::string::npos) << it->second;
  }
}

TEST(GraphApiVersions, WarnFromSixtyDaysBeforeTheEndAndFailAfterIt) {
  using L = GraphApiVersionCheck::Level;
  auto day = [](const char* s) { return *parse_date(s); };
  EXPECT_EQ(newest_graph_api_version(), "v26.0");
  EXPECT_EQ(WhatsAppConfig{}.api_version, "v26.0");
  EXPECT_EQ(check_graph_api_version("v26.0", day("2026-12-06")).level, L::ok);  // no end announced
  // v21.0: available until 2027-01-21 (Meta's Graph API changelog).
  EXPECT_EQ(check_graph_api_version("v21.0", day("2026-11-21")).level, L::ok);  // 61 days before
  auto c = check_graph_api_version("v21.0", day("2026-11-22"));                  // 60 days before
  EXPECT_EQ(c.level, L::warn);
  EXPECT_EQ(c.days_left, 60);
  EXPECT_NE(c.message.find("2027-01-21"), std::string::npos);
  EXPECT_EQ(check_graph_api_version("v21.0", day("2027-01-21")).level, L::warn);  // its last day
  c = check_graph_api_version("v21.0", day("2027-01-22"));
  EXPECT_EQ(c.level, L::expired);
  EXPECT_EQ(c.days_left, -1);
  EXPECT_EQ(check_graph_api_version("v99.0", day("2026-12-06")).level, L::unknown);
  // The table is newest first, and every end date parses.
  std::set<std::string_view> seen;
  for (const auto& v : graph_api_versions()) {
    EXPECT_TRUE(seen.insert(v.version).second);
    EXPECT_TRUE(parse_date(v.released).ok());
    if (!v.available_until.empty()) {
      EXPECT_TRUE(parse_date(v.available_until).ok());
    }
  }
}

}  // namespace
}  // namespace daybreak::channels

namespace daybreak::engine {
namespace {

TEST(BreakerForceOpen, AProviderBlockOpensForTheLongPauseThenProbes) {
  BreakerPolicy p;
  Breaker b(p);
  b.force_open(1000, 3'600'000);
  EXPECT_EQ(b.state(1000), BreakerState::open);
  EXPECT_FALSE(b.usable(1000 + p.max_open_ms + 1));  // not the usual short cool-down
  EXPECT_EQ(b.opened_count(), 1);
  EXPECT_EQ(b.state(1000 + 3'600'000), BreakerState::half_open);
  for (int i = 0; i < p.half_open_probes; ++i) {
    ASSERT_TRUE(b.allow(1000 + 3'600'000));
    b.record(false, 1000 + 3'600'000);
  }
  EXPECT_EQ(b.state(1000 + 3'600'001), BreakerState::closed);
}

TEST(SenderPoolBlock, NumberBlockPausesOneSenderAccountBlockStopsTheAccount) {
  Config cfg;
  auto add = [&](const char* id, const char* token, const char* account) {
    SenderConfig s;
    s.id = id;
    s.channel = Channel::whatsapp;
    s.phone_number_id = std::string("pn-") + id;
    s.token = token;
    s.account = account;
    cfg.senders.push_back(s);
  };
  add("wa-1", "token-a", "");
  add("wa-2", "token-a", "");         // same token: the same account by default
  add("wa-3", "token-b", "");         // another account
  add("wa-4", "token-c", "waba-9");   // named accounts
  add("wa-5", "token-d", "waba-9");
  SenderPool pool(cfg, 0);
  EXPECT_EQ(pool[0].account, pool[1].account);
  EXPECT_NE(pool[0].account, pool[2].account);
  EXPECT_EQ(pool[3].account, "waba-9");
  EXPECT_EQ(pool[0].account.find("token-a"), std::string::npos);  // never the token itself
  auto none = [](std::size_t) { return std::size_t{0}; };

  // 131048 on wa-1: only wa-1 pauses; the channel's traffic picks wa-2 or wa-3.
  auto fresh = pool.block(0, ErrorScope::phone_number, 3'600'000, "131048 Spam rate limit hit", 10);
  EXPECT_EQ(fresh, (std::vector<std::size_t>{0}));
  EXPECT_EQ(pool[0].breaker.state(11), BreakerState::open);
  EXPECT_EQ(pool[1].breaker.state(11), BreakerState::closed);
  for (int i = 0; i < 20; ++i) EXPECT_NE(pool.pick(Channel::whatsapp, 0, 11 + i, none), 0);
  EXPECT_TRUE(pool.block(0, ErrorScope::phone_number, 3'600'000, "again", 12).empty());  // not newly blocked

  // 368 on wa-2: wa-1 and wa-2 (one token) stop; wa-3 still sends.
  fresh = pool.block(1, ErrorScope::account, 86'400'000, "368 Temporarily blocked", 20);
  EXPECT_EQ(fresh, (std::vector<std::size_t>{1}));  // wa-1 was already blocked
  EXPECT_EQ(pool[0].blocked_scope, ErrorScope::account);
  EXPECT_EQ(pool[1].blocked_scope, ErrorScope::account);
  EXPECT_GE(pool[0].blocked_until, 20 + 86'400'000);
  EXPECT_EQ(pool[2].blocked_until, 0);
  EXPECT_EQ(pool.pick(Channel::whatsapp, 1, 21, none), 2);

  // An account named in the config: wa-4 and wa-5 together, whatever their tokens.
  fresh = pool.block(4, ErrorScope::account, 1000, "131031 Account has been locked", 30);
  EXPECT_EQ(fresh, (std::vector<std::size_t>{3, 4}));
  EXPECT_EQ(pool.pick(Channel::whatsapp, -1, 31, none), 2);
}

}  // namespace
}  // namespace daybreak::engine
