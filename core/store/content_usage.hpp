#pragma once
// What content a delivery day uses, by channel: the night-before template check reads it
// (app/templates_check.hpp). Query module over assignments, content and advisors.
#include <cstdint>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace daybreak::store {

/// One content item assigned on a day, with how many eligible (opted-in) advisors who list
/// `channel` among their channels get it.
struct ContentUse {
  std::string content_id;
  std::string language;
  std::string media_url;
  std::int64_t advisors = 0;
};
/// Every item assigned on `date` to an opted-in advisor with `channel` in their channels; by content_id.
std::vector<ContentUse> ContentAssignedOnChannel(Db& db, const std::string& date, const std::string& channel);

}  // namespace daybreak::store
