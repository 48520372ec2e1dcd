// Status callbacks: parsing Meta's documented webhook payloads, the monotonic
// fold over any order and duplication, and the store's apply path: idempotent, monotonic,
// reconciling uncertain sends, keeping unmatched statuses pending, and never touched by a request
// whose signature does not verify.
#include "domain/status_event.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "db_fixture.hpp"
#include "app/callbacks.hpp"
#include "channels/signature.hpp"
#include "channels/status_parse.hpp"
#include "config/config.hpp"
#include "domain/time.hpp"
#include "store/advisors.hpp"
#include "store/content.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"
#include "store/retention.hpp"
#include "store/status_events.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;
using channels::parse_spool_request;
using channels::parse_status_webhook;

// ---- Meta's documented payloads (Status messages webhook reference) -----------------------

/// A status webhook as Meta documents it, with one status object.
std::string webhook(const std::string& status_json) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
    "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
    "statuses":[)" + status_json + R"(]},"field":"messages"}]}]})";
}

const std::string kSent = R"({"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA","status":"sent",
  "timestamp":"1750263773","recipient_id":"16505551234","biz_opaque_callback_data":"4711",
  "conversation":{"id":"CONVERSATION_ID","expiration_timestamp":"1750350173","origin":{"type":"utility"}},
  "pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}})";
const std::string kDelivered = R"({"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA","status":"delivered",
  "timestamp":"1750263774","recipient_id":"16505551234","biz_opaque_callback_data":"4711",
  "pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}})";
const std::string kRead = R"({"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA","status":"read",
  "timestamp":"1750263800","recipient_id":"16505551234"})";
const std::string kFailed = R"({"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA","status":"failed",
  "timestamp":"1750263775","recipient_id":"16505551234","biz_opaque_callback_data":"4711",
  "errors":[{"code":131026,"title":"Message undeliverable","message":"Message undeliverable",
  "error_data":{"details":"Message Undeliverable."},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]})";

TEST(StatusParseTest, SentWithConversationAndPricing) {
  auto r = parse_status_webhook(webhook(kSent));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->updates.size(), 1u);
  const auto& u = r->updates[0];
  EXPECT_EQ(u.provider_message_id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA");
  EXPECT_EQ(u.status, MessageStatus::sent);
  EXPECT_EQ(u.provider_at, 1'750'263'773'000);
  EXPECT_EQ(u.recipient_id, "16505551234");
  EXPECT_EQ(u.delivery_id, std::optional<std::int64_t>(4711));
  EXPECT_EQ(u.phone_number_id, "106540352242922");
  EXPECT_FALSE(u.error_code);
}

TEST(StatusParseTest, DeliveredAndReadWithoutCallbackData) {
  auto d = parse_status_webhook(webhook(kDelivered));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->updates.at(0).status, MessageStatus::delivered);
  auto r = parse_status_webhook(webhook(kRead));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->updates.at(0).status, MessageStatus::read);
  EXPECT_EQ(r->updates.at(0).provider_at, 1'750'263'800'000);
  EXPECT_FALSE(r->updates.at(0).delivery_id);  // read statuses may come without it: matched by message id
}

TEST(StatusParseTest, FailedCarriesTheFirstError) {
  auto r = parse_status_webhook(webhook(kFailed));
  ASSERT_TRUE(r);
  const auto& u = r->updates.at(0);
  EXPECT_EQ(u.status, MessageStatus::failed);
  EXPECT_EQ(u.error_code, std::optional<long>(131026));
  EXPECT_EQ(u.error_title, "Message undeliverable");
  EXPECT_EQ(u.error_details, "Message Undeliverable.");
}

TEST(StatusParseTest, SeveralStatusesEntriesAndIgnoredParts) {
  const std::string body = R"({"object":"whatsapp_business_account","entry":[
    {"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","statuses":[)" + kSent + "," + kRead +
                           R"(]}}]},
    {"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED"}},
                         {"field":"messages","value":{"messaging_product":"whatsapp","contacts":[],"messages":[{"id":"wamid.in"}]}},
                         {"field":"messages","value":{"statuses":[{"id":"wamid.V","status":"played","timestamp":"1"}]}}]}]})";
  auto r = parse_status_webhook(body);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->updates.size(), 2u);
  EXPECT_EQ(r->updates[1].status, MessageStatus::read);
  EXPECT_EQ(r->ignored, 2);  // the template change, and the voice message's "played"
}

TEST(StatusParseTest, CallbackDataThatIsNotOurIdNamesNoDelivery) {
  auto r = parse_status_webhook(webhook(R"({"id":"wamid.X","status":"sent","timestamp":"5","biz_opaque_callback_data":"campaign-7"})"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->updates.at(0).delivery_id);
}

// Found by tests/fuzz/fuzz_status_webhook (corpus big_timestamp.json): 18 digits of seconds
// passed the digit check and overflowed when turned into milliseconds (undefined behaviour).
TEST(StatusParseTest, TimestampTooLargeForMillisecondsIsRejected) {
  for (const char* ts : {R"("999999999999999999")", "999999999999999999", "18446744073709551615", R"("253402300800")"}) {
    auto r = parse_status_webhook(webhook(std::string(R"({"id":"wamid.A","status":"sent","timestamp":)") + ts + "}"));
    ASSERT_TRUE(r) << ts;  // the status is rejected alone, the body still parses
    EXPECT_TRUE(r->updates.empty()) << ts;
    ASSERT_EQ(r->rejected.size(), 1u) << ts;
    EXPECT_EQ(r->rejected[0].reason.rfind("entry[0].changes[0].value.statuses[0].timestamp:", 0), 0u) << r->rejected[0].reason;
  }
  auto r = parse_status_webhook(webhook(R"({"id":"wamid.A","status":"sent","timestamp":"253402300799"})"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->updates.at(0).provider_at, 253'402'300'799'000);
}

TEST(StatusParseTest, MalformedInputNamesTheField) {
  struct Case {
    std::string body;
    std::string field;
  };
  const Case cases[] = {
      {"not json", "body"},
      {"[]", "body"},
      {R"({"object":"page","entry":[]})", "object"},
      {R"({"object":"whatsapp_business_account"})", "entry"},
      {R"({"object":"whatsapp_business_account","entry":[{"id":"1"}]})", "entry[0].changes"},
      {R"({"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]})", "entry[0].changes[0].value"},
      {webhook(R"({"status":"sent","timestamp":"1"})"), "entry[0].changes[0].value.statuses[0].id"},
      {webhook(R"({"id":"wamid.A","timestamp":"1"})"), "entry[0].changes[0].value.statuses[0].status"},
      {webhook(R"({"id":"wamid.A","status":"sent","timestamp":"yesterday"})"), "entry[0].changes[0].value.statuses[0].timestamp"},
      {webhook(R"({"id":"wamid.A","status":"sent"})"), "entry[0].changes[0].value.statuses[0].timestamp"},
      {webhook(R"({"id":"wamid.A","status":"failed","timestamp":"1","errors":[{"code":"x"}]})"),
       "entry[0].changes[0].value.statuses[0].errors[0].code"},
      {webhook(R"({"id":"wamid.A","status":"sent","timestamp":"1","biz_opaque_callback_data":7})"),
       "entry[0].changes[0].value.statuses[0].biz_opaque_callback_data"},
  };
  for (const auto& c : cases) {
    auto r = parse_status_webhook(c.body);
    if (c.field == "body" || c.field == "object" || c.field == "entry") {
      // The envelope itself: nothing can be read, the whole body is malformed.
      ASSERT_FALSE(r) << c.body;
      EXPECT_EQ(r.error().message.rfind(c.field + ":", 0), 0u) << r.error().message;
      continue;
    }
    // One entry, change or status: rejected on its own, naming the field; the body still parses.
    ASSERT_TRUE(r) << c.body << ": " << r.error().message;
    EXPECT_TRUE(r->updates.empty()) << c.body;
    ASSERT_EQ(r->rejected.size(), 1u) << c.body;
    EXPECT_EQ(r->rejected_total, 1);
    EXPECT_EQ(r->rejected[0].reason.rfind(c.field + ":", 0), 0u) << r->rejected[0].reason;
    EXPECT_EQ(c.field.rfind(r->rejected[0].path, 0), 0u) << r->rejected[0].path << " is not a prefix of " << c.field;
    EXPECT_FALSE(r->rejected[0].excerpt.empty());
  }
}

// Meta batches up to 1,000 statuses in one POST: one it cannot be read (here a timestamp in an
// unexpected form) is rejected alone, with its id, path and reason; the 999 others are returned.
TEST(StatusParseTest, OneBadStatusAmongAThousandIsRejectedAlone) {
  nlohmann::json statuses = nlohmann::json::array();
  for (int i = 0; i < 1000; ++i) {
    statuses.push_back({{"id", "wamid.N" + std::to_string(i)}, {"status", "delivered"}, {"timestamp", std::to_string(1'750'000'000 + i)}});
  }
  statuses[417]["timestamp"] = "2026-12-06T21:00:00Z";
  nlohmann::json body = {{"object", "whatsapp_business_account"},
                         {"entry", {{{"id", "1"}, {"changes", {{{"field", "messages"}, {"value", {{"statuses", statuses}}}}}}}}}};
  auto r = parse_status_webhook(body.dump());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->updates.size(), 999u);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(r->rejected[0].provider_message_id, "wamid.N417");
  EXPECT_EQ(r->rejected[0].path, "entry[0].changes[0].value.statuses[417]");
  EXPECT_EQ(r->rejected[0].reason,
            "entry[0].changes[0].value.statuses[417].timestamp: expected unix seconds, got \"2026-12-06T21:00:00Z\"");
  EXPECT_NE(r->rejected[0].excerpt.find("2026-12-06T21:00:00Z"), std::string::npos);
  for (const auto& u : r->updates) EXPECT_NE(u.provider_message_id, "wamid.N417");
}

// What is kept of rejected elements is bounded: at most kRejectsPerBodyMax rows per body, each
// text at most kRejectTextMax bytes (cut on a UTF-8 boundary); the total still counts them all.
TEST(StatusParseTest, RejectsAreBoundedInNumberAndSize) {
  nlohmann::json statuses = nlohmann::json::array();
  const std::string huge(5000, 'x');
  for (int i = 0; i < 300; ++i) {
    statuses.push_back({{"id", "wamid." + huge}, {"status", "sent"}, {"timestamp", "soon"}, {"note", "\u0917\u0941" + huge}});
  }
  nlohmann::json body = {{"object", "whatsapp_business_account"},
                         {"entry", {{{"id", "1"}, {"changes", {{{"field", "messages"}, {"value", {{"statuses", statuses}}}}}}}}}};
  auto r = parse_status_webhook(body.dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rejected_total, 300);
  EXPECT_EQ(r->rejected.size(), kRejectsPerBodyMax);
  for (const auto& x : r->rejected) {
    EXPECT_LE(x.excerpt.size(), kRejectTextMax);
    EXPECT_LE(x.provider_message_id.size(), kRejectTextMax);
    EXPECT_LE(x.reason.size(), kRejectTextMax);
  }
}

// value.errors (Meta, "Errors messages webhooks reference"): account-level errors are read,
// with the phone number and WABA they are about.
TEST(StatusParseTest, AccountErrorsAreRead) {
  const std::string b = R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
    "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
    "errors":[{"code":130429,"title":"Rate limit hit","message":"Rate limit hit","error_data":{"details":"Message failed to send because there were too many messages sent from this phone number in a short period of time"},
    "href":"/documentation/business-messaging/whatsapp/support/error-codes"}]},"field":"messages"}]}]})";
  auto r = parse_status_webhook(b);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->updates.empty());
  EXPECT_TRUE(r->rejected.empty());
  ASSERT_EQ(r->account_errors.size(), 1u);
  const auto& e = r->account_errors[0];
  EXPECT_EQ(e.code, 130429);
  EXPECT_EQ(e.title, "Rate limit hit");
  EXPECT_EQ(e.phone_number_id, "106540352242922");
  EXPECT_EQ(e.waba_id, "102290129340398");
  EXPECT_NE(e.details.find("too many messages"), std::string::npos);
}

TEST(StatusParseTest, SpoolRequestKeepsTheBodyByteForByte) {
  const std::string body = "{\"a\":\"\xE2\x80\x94\\/\"}\n\n";
  auto r = parse_spool_request("x-hub-signature-256: sha256=abc\r\nContent-Type: application/json\r\n\r\n" + body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->signature, "sha256=abc");
  EXPECT_EQ(r->body, body);
  auto round = parse_spool_request(channels::format_spool_request("sha256=def", body));
  ASSERT_TRUE(round);
  EXPECT_EQ(round->signature, "sha256=def");
  EXPECT_EQ(round->body, body);
  auto unsigned_req = parse_spool_request(channels::format_spool_request("", "{}"));
  ASSERT_TRUE(unsigned_req);
  EXPECT_EQ(unsigned_req->signature, "");
  EXPECT_FALSE(parse_spool_request("X-Hub-Signature-256: sha256=abc\n{}"));   // no empty line
  EXPECT_FALSE(parse_spool_request("not a header\n\n{}"));
}

// ---- The monotonic rule --------------------------------------------------------------------

TEST(StatusFoldTest, OutcomeTable) {
  using S = MessageStatus;
  EXPECT_FALSE(fold_statuses({}).outcome());
  EXPECT_EQ(fold_statuses({S::sent}).outcome(), S::sent);
  EXPECT_EQ(fold_statuses({S::read, S::sent}).outcome(), S::read);
  EXPECT_EQ(fold_statuses({S::sent, S::failed}).outcome(), S::failed);
  EXPECT_EQ(fold_statuses({S::failed, S::delivered}).outcome(), S::delivered);  // delivered on one device
  EXPECT_EQ(fold_statuses({S::read, S::failed, S::sent}).outcome(), S::read);
}

TEST(StatusFoldTest, DeliveryStateAfterStatus) {
  using S = MessageStatus;
  using D = DeliveryState;
  EXPECT_EQ(delivery_state_after_status(D::accepted, S::delivered), D::delivered);
  EXPECT_EQ(delivery_state_after_status(D::accepted, S::read), D::read);
  EXPECT_EQ(delivery_state_after_status(D::delivered, S::read), D::read);
  EXPECT_FALSE(delivery_state_after_status(D::read, S::sent));        // never downgrades
  EXPECT_FALSE(delivery_state_after_status(D::read, S::delivered));
  EXPECT_FALSE(delivery_state_after_status(D::delivered, S::sent));
  EXPECT_FALSE(delivery_state_after_status(D::accepted, S::sent));
  EXPECT_FALSE(delivery_state_after_status(D::accepted, S::failed));  // failed records, never moves
  EXPECT_EQ(delivery_state_after_status(D::uncertain, S::sent), D::accepted);  // reconciliation
  EXPECT_EQ(delivery_state_after_status(D::uncertain, S::read), D::read);
  EXPECT_FALSE(delivery_state_after_status(D::sending, S::delivered));  // a live dispatch writes first
  EXPECT_TRUE(status_waits_for(D::sending));
  EXPECT_FALSE(status_waits_for(D::uncertain));
  EXPECT_EQ(delivery_state_after_status(D::retry_wait, S::sent), D::accepted);
  EXPECT_FALSE(delivery_state_after_status(D::uncertain, S::failed));
  EXPECT_FALSE(delivery_state_after_status(D::planned, S::read));
  EXPECT_FALSE(delivery_state_after_status(D::dead, S::read));
  EXPECT_FALSE(delivery_state_after_status(D::cancelled, S::delivered));
}

rc::Gen<MessageStatus> any_status() {
  return rc::gen::element(MessageStatus::sent, MessageStatus::delivered, MessageStatus::read, MessageStatus::failed);
}

RC_GTEST_PROP(StatusFoldProps, OrderAndDuplicatesDoNotMatter, ()) {
  auto statuses = *rc::gen::container<std::vector<MessageStatus>>(any_status());
  auto shuffled = statuses;
  const auto seed = *rc::gen::arbitrary<unsigned>();
  std::mt19937 rng(seed);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  auto doubled = statuses;
  doubled.insert(doubled.end(), statuses.begin(), statuses.end());
  const auto a = fold_statuses(statuses);
  const auto b = fold_statuses(shuffled);
  const auto c = fold_statuses(doubled);
  RC_ASSERT(a.outcome() == b.outcome());
  RC_ASSERT(a.outcome() == c.outcome());
  RC_ASSERT(a.best == b.best);
}

RC_GTEST_PROP(StatusFoldProps, ApplyingToADeliveryIsOrderIndependent, ()) {
  // Start accepted or uncertain; apply statuses in two different orders: the same end state.
  const auto start = *rc::gen::element(DeliveryState::accepted, DeliveryState::uncertain, DeliveryState::delivered);
  auto statuses = *rc::gen::container<std::vector<MessageStatus>>(any_status());
  auto other = statuses;
  std::mt19937 rng(*rc::gen::arbitrary<unsigned>());
  std::shuffle(other.begin(), other.end(), rng);
  auto run = [start](const std::vector<MessageStatus>& v) {
    DeliveryState s = start;
    for (auto m : v) {
      if (auto n = delivery_state_after_status(s, m)) s = *n;
    }
    return s;
  };
  RC_ASSERT(run(statuses) == run(other));
}

// ---- The store: apply, reconcile, pending, find ---------------------------------------------

constexpr Millis kT0StatusEvent = 1'764'300'000'000;
constexpr const char* kSecret = "s3cret";

class StatusStoreTest : public test_support::DbTest {
 protected:
  StatusStoreTest() : DbTest("status") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    log_ = std::make_shared<spdlog::logger>("status-test", std::make_shared<spdlog::sinks::null_sink_mt>());
    run_id_ = test_support::add_content_and_run(*db_, kT0StatusEvent);
  }
  /// A delivery in `state`, with a provider message id when given.
  std::int64_t delivery(const std::string& advisor, DeliveryState state, const std::optional<std::string>& pmid = std::nullopt) {
    test_support::add_whatsapp_advisor(*db_, advisor, kT0StatusEvent);
    const store::DeliveryInsertParams p = test_support::planned_delivery(run_id_, advisor, "2026-11-28", kT0StatusEvent,
                                                                                  kT0StatusEvent, kT0StatusEvent);
    EXPECT_TRUE(store::DeliveryInsert(*db_, p));
    const std::int64_t id = db_->raw().getLastInsertRowid();
    SQLite::Statement q(db_->raw(), "UPDATE deliveries SET state = ?, provider_message_id = ?, accepted_at = ?, claim_owner = ? WHERE delivery_id = ?");
    q.bind(1, std::string(to_string(state)));
    store::bind_opt(q, 2, pmid);
    if (is_accepted_state(state)) {
      q.bind(3, kT0StatusEvent + 1'000);
    } else {
      q.bind(3);
    }
    if (state == DeliveryState::sending || state == DeliveryState::uncertain) {
      q.bind(4, "host:1:dead");
    } else {
      q.bind(4);
    }
    q.bind(5, id);
    q.exec();
    return id;
  }

  /// One status webhook body about a message.
  static std::string body(const std::string& pmid, const std::string& status, std::int64_t secs,
                          const std::optional<std::int64_t>& delivery_id = std::nullopt) {
    nlohmann::json st = {{"id", pmid}, {"status", status}, {"timestamp", std::to_string(secs)}, {"recipient_id", "919810012345"}};
    if (delivery_id) st["biz_opaque_callback_data"] = std::to_string(*delivery_id);
    if (status == "failed") st["errors"] = nlohmann::json::array({{{"code", 131026}, {"title", "Message undeliverable"}}});
    nlohmann::json j = {{"object", "whatsapp_business_account"},
                        {"entry", {{{"id", "1"}, {"changes", {{{"field", "messages"}, {"value", {{"statuses", {st}}}}}}}}}}};
    return j.dump();
  }

  IngestOutcome post(const std::string& b, const std::string& secret = kSecret) {
    return ingest_callback(*db_, secret, "sha256=" + channels::hmac_sha256_hex(kSecret, b), b, "receiver", "", kT0StatusEvent + 5'000, *log_);
  }

  struct Row {
    std::string state;
    std::optional<std::string> pmid;
    std::optional<Millis> accepted_at, delivered_at, read_at;
    std::optional<std::string> last_error;
    std::optional<std::string> claim_owner;
  };
  Row row(std::int64_t id) {
    SQLite::Statement q(db_->raw(),
                        "SELECT state, provider_message_id, accepted_at, delivered_at, read_at, last_error, claim_owner FROM deliveries WHERE delivery_id = ?");
    q.bind(1, id);
    EXPECT_TRUE(q.executeStep());
    return Row{q.getColumn(0).getString(), store::column_opt<std::string>(q.getColumn(1)), store::column_opt<Millis>(q.getColumn(2)),
               store::column_opt<Millis>(q.getColumn(3)), store::column_opt<Millis>(q.getColumn(4)),
               store::column_opt<std::string>(q.getColumn(5)), store::column_opt<std::string>(q.getColumn(6))};
  }

  std::shared_ptr<spdlog::logger> log_;
  std::int64_t run_id_ = 0;
};

TEST_F(StatusStoreTest, AcceptedRisesToDeliveredThenReadAndNeverFalls) {
  auto id = delivery("A1", DeliveryState::accepted, "wamid.1");
  EXPECT_EQ(post(body("wamid.1", "delivered", 1'764'300'010)).applied.moved, 1);
  EXPECT_EQ(row(id).state, "delivered");
  EXPECT_EQ(row(id).delivered_at, std::optional<Millis>(1'764'300'010'000));
  EXPECT_EQ(post(body("wamid.1", "read", 1'764'300'020)).applied.moved, 1);
  auto late = post(body("wamid.1", "sent", 1'764'300'005));  // a late lower status
  EXPECT_EQ(late.applied.unchanged, 1);
  auto r = row(id);
  EXPECT_EQ(r.state, "read");
  EXPECT_EQ(r.read_at, std::optional<Millis>(1'764'300'020'000));
  EXPECT_EQ(r.accepted_at, std::optional<Millis>(kT0StatusEvent + 1'000));  // dispatch's record is kept
}

TEST_F(StatusStoreTest, DuplicatesAreIdempotent) {
  auto id = delivery("A1", DeliveryState::accepted, "wamid.1");
  const std::string b = body("wamid.1", "delivered", 1'764'300'010);
  auto first = post(b);
  EXPECT_FALSE(first.duplicate);
  EXPECT_EQ(first.new_updates, 1);
  for (int i = 0; i < 3; ++i) {
    auto again = post(b);
    EXPECT_EQ(again.http_status, 200);
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.event_id, first.event_id);
    EXPECT_EQ(again.new_updates, 0);
  }
  // The same status in a different body (Meta re-batches) is a new event but not a new update.
  auto rebatched = post(body("wamid.1", "delivered", 1'764'300'010) + " ");
  EXPECT_FALSE(rebatched.duplicate);
  EXPECT_EQ(rebatched.new_updates, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates"), 1);
  EXPECT_EQ(row(id).state, "delivered");
}

TEST_F(StatusStoreTest, EveryOrderOfEveryStatusEndsTheSame) {
  // All 24 orders of sent/delivered/read/failed, each status posted twice: the end row is the
  // same every time: read, with the earliest times, no error.
  std::vector<std::string> order = {"delivered", "failed", "read", "sent"};
  const std::map<std::string, std::int64_t> secs = {{"sent", 100}, {"delivered", 110}, {"failed", 115}, {"read", 120}};
  int n = 0;
  do {
    const std::string pmid = "wamid.p" + std::to_string(n);
    auto id = delivery("P" + std::to_string(n), DeliveryState::accepted, pmid);
    for (const auto& s : order) {
      post(body(pmid, s, secs.at(s)));
      post(body(pmid, s, secs.at(s)));
    }
    auto r = row(id);
    EXPECT_EQ(r.state, "read") << n;
    EXPECT_EQ(r.delivered_at, std::optional<Millis>(110'000)) << n;
    EXPECT_EQ(r.read_at, std::optional<Millis>(120'000)) << n;
    EXPECT_FALSE(r.last_error) << n << ": " << *r.last_error;
    ++n;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(n, 24);
}

TEST_F(StatusStoreTest, ReadWithoutDeliveredImpliesDelivered) {
  auto id = delivery("A1", DeliveryState::accepted, "wamid.1");
  post(body("wamid.1", "read", 200));
  auto r = row(id);
  EXPECT_EQ(r.state, "read");
  EXPECT_EQ(r.delivered_at, std::optional<Millis>(200'000));
  post(body("wamid.1", "delivered", 190));  // arrives late, with the earlier time
  EXPECT_EQ(row(id).delivered_at, std::optional<Millis>(190'000));
  EXPECT_EQ(row(id).state, "read");
}

TEST_F(StatusStoreTest, UncertainSendIsReconciledByCallbackData) {
  auto id = delivery("A1", DeliveryState::uncertain);
  const auto seq_before = store::DeliveryChangeLastSeq(*db_);
  auto out = post(body("wamid.U", "sent", 1'764'300'002, id));
  EXPECT_EQ(out.applied.reconciled, 1);
  auto r = row(id);
  EXPECT_EQ(r.state, "accepted");
  EXPECT_EQ(r.pmid, std::optional<std::string>("wamid.U"));
  EXPECT_EQ(r.accepted_at, std::optional<Millis>(1'764'300'002'000));
  EXPECT_FALSE(r.claim_owner);
  // A running dispatch hears about it (sql/006), and its claim can no longer take the row.
  auto changes = store::DeliveryChangesSince(*db_, run_id_, seq_before);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].delivery_id, id);
  EXPECT_EQ(changes[0].kind, "status");
  EXPECT_FALSE(store::DeliveryClaim(*db_, id, "host:2:new", kT0StatusEvent + 60'000, kT0StatusEvent + 10'000));
  // The dispatcher's question: what does the provider say about this delivery?
  auto m = store::StatusFindForDelivery(*db_, id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->provider_message_id, "wamid.U");
  EXPECT_EQ(m->status, MessageStatus::sent);
  EXPECT_EQ(m->provider_at, 1'764'300'002'000);
}

TEST_F(StatusStoreTest, ReconciledAcceptanceTakesTheEarliestProviderTime) {
  auto id = delivery("A1", DeliveryState::uncertain);
  post(body("wamid.U", "read", 1'764'300'030, id));  // read first: reconciles straight to read
  EXPECT_EQ(row(id).state, "read");
  EXPECT_EQ(row(id).accepted_at, std::optional<Millis>(1'764'300'030'000));
  post(body("wamid.U", "sent", 1'764'300'001, id));  // the earlier sent arrives late
  EXPECT_EQ(row(id).accepted_at, std::optional<Millis>(1'764'300'001'000));
  EXPECT_EQ(row(id).state, "read");
}

TEST_F(StatusStoreTest, UnknownMessageStaysPendingUntilItsIdIsRecorded) {
  auto id = delivery("A1", DeliveryState::sending);
  auto out = post(body("wamid.L", "delivered", 300));  // no callback data, message id not yet recorded
  EXPECT_EQ(out.applied.pending, 1);
  EXPECT_EQ(row(id).state, "sending");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL"), 1);
  // dispatch records the acceptance …
  SQLite::Statement q(db_->raw(), "UPDATE deliveries SET state = 'accepted', provider_message_id = 'wamid.L', accepted_at = 250000 WHERE delivery_id = ?");
  q.bind(1, id);
  q.exec();
  store::StatusApplySummary s;
  db_->write_tx([&] { s = store::StatusApplyPending(*db_, kT0StatusEvent + 9'000); });
  EXPECT_EQ(s.moved, 1);
  EXPECT_EQ(s.pending, 0);
  EXPECT_EQ(row(id).state, "delivered");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL"), 0);
}

TEST_F(StatusStoreTest, SendingRowWaitsForDispatchsOwnRecord) {
  // The callback outran dispatch's write: the status names the delivery, but the row is still
  // `sending`. It waits; dispatch's guarded outcome write still succeeds; then it applies.
  auto id = delivery("A1", DeliveryState::sending);
  auto out = post(body("wamid.R", "delivered", 1'764'300'003, id));
  EXPECT_EQ(out.applied.pending, 1);
  EXPECT_EQ(row(id).state, "sending");
  store::DeliveryUpdateParams p;
  p.delivery_id = id;
  p.state = DeliveryState::accepted;
  p.channel = "whatsapp";
  p.sender = "wa-1";
  p.attempts = 1;
  p.sent_at = kT0StatusEvent + 100;
  p.provider_message_id = "wamid.R";
  p.accepted_at = kT0StatusEvent + 400;
  p.now = kT0StatusEvent + 400;
  EXPECT_TRUE(store::DeliveryUpdate(*db_, p, "host:1:dead"));
  store::StatusApplySummary s;
  db_->write_tx([&] { s = store::StatusApplyPending(*db_, kT0StatusEvent + 1'000); });
  EXPECT_EQ(s.moved, 1);
  auto r = row(id);
  EXPECT_EQ(r.state, "delivered");
  EXPECT_EQ(r.accepted_at, std::optional<Millis>(kT0StatusEvent + 400));  // dispatch's own time, untouched
}

TEST_F(StatusStoreTest, FailedRecordsTheErrorButDoesNotMoveOrResend) {
  auto id = delivery("A1", DeliveryState::accepted, "wamid.F");
  auto out = post(body("wamid.F", "failed", 400, id));
  EXPECT_EQ(out.applied.errors_recorded, 1);
  auto r = row(id);
  EXPECT_EQ(r.state, "accepted");
  EXPECT_EQ(r.last_error, std::optional<std::string>("status failed: 131026 Message undeliverable"));
  auto m = store::StatusFindForDelivery(*db_, id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, MessageStatus::failed);
  EXPECT_EQ(m->error_code, std::optional<long>(131026));
  // A delivered from another device later wins, and the status error is cleared.
  post(body("wamid.F", "delivered", 401, id));
  EXPECT_EQ(row(id).state, "delivered");
  EXPECT_FALSE(row(id).last_error);
  EXPECT_EQ(store::StatusFindForDelivery(*db_, id)->status, MessageStatus::delivered);
}

TEST_F(StatusStoreTest, DeadAndCancelledRowsAreNotMoved) {
  auto dead = delivery("A1", DeliveryState::dead, "wamid.D");
  auto cancelled = delivery("A2", DeliveryState::cancelled, "wamid.C");
  EXPECT_EQ(post(body("wamid.D", "read", 10)).applied.ignored, 1);
  EXPECT_EQ(post(body("wamid.C", "delivered", 10, cancelled)).applied.ignored, 1);
  EXPECT_EQ(row(dead).state, "dead");
  EXPECT_EQ(row(cancelled).state, "cancelled");
}

TEST_F(StatusStoreTest, NothingFoundForADeliveryWithoutStatuses) {
  auto id = delivery("A1", DeliveryState::uncertain);
  EXPECT_FALSE(store::StatusFindForDelivery(*db_, id));
}

TEST_F(StatusStoreTest, WrongOrMissingSignatureOrNoSecretChangesNothing) {
  auto id = delivery("A1", DeliveryState::accepted, "wamid.1");
  const std::string b = body("wamid.1", "read", 10);
  auto wrong = ingest_callback(*db_, kSecret, "sha256=" + channels::hmac_sha256_hex("other", b), b, "receiver", "", kT0StatusEvent, *log_);
  EXPECT_EQ(wrong.http_status, 401);
  auto missing = ingest_callback(*db_, kSecret, "", b, "receiver", "", kT0StatusEvent, *log_);
  EXPECT_EQ(missing.http_status, 401);
  auto no_secret = ingest_callback(*db_, "", "sha256=" + channels::hmac_sha256_hex("", b), b, "receiver", "", kT0StatusEvent, *log_);
  EXPECT_EQ(no_secret.http_status, 401);
  auto tampered = ingest_callback(*db_, kSecret, "sha256=" + channels::hmac_sha256_hex(kSecret, b), b + " ", "receiver", "", kT0StatusEvent, *log_);
  EXPECT_EQ(tampered.http_status, 401);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates"), 0);
  EXPECT_EQ(row(id).state, "accepted");
}

TEST_F(StatusStoreTest, VerifiedButMalformedBodyIsKeptNotApplied) {
  const std::string b = R"({"object":"whatsapp_business_account","entry":{"changes":[]}})";
  auto out = post(b);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_TRUE(out.malformed);
  EXPECT_NE(out.reason.find("entry: expected an array"), std::string::npos) << out.reason;
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'malformed'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates"), 0);
}

// Per-status apply/reject: a body with a good status, an unreadable one and another good one is
// answered 200; the good ones are stored and applied, the bad one is stored in status_rejects
// with its reason, the event is processed (not malformed) and counts one rejected element.
TEST_F(StatusStoreTest, EachStatusIsAppliedOrRejectedOnItsOwn) {
  auto a = delivery("R1", DeliveryState::accepted, "wamid.R1");
  auto b = delivery("R2", DeliveryState::accepted, "wamid.R2");
  nlohmann::json statuses = {{{"id", "wamid.R1"}, {"status", "delivered"}, {"timestamp", "1764300010"}},
                             {{"id", "wamid.BAD"}, {"status", "delivered"}, {"timestamp", 1.5e9}},
                             {{"id", "wamid.R2"}, {"status", "read"}, {"timestamp", "1764300020"}}};
  nlohmann::json j = {{"object", "whatsapp_business_account"},
                      {"entry", {{{"id", "1"}, {"changes", {{{"field", "messages"}, {"value", {{"statuses", statuses}}}}}}}}}};
  auto out = post(j.dump());
  EXPECT_EQ(out.http_status, 200);
  EXPECT_FALSE(out.malformed);
  EXPECT_EQ(out.rejected, 1);
  EXPECT_EQ(out.new_updates, 2);
  EXPECT_EQ(out.applied.applied, 2);
  EXPECT_EQ(row(a).state, "delivered");
  EXPECT_EQ(row(b).state, "read");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'processed' AND rejected = 1"), 1);
  auto rows = store::StatusRejectList(*db_, 0, 10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].event_id, out.event_id);
  EXPECT_EQ(rows[0].reject.provider_message_id, "wamid.BAD");
  EXPECT_EQ(rows[0].reject.path, "entry[0].changes[0].value.statuses[1]");
  EXPECT_EQ(rows[0].reject.reason.rfind("entry[0].changes[0].value.statuses[1].timestamp: expected unix seconds", 0), 0u)
      << rows[0].reject.reason;
  EXPECT_EQ(store::StatusRejectCountSince(*db_, 0), 1);
  // Meta retries the same bytes: one event, still one reject row.
  auto again = post(j.dump());
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_rejects"), 1);
  // Retention deletes the rejects with their event.
  auto purged = store::StatusPurgeBatch(*db_, kT0StatusEvent + 10'000'000, 10);
  EXPECT_EQ(purged.events, 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_rejects"), 0);
}

// value.errors raises a whatsapp_account_error alert (one per phone number and day) in the
// transaction that stores the webhook, its notification queued for the alert sender; a retried
// body (a duplicate) raises nothing more, and without a config nothing is raised.
TEST_F(StatusStoreTest, AccountErrorsRaiseACriticalAlertWithTheWebhook) {
  const std::string b = R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
    "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
    "errors":[{"code":131042,"title":"Business eligibility payment issue","error_data":{"details":"payment method"}}]},"field":"messages"}]}]})";
  Config cfg;
  cfg.default_timezone = "Asia/Kolkata";
  AlertLevel level;
  level.name = "primary";
  level.emails = {"oncall@example.org"};
  cfg.alerts.chain = {level};
  const std::string sig = "sha256=" + channels::hmac_sha256_hex(kSecret, b);
  auto out = ingest_callback(*db_, kSecret, sig, b, "receiver", "", kT0StatusEvent + 5'000, *log_, &cfg);
  EXPECT_EQ(out.http_status, 200);
  EXPECT_EQ(out.account_errors, 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM alerts WHERE rule = 'whatsapp_account_error' AND state = 'firing' "
                   "AND subject = 'date:2025-11-28@106540352242922' AND message LIKE 'CRITICAL:%131042 Business eligibility payment issue%'"),
            1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM alert_notifications n JOIN alerts a USING (alert_id) "
                   "WHERE a.rule = 'whatsapp_account_error' AND n.event = 'fired' AND n.sent_at IS NULL"),
            1);
  auto again = ingest_callback(*db_, kSecret, sig, b, "receiver", "", kT0StatusEvent + 6'000, *log_, &cfg);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM alert_notifications"), 1);
}

// The receiver's group commit: requests queued while the ledger's write lock is taken are not
// answered (their `done` is not called) until they are committed, and are then committed
// together, in one transaction, not one each; every one is in the ledger and applied.
TEST_F(StatusStoreTest, ReceiverAnswersOnlyAfterItsBatchCommitted) {
  Config cfg = parse_config(std::string("[database]\npath = \"") + db_path() + "\"\n[whatsapp]\napp_secret = \"" + kSecret + "\"\n", "t.toml");
  ManualClock clock(kT0StatusEvent + 5'000);
  constexpr int kN = 100;
  std::vector<std::int64_t> ids;
  for (int i = 0; i < kN; ++i) ids.push_back(delivery("G" + std::to_string(i), DeliveryState::accepted, "wamid.G" + std::to_string(i)));
  store::Db writer_db(db_path());
  CallbackReceiver receiver(&writer_db, cfg, clock, log_, "");
  receiver.start(std::chrono::milliseconds(60'000));

  // Another writer holds the ledger's write lock: nothing can commit.
  SQLite::Database blocker(db_path(), SQLite::OPEN_READWRITE);
  blocker.exec("BEGIN IMMEDIATE");
  std::mutex m;
  std::condition_variable cv;
  int answered = 0, committed_when_answered = 0;
  for (int i = 0; i < kN; ++i) {
    const std::string b = body("wamid.G" + std::to_string(i), "delivered", 1'764'300'010, ids[static_cast<std::size_t>(i)]);
    VerifiedCallback item;
    ASSERT_FALSE(receiver.begin("sha256=" + channels::hmac_sha256_hex(kSecret, b), b, item));
    receiver.submit(std::move(item), [&, i](const IngestOutcome& out) {
      // Answered: the event must be visible to another connection, i.e. committed.
      SQLite::Database reader(db_path(), SQLite::OPEN_READONLY);
      SQLite::Statement q(reader, "SELECT COUNT(*) FROM status_events WHERE event_id = ?");
      q.bind(1, out.event_id);
      q.executeStep();
      std::lock_guard lock(m);
      EXPECT_EQ(out.http_status, 200) << i;
      committed_when_answered += q.getColumn(0).getInt();
      ++answered;
      cv.notify_all();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::lock_guard lock(m);
    EXPECT_EQ(answered, 0) << "a callback was answered before it could be committed";
  }
  blocker.exec("COMMIT");
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered == kN; })) << answered;
    EXPECT_EQ(committed_when_answered, kN);
  }
  receiver.stop();
  // The first request took the lock wait alone; the other 99 queued behind it, one batch.
  EXPECT_LE(receiver.stats()["batches"].get<int>(), 3);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NOT NULL"), kN);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'"), kN);

  // Stopped: a request now is answered 503 at once (its sender retries), never left waiting.
  const std::string b = body("wamid.G0", "read", 1'764'300'020);
  VerifiedCallback item;
  ASSERT_FALSE(receiver.begin("sha256=" + channels::hmac_sha256_hex(kSecret, b), b, item));
  int status = 0;
  receiver.submit(std::move(item), [&](const IngestOutcome& out) { status = out.http_status; });
  EXPECT_EQ(status, 503);
}

// Several requests in one batch, among them the same bytes twice and a malformed body: each
// gets its own outcome, the duplicate names the first one's event.
TEST_F(StatusStoreTest, OneBatchKeepsEachRequestsOutcome) {
  auto id = delivery("B1", DeliveryState::accepted, "wamid.B1");
  const std::string d = body("wamid.B1", "delivered", 1'764'300'010, id);
  const std::string r = body("wamid.B1", "read", 1'764'300'020, id);
  const std::string bad = R"({"object":"whatsapp_business_account","entry":"none"})";
  std::vector<VerifiedCallback> items(4);
  const std::string bodies[] = {d, r, d, bad};
  for (int i = 0; i < 4; ++i) {
    auto out = verify_callback(kSecret, "sha256=" + channels::hmac_sha256_hex(kSecret, bodies[i]), bodies[i], items[static_cast<std::size_t>(i)]);
    ASSERT_EQ(out.http_status, 200);
  }
  auto outs = store_callbacks(*db_, {&items[0], &items[1], &items[2], &items[3]}, "receiver", "", kT0StatusEvent + 5'000, *log_);
  ASSERT_EQ(outs.size(), 4u);
  EXPECT_FALSE(outs[0].duplicate);
  EXPECT_EQ(outs[0].applied.moved, 1);
  EXPECT_EQ(outs[1].applied.moved, 1);
  EXPECT_TRUE(outs[2].duplicate);
  EXPECT_EQ(outs[2].event_id, outs[0].event_id);
  EXPECT_TRUE(outs[3].malformed);
  EXPECT_EQ(row(id).state, "read");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events"), 3);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates"), 2);
}

// The receiver stores and applies each status in one pass (StatusUpdatesInsertApplied). The
// same callbacks through the two-step form (store every event, then StatusApplyEvents) must
// leave the same deliveries, status rows, change notes and outcomes, for every starting state
// and with duplicates, re-batched statuses and unknown messages in the batches.
TEST_F(StatusStoreTest, StoringAndApplyingTogetherEndsAsStoringThenApplying) {
  const std::vector<DeliveryState> states = {DeliveryState::accepted, DeliveryState::uncertain, DeliveryState::retry_wait,
                                             DeliveryState::sending,  DeliveryState::planned,   DeliveryState::dead,
                                             DeliveryState::delivered, DeliveryState::read};
  std::map<std::string, std::vector<std::int64_t>> ids;  // "X": stored and applied together; "Y": two steps
  for (const char* name : {"X", "Y"}) {
    const std::string set = name;
    for (std::size_t i = 0; i < states.size(); ++i) {
      const std::string n = std::to_string(i);
      // Half of them named by callback data only (no message id recorded yet).
      ids[set].push_back(delivery(set + n, states[i], i % 2 == 0 ? std::optional<std::string>("wamid." + set + n) : std::nullopt));
    }
  }
  // Batches of bodies for one set: every status of every delivery, some twice in one batch,
  // some re-batched (other bytes, same status), one message nobody sent, one malformed body.
  auto batches_for = [&](const std::string& set) {
    std::vector<std::vector<std::string>> out;
    const std::vector<std::string> order = {"sent", "failed", "read", "delivered"};
    for (std::size_t k = 0; k < order.size(); ++k) {
      std::vector<std::string> batch;
      for (std::size_t i = 0; i < states.size(); ++i) {
        const std::string pmid = "wamid." + set + std::to_string(i);
        const std::optional<std::int64_t> cb = i % 2 == 0 ? std::nullopt : std::optional<std::int64_t>(ids[set][i]);
        const std::string b = body(pmid, order[k], 1'764'300'100 + static_cast<std::int64_t>(10 * k + i), cb);
        batch.push_back(b);
        if (i % 3 == 0) batch.push_back(b);          // the same bytes twice in one batch
        if (i % 4 == 1) batch.push_back(b + "  ");  // the same status in other bytes
      }
      batch.push_back(body("wamid." + set + "-nobody", order[k], 1'764'300'200));
      if (k == 1) batch.push_back(R"({"object":"whatsapp_business_account","entry":")" + set + R"("})");
      out.push_back(batch);
    }
    out.push_back(out.front());  // a whole batch again, later (Meta's retries)
    return out;
  };
  const Millis now = kT0StatusEvent + 5'000;
  auto verified = [&](const std::vector<std::string>& batch) {
    std::vector<VerifiedCallback> items(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      EXPECT_EQ(verify_callback(kSecret, "sha256=" + channels::hmac_sha256_hex(kSecret, batch[i]), batch[i], items[i]).http_status, 200);
    }
    return items;
  };
  std::vector<std::vector<IngestOutcome>> together, apart;
  for (const auto& batch : batches_for("X")) {
    auto items = verified(batch);
    std::vector<const VerifiedCallback*> ptrs;
    for (const auto& it : items) ptrs.push_back(&it);
    together.push_back(store_callbacks(*db_, ptrs, "receiver", "", now, *log_));
  }
  for (const auto& batch : batches_for("Y")) {
    auto items = verified(batch);
    std::vector<IngestOutcome> outs(items.size());
    db_->write_tx([&] {
      std::vector<std::int64_t> applied_ids;
      std::vector<std::size_t> at;
      for (std::size_t i = 0; i < items.size(); ++i) {
        store::StatusEventStoreParams p;
        p.signature = items[i].signature;
        p.body = items[i].body;
        p.malformed_error = items[i].malformed_error;
        p.now = now;
        auto stored = store::StatusEventStore(*db_, p);
        outs[i].event_id = stored.event_id;
        outs[i].duplicate = stored.duplicate;
        outs[i].malformed = items[i].malformed_error.has_value();
        if (!stored.duplicate && !outs[i].malformed) outs[i].new_updates = store::StatusUpdatesInsert(*db_, stored.event_id, items[i].updates, now);
        if (!outs[i].malformed) {
          applied_ids.push_back(stored.event_id);
          at.push_back(i);
        }
      }
      auto applied = store::StatusApplyEvents(*db_, applied_ids, now);
      for (std::size_t k = 0; k < at.size(); ++k) outs[at[k]].applied = applied[k];
    });
    apart.push_back(outs);
  }
  ASSERT_EQ(together.size(), apart.size());
  for (std::size_t b = 0; b < together.size(); ++b) {
    ASSERT_EQ(together[b].size(), apart[b].size()) << b;
    for (std::size_t i = 0; i < together[b].size(); ++i) {
      const auto &x = together[b][i], &y = apart[b][i];
      EXPECT_EQ(x.http_status, 200);
      EXPECT_EQ(x.duplicate, y.duplicate) << b << "/" << i;
      EXPECT_EQ(x.malformed, y.malformed) << b << "/" << i;
      EXPECT_EQ(x.new_updates, y.new_updates) << b << "/" << i;
      EXPECT_FALSE(x.apply_failed);
      EXPECT_EQ(std::tie(x.applied.applied, x.applied.reconciled, x.applied.moved, x.applied.unchanged, x.applied.errors_recorded,
                         x.applied.ignored, x.applied.pending),
                std::tie(y.applied.applied, y.applied.reconciled, y.applied.moved, y.applied.unchanged, y.applied.errors_recorded,
                         y.applied.ignored, y.applied.pending))
          << b << "/" << i;
    }
  }
  // The ledger: each X delivery as its Y twin, each X status row as its Y twin.
  auto text = [&](const std::string& sql, const std::string& arg) {
    SQLite::Statement q(db_->raw(), sql);
    q.bind(1, arg);
    std::string out;
    while (q.executeStep()) {
      for (int c = 0; c < q.getColumnCount(); ++c) out += (q.getColumn(c).isNull() ? std::string("NULL") : q.getColumn(c).getString()) + "|";
      out += "\n";
    }
    return out;
  };
  for (std::size_t i = 0; i < states.size(); ++i) {
    const auto x = row(ids["X"][i]), y = row(ids["Y"][i]);
    EXPECT_EQ(x.state, y.state) << i;
    EXPECT_EQ(x.accepted_at, y.accepted_at) << i;
    EXPECT_EQ(x.delivered_at, y.delivered_at) << i;
    EXPECT_EQ(x.read_at, y.read_at) << i;
    EXPECT_EQ(x.last_error, y.last_error) << i;
    EXPECT_EQ(x.claim_owner, y.claim_owner) << i;
    EXPECT_EQ(x.pmid.has_value(), y.pmid.has_value()) << i;
    EXPECT_EQ(text("SELECT kind FROM delivery_changes WHERE delivery_id = ? ORDER BY seq", std::to_string(ids["X"][i])),
              text("SELECT kind FROM delivery_changes WHERE delivery_id = ? ORDER BY seq", std::to_string(ids["Y"][i])))
        << i;
  }
  const std::string rows_sql =
      "SELECT substr(provider_message_id, 8), status, provider_at, applied_at, outcome, checked_at, "
      "matched_delivery_id IS NULL, error_code, error_title FROM status_updates WHERE substr(provider_message_id, 7, 1) = ? "
      "ORDER BY update_id";
  const std::string xs = text(rows_sql, "X"), ys = text(rows_sql, "Y");
  EXPECT_FALSE(xs.empty());
  EXPECT_EQ(xs, ys);
  // Every readable event is processed, in both forms; the malformed ones are kept as such.
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'received'"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'malformed'"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'processed' AND processed_at IS NULL"), 0);
}

// When applying fails, the batch is still stored: its events and statuses are committed, the
// statuses pending, and StatusApplyPending applies them later.
TEST_F(StatusStoreTest, ApplyingThatFailsStoresTheStatusesPendingAndAnswers200) {
  auto id = delivery("F1", DeliveryState::accepted, "wamid.F1");
  db_->exec("CREATE TEMP TRIGGER no_updates BEFORE UPDATE ON deliveries BEGIN SELECT RAISE(ABORT, 'deliveries are locked'); END");
  auto out = post(body("wamid.F1", "delivered", 1'764'300'010, id));
  EXPECT_EQ(out.http_status, 200);
  EXPECT_TRUE(out.apply_failed);
  EXPECT_FALSE(out.duplicate);
  EXPECT_EQ(out.new_updates, 1);
  EXPECT_EQ(row(id).state, "accepted");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'received'"), 1);
  db_->exec("DROP TRIGGER no_updates");
  store::StatusApplySummary s;
  db_->write_tx([&] { s = store::StatusApplyPending(*db_, kT0StatusEvent + 9'000); });
  EXPECT_EQ(s.moved, 1);
  EXPECT_EQ(row(id).state, "delivered");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events WHERE state = 'received'"), 0);
}

TEST_F(StatusStoreTest, HandshakeEchoesTheChallengeOnlyForOurToken) {
  auto ok = verify_handshake("tok-1", "subscribe", "tok-1", "1158201444");
  EXPECT_EQ(ok.http_status, 200);
  EXPECT_EQ(ok.body, "1158201444");
  EXPECT_EQ(verify_handshake("tok-1", "subscribe", "tok-2", "1").http_status, 403);
  EXPECT_EQ(verify_handshake("tok-1", "unsubscribe", "tok-1", "1").http_status, 403);
  EXPECT_EQ(verify_handshake("", "subscribe", "", "1").http_status, 403);  // no token configured
}

TEST_F(StatusStoreTest, SpoolIngestStoresVerifiedFilesAndRejectsTheRest) {
  auto id = delivery("A1", DeliveryState::accepted, "wamid.S");
  const fs::path spool = dir_ / "spool";
  fs::create_directories(spool);
  const std::string good = body("wamid.S", "delivered", 50, id);
  spool_write(spool.string(), "sha256=" + channels::hmac_sha256_hex(kSecret, good), good, kT0StatusEvent, 1);
  spool_write(spool.string(), "sha256=" + channels::hmac_sha256_hex(kSecret, good), good, kT0StatusEvent, 2);  // a duplicate
  spool_write(spool.string(), "sha256=" + channels::hmac_sha256_hex("wrong", good), body("wamid.S", "read", 60, id), kT0StatusEvent, 3);
  { std::ofstream(spool / "garbage.req") << "no headers here"; }
  Config cfg;
  cfg.whatsapp.app_secret = kSecret;
  auto rep = ingest_spool(*db_, cfg, spool.string(), kT0StatusEvent + 1, *log_);
  EXPECT_EQ(rep["files"], 4);
  EXPECT_EQ(rep["stored"], 2);
  EXPECT_EQ(rep["duplicates"], 1);
  EXPECT_EQ(rep["rejected"].size(), 2u);
  EXPECT_EQ(row(id).state, "delivered");  // the forged read changed nothing
  EXPECT_EQ(std::distance(fs::directory_iterator(spool / "done"), fs::directory_iterator{}), 2);
  EXPECT_EQ(std::distance(fs::directory_iterator(spool / "rejected"), fs::directory_iterator{}), 2);
  auto again = ingest_spool(*db_, cfg, spool.string(), kT0StatusEvent + 2, *log_);  // nothing left to do
  EXPECT_EQ(again["files"], 0);
}

}  // namespace
}  // namespace daybreak
