#include "domain/types.hpp"

#include <array>
#include <utility>

namespace daybreak {
namespace {

template <typename E, std::size_t N>
std::optional<E> lookup(const std::array<std::pair<E, std::string_view>, N>& table, std::string_view s) {
  for (const auto& [e, name] : table) {
    if (name == s) return e;
  }
  return std::nullopt;
}
template <typename E, std::size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E e) {
  for (const auto& [v, name] : table) {
    if (v == e) return name;
  }
  return "?";
}

constexpr std::array<std::pair<Channel, std::string_view>, 3> kChannels{{
    {Channel::whatsapp, "whatsapp"}, {Channel::email, "email"}, {Channel::webhook, "webhook"}}};
constexpr std::array<std::pair<Source, std::string_view>, 5> kSources{{{Source::editorial, "editorial"},
                                                                        {Source::advisor, "advisor"},
                                                                        {Source::fallback, "fallback"},
                                                                        {Source::emergency, "emergency"},
                                                                        {Source::override_, "override"}}};
constexpr std::array<std::pair<DeliveryState, std::string_view>, 9> kStates{{
    {DeliveryState::planned, "planned"},
    {DeliveryState::sending, "sending"},
    {DeliveryState::uncertain, "uncertain"},
    {DeliveryState::retry_wait, "retry_wait"},
    {DeliveryState::accepted, "accepted"},
    {DeliveryState::delivered, "delivered"},
    {DeliveryState::read, "read"},
    {DeliveryState::dead, "dead"},
    {DeliveryState::cancelled, "cancelled"},
}};

}  // namespace

std::string_view to_string(Channel c) { return name_of(kChannels, c); }
std::optional<Channel> channel_from_string(std::string_view s) { return lookup(kChannels, s); }
std::string_view to_string(Source s) { return name_of(kSources, s); }
std::optional<Source> source_from_string(std::string_view s) { return lookup(kSources, s); }
std::string_view to_string(DeliveryState s) { return name_of(kStates, s); }
std::optional<DeliveryState> delivery_state_from_string(std::string_view s) { return lookup(kStates, s); }

std::vector<std::string> split_list(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view part = s.substr(start, end - start);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (!part.empty()) out.emplace_back(part);
    start = end + 1;
  }
  return out;
}

std::string join_list(const std::vector<std::string>& parts, char sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out.push_back(sep);
    out += parts[i];
  }
  return out;
}

namespace {

/// "'a', 'b'" of every state `keep` accepts, in the enum's order.
template <class Pred>
std::string states_sql(Pred keep) {
  std::string out;
  for (auto s : {DeliveryState::planned, DeliveryState::sending, DeliveryState::uncertain, DeliveryState::retry_wait,
                 DeliveryState::accepted, DeliveryState::delivered, DeliveryState::read, DeliveryState::dead,
                 DeliveryState::cancelled}) {
    if (keep(s)) out += (out.empty() ? "'" : ", '") + std::string(to_string(s)) + "'";
  }
  return out;
}

}  // namespace

const std::string& non_final_states_sql() {
  static const std::string list = states_sql([](DeliveryState s) { return !is_final_state(s); });
  return list;
}

const std::string& accepted_states_sql() {
  static const std::string list = states_sql([](DeliveryState s) { return is_accepted_state(s); });
  return list;
}

}  // namespace daybreak
