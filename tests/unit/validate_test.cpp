// Tests for core/domain/validate.cpp: every import rule, with the exact message an operator sees.
#include "domain/validate.hpp"

#include "domain/content_check.hpp"

#include <gtest/gtest.h>
#include <phonenumbers/phonenumberutil.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace daybreak {
namespace {

const std::string kAdvisorHeader = "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics";
const std::string kContentHeader =
    "content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency";
const std::string kAssignmentHeader = "advisor_id,date,content_id";

// A good advisor row to vary one field at a time.
const std::string kGoodAdvisor = "A1,Asha Rao,gold,+919810000001,asha@example.com,Asia/Kolkata,06:30,whatsapp|email,true,en,tax;equity";

std::vector<CsvRecord> records(const std::string& text) {
  std::vector<CsvRecord> out;
  parse_csv(text, [&](const CsvRecord& r) { out.push_back(r); });
  return out;
}

ColumnMap header_of(ImportKind kind, const std::string& header) {
  auto recs = records(header + "\n");
  auto hc = check_header(kind, recs.at(0), "f.csv");
  EXPECT_TRUE(hc.problems.empty()) << (hc.problems.empty() ? "" : hc.problems[0].text());
  return hc.columns;
}

// Validates the data rows of an advisors file (header on line 1); problems as text lines.
struct AdvisorRun {
  std::vector<std::optional<Advisor>> advisors;
  std::vector<std::string> problems;
};
AdvisorRun advisors(const std::vector<std::string>& rows, ImportRules rules = {}) {
  std::string text = kAdvisorHeader + "\n";
  for (const auto& r : rows) text += r + "\n";
  auto recs = records(text);
  auto hc = check_header(ImportKind::advisors, recs.at(0), "advisors.csv");
  EXPECT_TRUE(hc.problems.empty());
  AdvisorValidator v(std::move(rules), "advisors.csv", hc.columns);
  AdvisorRun run;
  std::vector<Problem> problems;
  for (std::size_t i = 1; i < recs.size(); ++i) run.advisors.push_back(v.validate(recs[i], problems));
  for (const auto& p : problems) run.problems.push_back(p.text());
  return run;
}

// The problems of one advisor row (line 2).
std::vector<std::string> advisor_problems(const std::string& row) { return advisors({row}).problems; }

// kGoodAdvisor with field `i` replaced by `value` (quoted when it needs to be).
std::string advisor_with(std::size_t i, const std::string& value) {
  auto recs = records(kGoodAdvisor + "\n");
  auto fields = recs.at(0).fields;
  fields.at(i) = value;
  std::string out;
  for (std::size_t k = 0; k < fields.size(); ++k) {
    if (k) out += ',';
    const auto& f = fields[k];
    if (f.find_first_of(",\"\n\r") != std::string::npos) {
      out += '"';
      for (char c : f) {
        if (c == '"') out += '"';
        out += c;
      }
      out += '"';
    } else {
      out += f;
    }
  }
  return out;
}

enum : std::size_t { kId, kName, kTier, kPhone, kEmail, kTz, kSlot, kChannels, kOptedIn, kLanguage, kTopics };

using Lines = std::vector<std::string>;

// ---------------------------------------------------------------------------------------------

TEST(ProblemText, NamesFileLineFieldAndValue) {
  EXPECT_EQ((Problem{"advisors.csv", 17, "phone", "\"+9198\" is not a valid phone number"}.text()),
            "advisors.csv:17: field \"phone\": \"+9198\" is not a valid phone number");
  EXPECT_EQ((Problem{"a.csv", 3, "", "expected 11 fields, found 2"}.text()), "a.csv:3: expected 11 fields, found 2");
  EXPECT_EQ((Problem{"a.csv", 0, "", "the file is empty"}.text()), "a.csv: the file is empty");
}

TEST(Header, ExactHeaderIsAccepted) {
  auto cols = header_of(ImportKind::advisors, kAdvisorHeader);
  EXPECT_EQ(cols.width, 11U);
  EXPECT_EQ(cols.pos[0], 0U);
}

TEST(Header, ColumnsMayComeInAnyOrder) {
  auto cols = header_of(ImportKind::assignments, "date,content_id,advisor_id");
  EXPECT_EQ(cols.pos, (std::vector<std::size_t>{2, 0, 1}));
}

TEST(Header, NamesMissingUnknownAndRepeatedColumns) {
  auto recs = records("advisor_id,name,tier,mobile,email,timezone,slot,channels,opted_in,language,topics,name\n");
  auto hc = check_header(ImportKind::advisors, recs.at(0), "advisors.csv");
  Lines got;
  for (const auto& p : hc.problems) got.push_back(p.text());
  EXPECT_EQ(got, (Lines{
                     "advisors.csv:1: header: unknown column \"mobile\" (expected "
                     "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics)",
                     "advisors.csv:1: header: column \"name\" appears twice",
                     "advisors.csv:1: header: missing column \"phone\"",
                 }));
}

TEST(Header, ToleratesBlanksAroundNames) {
  auto recs = records("advisor_id , date,content_id\n");
  EXPECT_TRUE(check_header(ImportKind::assignments, recs.at(0), "a.csv").problems.empty());
}

// ---------------------------------------------------------------------------------------------
// advisors

TEST(Advisors, GoodRowBecomesAnAdvisor) {
  auto run = advisors({kGoodAdvisor});
  ASSERT_TRUE(run.problems.empty()) << run.problems[0];
  const Advisor& a = *run.advisors.at(0);
  EXPECT_EQ(a.advisor_id, "A1");
  EXPECT_EQ(a.name, "Asha Rao");
  EXPECT_EQ(a.tier, "gold");
  EXPECT_EQ(a.phone, "+919810000001");
  EXPECT_EQ(a.email, "asha@example.com");
  EXPECT_EQ(a.timezone, "Asia/Kolkata");
  EXPECT_EQ(a.slot, "06:30");
  EXPECT_EQ(a.channels, (std::vector<Channel>{Channel::whatsapp, Channel::email}));
  EXPECT_TRUE(a.opted_in);
  EXPECT_EQ(a.language, "en");
  EXPECT_EQ(a.topics, (std::vector<std::string>{"tax", "equity"}));
}

TEST(Advisors, EmptyTimezoneAndSlotTakeTheConfiguredDefaults) {
  ImportRules rules;
  rules.default_timezone = "Asia/Dubai";
  rules.default_slot = "07:15";
  auto run = advisors({advisor_with(kTz, "")}, rules);
  ASSERT_TRUE(run.problems.empty());
  EXPECT_EQ(run.advisors[0]->timezone, "Asia/Dubai");
  run = advisors({advisor_with(kSlot, "")}, rules);
  ASSERT_TRUE(run.problems.empty());
  EXPECT_EQ(run.advisors[0]->slot, "07:15");
}

TEST(Advisors, PhoneIsNormalisedToE164) {
  auto run = advisors({advisor_with(kPhone, " +91 98100-00001 ")});
  ASSERT_TRUE(run.problems.empty()) << run.problems[0];
  EXPECT_EQ(run.advisors[0]->phone, "+919810000001");
}

TEST(Advisors, InvalidPhones) {
  EXPECT_EQ(advisor_problems(advisor_with(kPhone, "+9198")),
            Lines{"advisors.csv:2: field \"phone\": \"+9198\" is not a valid phone number"});
  EXPECT_EQ(advisor_problems(advisor_with(kPhone, "9810000001")),
            Lines{"advisors.csv:2: field \"phone\": \"9810000001\" is not a valid phone number (E.164 needs + and "
                  "the country code, e.g. +919810000000)"});
  EXPECT_EQ(advisor_problems(advisor_with(kPhone, "+1 800 FLOWERS")),
            Lines{"advisors.csv:2: field \"phone\": \"+1 800 FLOWERS\" is not a valid phone number"});
  EXPECT_EQ(advisor_problems(advisor_with(kPhone, "+999123456789")),
            Lines{"advisors.csv:2: field \"phone\": \"+999123456789\" is not a valid phone number"});
}

TEST(Advisors, WhatsappNeedsAPhoneAndEmailNeedsAnAddress) {
  EXPECT_EQ(advisor_problems(advisor_with(kPhone, "")),
            Lines{"advisors.csv:2: field \"phone\": must not be empty: channels include whatsapp"});
  EXPECT_EQ(advisor_problems(advisor_with(kEmail, "")),
            Lines{"advisors.csv:2: field \"email\": must not be empty: channels include email"});
  // Webhook needs no address of its own: it identifies the advisor by id.
  EXPECT_TRUE(advisor_problems("A1,Asha Rao,gold,,,,,webhook,yes,en,").empty());
}

TEST(Advisors, InvalidEmails) {
  for (const char* bad : {"asha", "asha@", "@example.com", "asha@example", "a b@example.com", "a@@example.com",
                          "asha@example..com", "asha@.example.com", "<asha@example.com>"}) {
    EXPECT_EQ(advisor_problems(advisor_with(kEmail, bad)),
              Lines{"advisors.csv:2: field \"email\": \"" + std::string(bad) + "\" is not a valid email address"})
        << bad;
  }
  EXPECT_TRUE(is_valid_email("first.last+tag@mail.example.co.in"));
}

TEST(Advisors, UnknownTierNamesTheKnownOnes) {
  EXPECT_EQ(advisor_problems(advisor_with(kTier, "diamond")),
            Lines{"advisors.csv:2: field \"tier\": \"diamond\" is not a known tier (platinum, gold, silver, standard)"});
  EXPECT_EQ(advisor_problems(advisor_with(kTier, "")),
            Lines{"advisors.csv:2: field \"tier\": must not be empty; expected one of platinum, gold, silver, standard"});
  ImportRules rules;
  rules.tiers = {"vip", "rest"};
  EXPECT_TRUE(advisors({advisor_with(kTier, "vip")}, rules).problems.empty());
}

TEST(Advisors, UnknownTimezone) {
  EXPECT_EQ(advisor_problems(advisor_with(kTz, "Asia/Kolkatta")),
            Lines{"advisors.csv:2: field \"timezone\": \"Asia/Kolkatta\" is not a known IANA time zone (e.g. "
                  "\"Asia/Kolkata\")"});
  EXPECT_TRUE(advisor_problems(advisor_with(kTz, "America/New_York")).empty());
}

TEST(Advisors, BadSlots) {
  for (const char* bad : {"6:00", "24:00", "06:60", "0600", "06:00:00", "ab:cd"}) {
    EXPECT_EQ(advisor_problems(advisor_with(kSlot, bad)),
              Lines{"advisors.csv:2: field \"slot\": \"" + std::string(bad) + "\" is not a time HH:MM between 00:00 and 23:59"})
        << bad;
  }
  EXPECT_TRUE(advisor_problems(advisor_with(kSlot, "23:59")).empty());
}

TEST(Advisors, ChannelRules) {
  EXPECT_EQ(advisor_problems(advisor_with(kChannels, "whatsapp|sms")),
            Lines{"advisors.csv:2: field \"channels\": \"sms\" is not a known channel (whatsapp, email, webhook)"});
  EXPECT_EQ(advisor_problems(advisor_with(kChannels, "email|whatsapp|email")),
            Lines{"advisors.csv:2: field \"channels\": \"email\" is listed twice"});
  EXPECT_EQ(advisor_problems(advisor_with(kChannels, "")),
            Lines{"advisors.csv:2: field \"channels\": must not be empty; expected channels like \"whatsapp|email\" "
                  "(whatsapp, email, webhook)"});
  auto run = advisors({advisor_with(kChannels, "email | whatsapp|webhook")});
  ASSERT_TRUE(run.problems.empty());
  EXPECT_EQ(run.advisors[0]->channels, (std::vector<Channel>{Channel::email, Channel::whatsapp, Channel::webhook}));
}

TEST(Advisors, OptedInBooleans) {
  for (const char* yes : {"true", "TRUE", "yes", "Yes", "1"}) {
    auto run = advisors({advisor_with(kOptedIn, yes)});
    ASSERT_TRUE(run.problems.empty()) << yes;
    EXPECT_TRUE(run.advisors[0]->opted_in);
  }
  for (const char* no : {"false", "No", "0"}) {
    auto run = advisors({advisor_with(kOptedIn, no)});
    ASSERT_TRUE(run.problems.empty()) << no;
    EXPECT_FALSE(run.advisors[0]->opted_in);
  }
  EXPECT_EQ(advisor_problems(advisor_with(kOptedIn, "maybe")),
            Lines{"advisors.csv:2: field \"opted_in\": \"maybe\" is not a boolean (true/false, yes/no, 1/0)"});
  EXPECT_EQ(advisor_problems(advisor_with(kOptedIn, "")),
            Lines{"advisors.csv:2: field \"opted_in\": must not be empty; expected true/false, yes/no or 1/0"});
}

TEST(Advisors, LanguageTag) {
  for (const char* ok : {"en", "hi", "en-IN", "pt_BR", "zh-Hant-TW"}) EXPECT_TRUE(advisor_problems(advisor_with(kLanguage, ok)).empty()) << ok;
  EXPECT_EQ(advisor_problems(advisor_with(kLanguage, "english")),
            Lines{"advisors.csv:2: field \"language\": \"english\" is not a language code such as \"en\", \"hi\" or \"en-IN\""});
  EXPECT_EQ(advisor_problems(advisor_with(kLanguage, "")), Lines{"advisors.csv:2: field \"language\": must not be empty"});
}

TEST(Advisors, IdAndNameRules) {
  EXPECT_EQ(advisor_problems(advisor_with(kId, "")), Lines{"advisors.csv:2: field \"advisor_id\": must not be empty"});
  EXPECT_EQ(advisor_problems(advisor_with(kId, "A 1")),
            Lines{"advisors.csv:2: field \"advisor_id\": \"A 1\" must not contain spaces"});
  EXPECT_EQ(advisor_problems(advisor_with(kId, std::string(129, 'x'))).size(), 1U);
  EXPECT_EQ(advisor_problems(advisor_with(kName, "  ")), Lines{"advisors.csv:2: field \"name\": must not be empty"});
  EXPECT_EQ(advisor_problems(advisor_with(kName, "Asha\nRao")),
            Lines{"advisors.csv:2: field \"name\": \"Asha\\nRao\" contains a control character"});
  EXPECT_EQ(advisor_problems(advisor_with(kName, "Asha \xFF")), Lines{"advisors.csv:2: field \"name\": is not valid UTF-8"});
  EXPECT_TRUE(advisor_problems(advisor_with(kName, "आशा राव")).empty());
}

TEST(Advisors, DuplicateIdNamesTheFirstLine) {
  auto run = advisors({kGoodAdvisor, advisor_with(kName, "Other"), kGoodAdvisor});
  EXPECT_EQ(run.problems, (Lines{"advisors.csv:3: field \"advisor_id\": \"A1\" already appears on line 2",
                                 "advisors.csv:4: field \"advisor_id\": \"A1\" already appears on line 2"}));
  EXPECT_TRUE(run.advisors[0].has_value());
  EXPECT_FALSE(run.advisors[1].has_value());
}

TEST(Advisors, EveryProblemOfARowIsReported) {
  auto run = advisors({"A1,,diamond,+9198,nope,Mars/Base,25:00,sms,maybe,english,"});
  EXPECT_EQ(run.problems, (Lines{
                              "advisors.csv:2: field \"name\": must not be empty",
                              "advisors.csv:2: field \"tier\": \"diamond\" is not a known tier (platinum, gold, silver, standard)",
                              "advisors.csv:2: field \"phone\": \"+9198\" is not a valid phone number",
                              "advisors.csv:2: field \"email\": \"nope\" is not a valid email address",
                              "advisors.csv:2: field \"timezone\": \"Mars/Base\" is not a known IANA time zone (e.g. \"Asia/Kolkata\")",
                              "advisors.csv:2: field \"slot\": \"25:00\" is not a time HH:MM between 00:00 and 23:59",
                              "advisors.csv:2: field \"channels\": \"sms\" is not a known channel (whatsapp, email, webhook)",
                              "advisors.csv:2: field \"opted_in\": \"maybe\" is not a boolean (true/false, yes/no, 1/0)",
                              "advisors.csv:2: field \"language\": \"english\" is not a language code such as \"en\", \"hi\" or \"en-IN\"",
                          }));
}

TEST(Advisors, WrongFieldCountAndMalformedRecords) {
  EXPECT_EQ(advisor_problems("A1,Asha"), Lines{"advisors.csv:2: expected 11 fields, found 2"});
  EXPECT_EQ(advisor_problems("A1,Asha \"R\",gold,,,,,webhook,yes,en,"),
            Lines{"advisors.csv:2: field 2: stray quote in an unquoted field (quote the whole field and double the quote)"});
}

TEST(Advisors, LongValuesAreCutInMessages) {
  auto p = advisor_problems(advisor_with(kTier, std::string(200, 't')));
  ASSERT_EQ(p.size(), 1U);
  EXPECT_LT(p[0].size(), 200U);
  EXPECT_NE(p[0].find("…\""), std::string::npos);
}

// Messages end up in JSON, which must be valid UTF-8: a cut never splits a character, and bytes
// that are not UTF-8 are shown escaped.
TEST(Advisors, MessagesAreValidUtf8) {
  std::string long_hindi;
  for (int i = 0; i < 100; ++i) long_hindi += "स्व";
  auto p = advisor_problems(advisor_with(kTier, long_hindi));
  ASSERT_EQ(p.size(), 1U);
  EXPECT_TRUE(is_valid_utf8(p[0])) << p[0];
  auto c = records(kContentHeader + "\nC1,T,B,en,,,\xFF\xFE-01-01,,,\n");
  ContentValidator v(ImportRules{}, "content.csv", header_of(ImportKind::content, kContentHeader));
  std::vector<Problem> problems;
  EXPECT_FALSE(v.validate(c.at(1), problems).has_value());
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0].text(), "content.csv:2: field \"valid_from\": \"\\xff\\xfe-01-01\" is not a valid date YYYY-MM-DD");
}

// The fast path for canonical E.164 input must agree with libphonenumber's full Parse on every
// number: same verdict, same normalised output.
TEST(Phone, FastPathAgreesWithFullParse) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const auto* util = PhoneNumberUtil::GetInstance();
  std::mt19937_64 rng(20261128);
  const std::vector<std::string> prefixes = {"1",  "7",   "20",  "27",  "33",  "39",  "44",  "49",  "55", "61",
                                             "65", "81",  "86",  "91",  "92",  "234", "380", "971", "972", "880",
                                             "3906", "4407", "9198", "1800", "4420", "9100"};
  int valid = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = "+" + prefixes[rng() % prefixes.size()];
    std::size_t extra = 4 + rng() % 9;
    for (std::size_t k = 0; k < extra; ++k) s.push_back(static_cast<char>('0' + rng() % 10));
    PhoneNumber n;
    std::string expected;
    if (util->Parse(s, "ZZ", &n) == PhoneNumberUtil::NO_PARSING_ERROR && util->IsValidNumber(n)) {
      util->Format(n, PhoneNumberUtil::E164, &expected);
    }
    auto got = normalize_phone(s);
    ASSERT_EQ(got.ok(), !expected.empty()) << s;
    if (got.ok()) {
      ++valid;
      ASSERT_EQ(*got, expected) << s;
    }
  }
  EXPECT_GT(valid, 1000);  // the sample must exercise the accepting path too
}

// ---------------------------------------------------------------------------------------------
// content

struct ContentRun {
  std::vector<std::optional<Content>> items;
  std::vector<std::string> problems;
};
ContentRun contents(const std::vector<std::string>& rows) {
  std::string text = kContentHeader + "\n";
  for (const auto& r : rows) text += r + "\n";
  auto recs = records(text);
  ContentValidator v(ImportRules{}, "content.csv", header_of(ImportKind::content, kContentHeader));
  ContentRun run;
  std::vector<Problem> problems;
  for (std::size_t i = 1; i < recs.size(); ++i) run.items.push_back(v.validate(recs[i], problems));
  for (const auto& p : problems) run.problems.push_back(p.text());
  return run;
}

TEST(Content, GoodRow) {
  auto run = contents({"C1,Market note,\"Rates held; \"\"stay the course\"\", one idea\",en,tax;equity,https://cdn.example.com/a.png,2026-11-01,2026-11-30,yes,no"});
  ASSERT_TRUE(run.problems.empty()) << run.problems[0];
  const Content& c = *run.items[0];
  EXPECT_EQ(c.content_id, "C1");
  EXPECT_EQ(c.body, "Rates held; \"stay the course\", one idea");
  EXPECT_EQ(c.media_url, "https://cdn.example.com/a.png");
  EXPECT_EQ(c.valid_from, "2026-11-01");
  EXPECT_EQ(c.valid_until, "2026-11-30");
  EXPECT_TRUE(c.fallback_eligible);
  EXPECT_FALSE(c.emergency);
}

TEST(Content, EmptyOptionalFieldsAndFlags) {
  auto run = contents({"C1,T,B,hi,,,,,,"});
  ASSERT_TRUE(run.problems.empty()) << run.problems[0];
  EXPECT_FALSE(run.items[0]->fallback_eligible);
  EXPECT_FALSE(run.items[0]->emergency);
  EXPECT_TRUE(run.items[0]->valid_from.empty());
}

TEST(Content, BodyLimitCountsCharactersNotBytes) {
  std::string devanagari;
  for (int i = 0; i < 1024; ++i) devanagari += "क";  // 3 bytes each
  EXPECT_TRUE(contents({"C1,T," + devanagari + ",hi,,,,,,"}).problems.empty());
  EXPECT_EQ(contents({"C1,T," + std::string(1025, 'x') + ",en,,,,,,"}).problems,
            Lines{"content.csv:2: field \"body\": is 1025 characters long; at most 1024 are allowed"});
  EXPECT_EQ(contents({"C1,T,,en,,,,,,"}).problems, Lines{"content.csv:2: field \"body\": must not be empty"});
  EXPECT_EQ(contents({"C1,,B,en,,,,,,"}).problems, Lines{"content.csv:2: field \"title\": must not be empty"});
}

// Title and body are WhatsApp template parameters: no line breaks, tabs or long runs of spaces,
// and the title is the 60-character text header when there is no media.
TEST(Content, TemplateParameterRules) {
  EXPECT_EQ(contents({"C1,T,\"one\ntwo\",en,,,,,,"}).problems,
            Lines{"content.csv:2: field \"body\": contains a line break or tab, which a WhatsApp template parameter cannot carry"});
  EXPECT_EQ(contents({"C1,T,a\tb,en,,,,,,"}).problems,
            Lines{"content.csv:2: field \"body\": contains a line break or tab, which a WhatsApp template parameter cannot carry"});
  EXPECT_EQ(contents({"C1,T,a     b,en,,,,,,"}).problems,
            Lines{"content.csv:2: field \"body\": contains more than four consecutive spaces, which a WhatsApp template "
                  "parameter cannot carry"});
  EXPECT_TRUE(contents({"C1,T,a    b,en,,,,,,"}).problems.empty());
  const std::string long_title(61, 't');
  EXPECT_EQ(contents({"C1," + long_title + ",B,en,,,,,,"}).problems,
            Lines{"content.csv:2: field \"title\": is 61 characters long; at most 60 are allowed without a media_url (the "
                  "title is then the template header)"});
  EXPECT_TRUE(contents({"C1," + long_title + ",B,en,,https://cdn.example.com/a.jpg,,,,"}).problems.empty());
  EXPECT_TRUE(contents({"C1," + std::string(60, 't') + ",B,en,,,,,,"}).problems.empty());
}

// The import must accept exactly what the night-before check (content_check.cpp) can send, or
// assign-fallback would replace freshly imported content every night.
TEST(Content, AgreesWithTheNightBeforeCheck) {
  const std::vector<std::string> titles = {"T", std::string(60, 't'), std::string(61, 't'), "a     b", "तिथि"};
  const std::vector<std::string> bodies = {"B", std::string(1024, 'b'), std::string(1025, 'b'), "x    y", "x     y"};
  const std::vector<std::string> media = {"", "https://cdn.example.com/a.jpg", "http://[::1]:8080/x", "https://u:p@x.example/a"};
  for (const auto& t : titles) {
    for (const auto& b : bodies) {
      for (const auto& m : media) {
        auto run = contents({"C1," + t + "," + b + ",en,," + m + ",2026-11-01,2026-11-30,,"});
        Content c;
        c.title = t;
        c.body = b;
        c.media_url = m;
        c.valid_from = "2026-11-01";
        c.valid_until = "2026-11-30";
        auto night = content_send_problem(c, "2026-11-15");
        EXPECT_EQ(run.problems.empty(), !night.has_value())
            << "title " << t.size() << " body " << b.size() << " media " << m << ": "
            << (run.problems.empty() ? std::string("import ok") : run.problems[0]) << " / " << night.value_or("night ok");
      }
    }
  }
}

TEST(Content, MediaUrl) {
  EXPECT_TRUE(contents({"C1,T,B,en,,http://x.example/a.jpg,,,,"}).problems.empty());
  for (const char* bad : {"ftp://x.example/a", "https://", "https:///a", "www.example.com/a.png", "https://a b",
                          "https://user:pw@x.example/a.png"}) {
    EXPECT_EQ(contents({"C1,T,B,en,," + std::string(bad) + ",,,,"}).problems,
              Lines{"content.csv:2: field \"media_url\": \"" + std::string(bad) + "\" is not an http:// or https:// URL"})
        << bad;
  }
}

TEST(Content, ValidityDates) {
  EXPECT_EQ(contents({"C1,T,B,en,,,2026-02-30,,,"}).problems,
            Lines{"content.csv:2: field \"valid_from\": \"2026-02-30\" is not a valid date YYYY-MM-DD"});
  EXPECT_EQ(contents({"C1,T,B,en,,,2026-02-01,2026-01-01,,"}).problems,
            Lines{"content.csv:2: field \"valid_until\": \"2026-01-01\" is before valid_from \"2026-02-01\""});
  EXPECT_TRUE(contents({"C1,T,B,en,,,2026-02-01,2026-02-01,,"}).problems.empty());
}

TEST(Content, FlagsAndDuplicates) {
  EXPECT_EQ(contents({"C1,T,B,en,,,,,perhaps,"}).problems,
            Lines{"content.csv:2: field \"fallback_eligible\": \"perhaps\" is not a boolean (true/false, yes/no, 1/0)"});
  EXPECT_EQ(contents({"C1,T,B,en,,,,,,", "C1,T2,B2,en,,,,,,"}).problems,
            Lines{"content.csv:3: field \"content_id\": \"C1\" already appears on line 2"});
}

// ---------------------------------------------------------------------------------------------
// assignments

struct AssignmentRun {
  std::vector<std::optional<Assignment>> items;
  std::vector<std::string> problems;
};
AssignmentRun assignments(const std::vector<std::string>& rows) {
  std::map<std::string, Content> store;
  Content c1;
  c1.content_id = "C1";
  store["C1"] = c1;
  Content windowed;
  windowed.content_id = "C2";
  windowed.valid_from = "2026-12-01";
  windowed.valid_until = "2026-12-31";
  store["C2"] = windowed;
  Content gone;
  gone.content_id = "C3";
  gone.withdrawn = true;
  store["C3"] = gone;
  AssignmentLookups lookups;
  lookups.advisor_exists = [](const std::string& id) { return id == "A1" || id == "A2"; };
  lookups.content = [store](const std::string& id) -> std::optional<Content> {
    auto it = store.find(id);
    if (it == store.end()) return std::nullopt;
    return it->second;
  };
  std::string text = kAssignmentHeader + "\n";
  for (const auto& r : rows) text += r + "\n";
  auto recs = records(text);
  AssignmentValidator v("assignments.csv", header_of(ImportKind::assignments, kAssignmentHeader), lookups, Source::advisor);
  AssignmentRun run;
  std::vector<Problem> problems;
  for (std::size_t i = 1; i < recs.size(); ++i) run.items.push_back(v.validate(recs[i], problems));
  for (const auto& p : problems) run.problems.push_back(p.text());
  return run;
}

TEST(Assignments, GoodRows) {
  auto run = assignments({"A1,2026-11-28,C1", "A2,2026-12-05,C2"});
  ASSERT_TRUE(run.problems.empty()) << run.problems[0];
  EXPECT_EQ(run.items[0]->advisor_id, "A1");
  EXPECT_EQ(run.items[0]->date, "2026-11-28");
  EXPECT_EQ(run.items[0]->content_id, "C1");
  EXPECT_EQ(run.items[0]->source, Source::advisor);
}

TEST(Assignments, UnknownAdvisorAndContent) {
  EXPECT_EQ(assignments({"A9,2026-11-28,C9"}).problems,
            (Lines{"assignments.csv:2: field \"advisor_id\": \"A9\" is not a known advisor (import advisors first)",
                   "assignments.csv:2: field \"content_id\": \"C9\" is not known content (import content first)"}));
}

TEST(Assignments, ContentMustBeLiveOnTheDate) {
  EXPECT_EQ(assignments({"A1,2026-11-28,C2"}).problems,
            Lines{"assignments.csv:2: field \"date\": content \"C2\" is not valid on 2026-11-28 (valid from 2026-12-01 until "
                  "2026-12-31)"});
  EXPECT_EQ(assignments({"A1,2026-11-28,C3"}).problems,
            Lines{"assignments.csv:2: field \"content_id\": \"C3\" has been withdrawn"});
}

TEST(Assignments, BadDateAndDuplicatePair) {
  EXPECT_EQ(assignments({"A1,28/11/2026,C1"}).problems,
            Lines{"assignments.csv:2: field \"date\": \"28/11/2026\" is not a valid date YYYY-MM-DD"});
  EXPECT_EQ(assignments({"A1,2026-11-28,C1", "A2,2026-11-28,C1", "A1,2026-11-28,C2"}).problems,
            (Lines{"assignments.csv:4: field \"date\": content \"C2\" is not valid on 2026-11-28 (valid from 2026-12-01 until "
                   "2026-12-31)",
                   "assignments.csv:4: field \"date\": advisor \"A1\" already has an assignment for 2026-11-28 on line 2"}));
}

// ---------------------------------------------------------------------------------------------
// helpers

TEST(Helpers, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("नमस्ते 👋"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE0\xA4"));          // truncated
  EXPECT_EQ(utf8_length("नमस्ते"), 6U);
  EXPECT_EQ(utf8_length("👋a"), 2U);
}

TEST(Helpers, ImportKindNames) {
  for (auto k : {ImportKind::advisors, ImportKind::content, ImportKind::assignments}) {
    EXPECT_EQ(import_kind_from_string(to_string(k)), k);
  }
  EXPECT_FALSE(import_kind_from_string("advisor").has_value());
}

}  // namespace
}  // namespace daybreak
