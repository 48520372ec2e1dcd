#include "config/secret.hpp"

#include <cstdlib>
#include <fstream>

#include "config/config.hpp"

namespace daybreak {

Secret::Secret(std::string inline_value) : text_(std::move(inline_value)) {
  if (!text_.empty()) source_ = Source::inline_value;
}

Secret::Secret(const char* inline_value) : Secret(std::string(inline_value ? inline_value : "")) {}

Secret Secret::from_env(std::string variable, std::string key, std::string where) {
  Secret s;
  s.source_ = Source::env;
  s.text_ = std::move(variable);
  s.key_ = std::move(key);
  s.where_ = std::move(where);
  return s;
}

Secret Secret::from_file(std::string path, std::string key, std::string where) {
  Secret s;
  s.source_ = Source::file;
  s.text_ = std::move(path);
  s.key_ = std::move(key);
  s.where_ = std::move(where);
  return s;
}

const std::string& Secret::reference() const {
  static const std::string none;
  return source_ == Source::env || source_ == Source::file ? text_ : none;
}

std::string Secret::describe() const {
  switch (source_) {
    case Source::none: return "not set";
    case Source::inline_value: return "inline";
    case Source::env: return "environment variable " + text_;
    case Source::file: return "file " + text_;
  }
  return "not set";
}

std::string Secret::value() const {
  switch (source_) {
    case Source::none: return "";
    case Source::inline_value: return text_;
    case Source::env: {
      const char* v = std::getenv(text_.c_str());
      if (!v) {
        throw ConfigError(where_ + ": key \"" + key_ + "\" names environment variable " + text_ +
                          ", which is not set (export it, or put it in /etc/daybreak/daybreak.env for the systemd units)");
      }
      return v;
    }
    case Source::file: {
      std::ifstream in(text_);
      if (!in) throw ConfigError(where_ + ": key \"" + key_ + "\": cannot read " + text_);
      std::string out;
      std::getline(in, out);
      return out;
    }
  }
  return "";
}

}  // namespace daybreak
