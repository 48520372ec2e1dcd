#include "config/secret.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "config/config.hpp"

namespace daybreak {
namespace {

std::string octal_mode(mode_t m) {
  std::ostringstream o;
  o << '0' << std::oct << (m & 07777);
  return o.str();
}

/// Group or others may read (or replace) the file: a secret there is not a secret.
void refuse_open_mode(const struct stat& st, const std::string& path, const std::string& key, const std::string& where) {
  if ((st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) == 0) return;
  throw ConfigError(where + ": key \"" + key + "\": secret file " + path + " has mode " + octal_mode(st.st_mode) +
                    ", readable or writable by group or others; run chmod 600 " + path + " (owned by the user daybreak runs as)");
}

}  // namespace

Secret::Secret(std::string inline_value) : text_(std::move(inline_value)) {
  if (!text_.empty()) source_ = Source::inline_value;
}

Secret::Secret(const char* inline_value) : Secret(std::string(inline_value ? inline_value : "")) {}

Secret Secret::from_env(std::string variable, std::string key, std::string where) {
  if (variable.empty()) throw ConfigError(where + ": key \"" + key + "\" names no environment variable (it is empty)");
  Secret s;
  s.source_ = Source::env;
  s.text_ = std::move(variable);
  s.key_ = std::move(key);
  s.where_ = std::move(where);
  return s;
}

Secret Secret::from_file(std::string path, std::string key, std::string where) {
  if (path.empty()) throw ConfigError(where + ": key \"" + key + "\" names no file (it is empty)");
  // The file's mode is checked at load when the file is there (reading nothing), and again on read.
  if (struct stat st{}; ::stat(path.c_str(), &st) == 0) refuse_open_mode(st, path, key, where);
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
      if (*v == '\0') {
        throw ConfigError(where_ + ": key \"" + key_ + "\" names environment variable " + text_ +
                          ", which is empty; an empty secret is refused");
      }
      return v;
    }
    case Source::file: {
      const int fd = ::open(text_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw ConfigError(where_ + ": key \"" + key_ + "\": cannot read " + text_ + ": " + std::strerror(errno));
      struct stat st{};
      if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw ConfigError(where_ + ": key \"" + key_ + "\": " + text_ + " is not a regular file");
      }
      try {
        refuse_open_mode(st, text_, key_, where_);
      } catch (...) {
        ::close(fd);
        throw;
      }
      // The first line: a secret is short; 64 KiB bounds what a wrong path could make us hold.
      std::string data;
      char buf[4096];
      while (data.size() < 65536 && data.find('\n') == std::string::npos) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        data.append(buf, static_cast<std::size_t>(n));
      }
      ::close(fd);
      std::string out = data.substr(0, data.find('\n'));
      if (!out.empty() && out.back() == '\r') out.pop_back();
      if (out.empty()) {
        throw ConfigError(where_ + ": key \"" + key_ + "\": secret file " + text_ + " is empty (its first line); an empty secret is refused");
      }
      return out;
    }
  }
  return "";
}

}  // namespace daybreak
