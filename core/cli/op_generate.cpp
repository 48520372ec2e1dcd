// `daybreak generate`: writes a synthetic but valid advisors/content/assignments set (the
// demo's 2,000 advisors, the bench's million). Deterministic for a given seed.
#include <filesystem>
#include <fstream>
#include <random>

#include "cli/commands.hpp"
#include "domain/time.hpp"

namespace daybreak {
namespace {

struct GenerateOptions {
  std::size_t advisors = 2000;
  std::string date;
  std::string out = ".";
  std::uint64_t seed = 42;
  int assigned_pct = 70;
  int other_tz_pct = 2;
  std::string channels = "whatsapp|email";
};

int generate(const GenerateOptions& o) {
  auto d = parse_date(o.date);
  if (!d) throw UsageError("--date: " + d.error().message);
  std::filesystem::create_directories(o.out);
  std::mt19937_64 rng(o.seed);
  auto pct = [&](int p) { return static_cast<int>(rng() % 100) < p; };
  const char* tiers[] = {"platinum", "gold", "silver", "standard"};
  const char* topics[] = {"tax", "equity", "debt", "insurance", "retirement", "markets", "mutual-funds", "gold"};
  const char* languages[] = {"en", "hi"};

  std::ofstream c(o.out + "/content.csv");
  c << "content_id,title,body,language,topics,media_url,valid_from,valid_until,fallback_eligible,emergency\n";
  std::string from = format_date(add_days(*d, -30)), until = format_date(add_days(*d, 30));
  int n = 0;
  for (const char* lang : languages) {
    for (int i = 0; i < 12; ++i, ++n) {
      bool fb = i >= 6, em = i >= 10;
      std::string t1 = topics[(i + n) % 8], t2 = topics[(i * 3 + 1) % 8];
      c << "c-" << lang << "-" << i << ",\"" << (em ? "Market note " : "Morning brief ") << i << " (" << lang << ")\","
        << "\"Today's " << t1 << " and " << t2 << " update, with one idea to share with clients.\"," << lang << ","
        << t1 << ";" << t2 << "," << (i % 3 == 0 ? "https://cdn.example.com/daybreak/card-" + std::to_string(i) + ".jpg" : "")
        << "," << from << "," << until << "," << (fb ? "true" : "false") << "," << (em ? "true" : "false") << "\n";
    }
  }

  std::ofstream a(o.out + "/advisors.csv");
  std::ofstream s(o.out + "/assignments.csv");
  a << "advisor_id,name,tier,phone,email,timezone,slot,channels,opted_in,language,topics\n";
  s << "advisor_id,date,content_id\n";
  for (std::size_t i = 0; i < o.advisors; ++i) {
    // 5% platinum, 15% gold, 30% silver, 50% standard.
    int w = static_cast<int>(rng() % 100);
    int tier = w < 5 ? 0 : w < 20 ? 1 : w < 50 ? 2 : 3;
    std::string id = "adv-" + std::to_string(100000 + i);
    std::string tz, phone;
    char digits[16];
    std::snprintf(digits, sizeof digits, "%08llu", static_cast<unsigned long long>(rng() % 100000000ULL));
    if (pct(o.other_tz_pct)) {
      bool dubai = rng() % 2;
      tz = dubai ? "Asia/Dubai" : "Europe/London";
      phone = dubai ? std::string("+97150") + std::string(digits).substr(0, 7) : std::string("+4475") + std::string(digits).substr(0, 8);
    } else {
      phone = std::string("+9198") + digits;
    }
    std::string lang = pct(75) ? "en" : "hi";
    std::string t1 = topics[rng() % 8], t2 = topics[rng() % 8];
    bool opted = !pct(2);
    a << id << ",Advisor " << i << "," << tiers[tier] << "," << phone << "," << id << "@advisors.example.com," << tz
      << ",," << o.channels << "," << (opted ? "true" : "false") << "," << lang << "," << t1 << ";" << t2 << "\n";
    if (pct(o.assigned_pct)) s << id << "," << o.date << ",c-" << lang << "-" << (rng() % 6) << "\n";
  }
  std::cout << "wrote " << o.advisors << " advisors, " << n << " content items and assignments for " << o.date << " to " << o.out << "\n";
  return kExitOk;
}

}  // namespace

void add_generate_command(CLI::App& app, GlobalOptions& /*g*/, Action& action) {
  auto o = std::make_shared<GenerateOptions>();
  auto* sub = app.add_subcommand("generate", "Write a synthetic advisors/content/assignments set (demo, bench)");
  sub->add_option("--advisors", o->advisors, "How many advisors")->check(CLI::Range(1UL, 10000000UL));
  sub->add_option("--date", o->date, "Delivery day of the assignments (YYYY-MM-DD)")->required();
  sub->add_option("--out", o->out, "Directory for advisors.csv, content.csv, assignments.csv");
  sub->add_option("--seed", o->seed, "Random seed");
  sub->add_option("--assigned-pct", o->assigned_pct, "Share of advisors with editorial content")->check(CLI::Range(0, 100));
  sub->add_option("--other-tz-pct", o->other_tz_pct, "Share of advisors outside Asia/Kolkata")->check(CLI::Range(0, 100));
  sub->add_option("--channels", o->channels, "Channel preference written for every advisor");
  sub->callback([o, &action] { action = [o] { return generate(*o); }; });
}

}  // namespace daybreak
