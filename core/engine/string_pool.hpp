#pragma once
// Packed storage for the strings of a million in-memory deliveries (advisor id, name, phone,
// email). A std::string per field costs 32 bytes before any heap allocation; here a string is a
// 4-byte reference into 1 MiB chunks that never move, so growing the pool never copies it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace daybreak::engine {

class StringPool {
 public:
  /// A string in the pool; 0 is the empty string.
  using Ref = std::uint32_t;

  /// Stores `s` (at most 65,535 bytes: longer input is cut, which no address or name reaches).
  Ref add(std::string_view s) {
    if (s.empty()) return 0;
    const std::size_t n = std::min<std::size_t>(s.size(), 0xFFFF);
    if (chunks_.empty() || used_ + n + 2 > kChunk) {
      chunks_.push_back(std::make_unique<char[]>(kChunk));
      // Offset 0 of the first chunk is reserved so that Ref 0 means "empty".
      used_ = chunks_.size() == 1 ? 1 : 0;
    }
    char* p = chunks_.back().get() + used_;
    p[0] = static_cast<char>(n & 0xFF);
    p[1] = static_cast<char>(n >> 8);
    std::memcpy(p + 2, s.data(), n);
    const Ref ref = static_cast<Ref>((chunks_.size() - 1) * kChunk + used_);
    used_ += n + 2;
    return ref;
  }

  [[nodiscard]] std::string_view get(Ref r) const {
    if (r == 0) return {};
    const char* p = chunks_[r / kChunk].get() + r % kChunk;
    const std::size_t n = static_cast<unsigned char>(p[0]) | (static_cast<std::size_t>(static_cast<unsigned char>(p[1])) << 8);
    return {p + 2, n};
  }

  /// Bytes held (whole chunks), for memory accounting.
  [[nodiscard]] std::size_t capacity_bytes() const { return chunks_.size() * kChunk; }

 private:
  // 1 MiB: up to 4,096 chunks (4 GiB) fit a 32-bit reference; a string never spans two chunks.
  static constexpr std::size_t kChunk = std::size_t{1} << 20;
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::size_t used_ = 0;
};

}  // namespace daybreak::engine
