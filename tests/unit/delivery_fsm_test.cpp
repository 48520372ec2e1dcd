// Tests for core/domain/delivery_fsm.cpp: the transition table against the diagram in
// docs/state_machine.md (both ways), and the state sets the store binds into its statements.
#include "domain/delivery_fsm.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>

namespace daybreak {
namespace {

using Pair = std::pair<std::string, std::string>;

/// The (from, to) pairs of the mermaid flowchart in docs/state_machine.md: lines
/// `  a -->|why| b` and `  a -.->|why| b`.
std::set<Pair> diagram_pairs() {
  std::ifstream in(std::string(DAYBREAK_SOURCE_DIR) + "/docs/state_machine.md");
  EXPECT_TRUE(in.good()) << "docs/state_machine.md not found";
  std::set<Pair> out;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("```mermaid", 0) == 0) {
      inside = true;
      continue;
    }
    if (inside && line.rfind("```", 0) == 0) break;
    if (!inside) continue;
    auto arrow = line.find("-->");
    auto dotted = line.find("-.->");
    if (arrow == std::string::npos && dotted == std::string::npos) continue;
    std::istringstream words(line);
    std::string from;
    words >> from;
    auto last_bar = line.rfind('|');
    std::istringstream tail(line.substr(last_bar == std::string::npos ? line.rfind('>') + 1 : last_bar + 1));
    std::string to;
    tail >> to;
    out.insert({from, to});
  }
  return out;
}

TEST(DeliveryFsm, TheDiagramAndTheTableAgree) {
  std::set<Pair> table;
  for (const auto& t : delivery_transitions()) table.insert({std::string(to_string(t.from)), std::string(to_string(t.to))});
  const auto drawn = diagram_pairs();
  ASSERT_FALSE(drawn.empty());
  for (const auto& p : table) EXPECT_TRUE(drawn.count(p)) << p.first << " -> " << p.second << " is allowed but not drawn";
  for (const auto& p : drawn) EXPECT_TRUE(table.count(p)) << p.first << " -> " << p.second << " is drawn but not allowed";
}

TEST(DeliveryFsm, FinalStatesOnlyLeaveThroughAnOperatorOrAStatus) {
  for (const auto& t : delivery_transitions()) {
    if (is_final_state(t.from)) {
      EXPECT_TRUE(t.by == FsmActor::operator_ || t.by == FsmActor::status)
          << to_string(t.from) << " -> " << to_string(t.to) << " by " << to_string(t.by);
    }
  }
  // A status never moves a row down, nor a row dispatch is writing.
  EXPECT_FALSE(transition_allowed(DeliveryState::read, DeliveryState::delivered));
  EXPECT_FALSE(transition_allowed(DeliveryState::sending, DeliveryState::delivered));
  EXPECT_FALSE(transition_allowed(DeliveryState::sending, DeliveryState::cancelled)) << "a row at the provider finishes";
}

TEST(DeliveryFsm, TheSetsAndTheirSql) {
  EXPECT_EQ(claimable_states_sql(), "'planned', 'uncertain', 'retry_wait'");
  EXPECT_EQ(cancellable_states_sql(), claimable_states_sql());
  EXPECT_EQ(repointable_states_sql(), "'planned', 'retry_wait'");
  EXPECT_EQ(non_final_states_sql(), "'planned', 'sending', 'uncertain', 'retry_wait'");
  for (const auto& t : delivery_transitions()) {
    if (t.to == DeliveryState::sending) {
      EXPECT_TRUE(is_claimable(t.from)) << to_string(t.from);
    }
    if (t.to == DeliveryState::cancelled) {
      EXPECT_TRUE(is_cancellable(t.from)) << to_string(t.from);
    }
  }
  EXPECT_FALSE(is_repointable(DeliveryState::uncertain)) << "an uncertain row may already be at the provider";
}

}  // namespace
}  // namespace daybreak
