#include "app/errors.hpp"

namespace daybreak {

std::string mask_address(const std::string& address) {
  if (address.empty()) return address;
  auto at = address.find('@');
  if (at != std::string::npos) {
    std::string local = address.substr(0, at);
    return (local.empty() ? "" : local.substr(0, 1)) + "***" + address.substr(at);
  }
  if (address.size() <= 6) return std::string(address.size(), '*');
  return address.substr(0, 3) + std::string(address.size() - 7, '*') + address.substr(address.size() - 4);
}

}  // namespace daybreak
