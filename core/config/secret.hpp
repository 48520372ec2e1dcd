#pragma once
// A secret the configuration names: inline (`token = "…"`), an environment variable
// (`token_env = "NAME"`) or the first line of a file (`token_file = "/etc/daybreak/wa1.token"`).
// Loading the configuration records where each secret is, and reads nothing: a secret is read
// when a command asks for its value, so the commands that send nothing (`daybreak status`,
// `export`, `dead list`, …) run in a shell that does not carry every sender's token.
#include <string>

namespace daybreak {

class Secret {
 public:
  enum class Source { none, inline_value, env, file };

  Secret() = default;
  /// An inline value (tests, and `key = "…"` in the file). An empty string is "not configured".
  Secret(std::string inline_value);  // NOLINT(google-explicit-constructor): `sender.token = "x"`
  Secret(const char* inline_value);  // NOLINT(google-explicit-constructor)

  /// `key` is the configuration key that named it (e.g. "whatsapp.senders[0].token_env") and
  /// `where` the file and line ("daybreak.toml:12"), both for error messages.
  /// Both refuse (ConfigError) an empty variable name or path; from_file also refuses, at once,
  /// a file that exists and is readable or writable by group or others (nothing is read).
  static Secret from_env(std::string variable, std::string key, std::string where);
  static Secret from_file(std::string path, std::string key, std::string where);

  /// True when the configuration gives this secret at all (a non-empty inline value, or an
  /// environment variable or file to read it from). Reads nothing.
  [[nodiscard]] bool configured() const { return source_ != Source::none; }
  [[nodiscard]] Source source() const { return source_; }
  /// The variable name or file path (empty for inline and none).
  [[nodiscard]] const std::string& reference() const;
  /// "environment variable NAME", "file PATH", "inline" or "not set": says where, never what.
  [[nodiscard]] std::string describe() const;

  /// The value: inline, the variable's value, or the file's first line ("" when not
  /// configured). Throws ConfigError naming the key, the line and the variable or file when the
  /// variable is not set or empty, or the file cannot be read, is not a regular file, is
  /// readable or writable by group or others (naming its mode), or its first line is empty.
  [[nodiscard]] std::string value() const;

 private:
  Source source_ = Source::none;
  std::string text_;   ///< the inline value, the variable name or the file path
  std::string key_;
  std::string where_;
};

}  // namespace daybreak
