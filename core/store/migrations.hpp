#pragma once
// The numbered migrations of sql/, embedded at build time (cmake/EmbedSqlScript.cmake).
#include <string_view>
#include <vector>

namespace daybreak::store {

/// One sql/NNN_name.sql file.
struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

/// Every migration in version order.
const std::vector<Migration>& embedded_migrations();
/// Every PostgreSQL ledger migration (sql/postgresql/) in version order.
const std::vector<Migration>& embedded_pg_migrations();

}  // namespace daybreak::store
