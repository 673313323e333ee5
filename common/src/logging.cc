#include "kpiscale/common/logging.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kpiscale/common/absl_compat.h"

namespace kpiscale::common {
namespace {

bool IsKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
         c == ':' || c == '/';
}

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '=' || c == '"' || c == '\\' || u == 0x7f) return true;
  }
  return false;
}

void AppendJsonString(std::string_view s, std::string& out) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", c);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      // Copy a well-formed UTF-8 sequence; replace anything else so the line stays valid JSON.
      std::size_t len = 0;
      uint32_t cp = 0;
      if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
      } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
      } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
      }
      bool ok = len > 0 && i + len <= s.size();
      for (std::size_t k = 1; ok && k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) ok = false;
        cp = (cp << 6) | (cc & 0x3f);
      }
      if (ok) {
        // Overlong forms, surrogates and values beyond Unicode are not valid UTF-8.
        const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        ok = cp >= min_cp && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
      }
      if (ok) {
        out.append(s.data() + i, len);
        i += len;
        continue;
      }
      out += "\\ufffd";
    }
    ++i;
  }
  out += '"';
}

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

bool ScanLogfmt(std::string_view body, std::vector<std::pair<std::string, std::string>>* fields);

// Renders every line either as logfmt or as one JSON object. The message body is a logfmt
// body by convention; a body that is not logfmt becomes the value of msg.
class KpiscaleFormatter final : public spdlog::formatter {
 public:
  explicit KpiscaleFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view body(msg.payload.data(), msg.payload.size());
    const std::string_view logger(msg.logger_name.data(), msg.logger_name.size());
    line_.clear();
    const std::string_view ts = Timestamp(msg.time);
    if (format_ == LogFormat::kText) {
      line_ += "ts=";
      line_ += ts;
      line_ += " level=";
      line_ += LevelName(msg.level);
      line_ += " logger=";
      if (NeedsQuoting(logger)) {
        line_ += LogfmtValue(logger);
      } else {
        line_ += logger;
      }
      line_ += ' ';
      // Checking the grammar builds nothing; only a body that is not logfmt gets copied quoted.
      if (ScanLogfmt(body, nullptr)) {
        line_ += body;
      } else {
        line_ += "msg=";
        line_ += LogfmtValue(body);
      }
    } else {
      line_ += "{\"ts\":";
      AppendJsonString(ts, line_);
      line_ += ",\"level\":";
      AppendJsonString(LevelName(msg.level), line_);
      line_ += ",\"logger\":";
      AppendJsonString(logger, line_);
      const auto fields = ParseLogfmt(body);
      if (fields.has_value()) {
        std::vector<std::string> seen = {"ts", "level", "logger"};
        for (const auto& [key, value] : *fields) {
          // A body key that repeats a reserved or earlier key is kept, renamed, so the object
          // never has duplicate names (which JSON parsers treat differently).
          std::string name = key;
          while (std::find(seen.begin(), seen.end(), name) != seen.end()) name.insert(0, "_");
          line_ += ',';
          AppendJsonString(name, line_);
          line_ += ':';
          AppendJsonString(value, line_);
          seen.push_back(std::move(name));
        }
      } else {
        line_ += ",\"msg\":";
        AppendJsonString(body, line_);
      }
      line_ += '}';
    }
    line_ += '\n';
    dest.append(line_.data(), line_.data() + line_.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<KpiscaleFormatter>(format_);
  }

 private:
  // RFC 3339 UTC with milliseconds; the date and time part is formatted once per second.
  // Sinks call format() under their mutex, so the cache needs no lock of its own.
  std::string_view Timestamp(std::chrono::system_clock::time_point t) {
    const auto since = t.time_since_epoch();
    const auto secs = std::chrono::floor<std::chrono::seconds>(since);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    if (secs.count() != cached_second_ || ts_.size() < 20) {
      cached_second_ = secs.count();
      const std::time_t tt = static_cast<std::time_t>(secs.count());
      std::tm tm{};
      gmtime_r(&tt, &tm);
      ts_ = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    const std::size_t dot = ts_.size() - 4;  // "mmmZ" follows the '.'
    ts_[dot] = static_cast<char>('0' + millis / 100);
    ts_[dot + 1] = static_cast<char>('0' + millis / 10 % 10);
    ts_[dot + 2] = static_cast<char>('0' + millis % 10);
    return ts_;
  }

  LogFormat format_;
  int64_t cached_second_ = std::numeric_limits<int64_t>::min();
  std::string ts_;
  std::string line_;
};

std::optional<spdlog::level::level_enum> ParseLevelName(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(AbslView(name)));
  if (lower == "trace") return spdlog::level::trace;
  if (lower == "debug") return spdlog::level::debug;
  if (lower == "info") return spdlog::level::info;
  if (lower == "warn" || lower == "warning") return spdlog::level::warn;
  if (lower == "error" || lower == "err") return spdlog::level::err;
  if (lower == "critical" || lower == "fatal") return spdlog::level::critical;
  if (lower == "off") return spdlog::level::off;
  return std::nullopt;
}

// Process-wide logging state: the one place where loggers are created.
struct LoggingState {
  std::mutex mu;
  spdlog::sink_ptr sink;
  LogFormat format = LogFormat::kText;
  LevelSpec levels;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
};

LoggingState& State() {
  static auto* state = [] {
    auto* s = new LoggingState;
    s->sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s->sink->set_formatter(std::make_unique<KpiscaleFormatter>(LogFormat::kText));
    return s;
  }();
  return *state;
}

spdlog::level::level_enum LevelFor(const LevelSpec& spec, std::string_view name) {
  const auto it = spec.per_logger.find(name);
  return it == spec.per_logger.end() ? spec.default_level : it->second;
}

void ConfigureLocked(LoggingState& state, spdlog::logger& logger) {
  logger.sinks().assign(1, state.sink);
  logger.set_level(LevelFor(state.levels, logger.name()));
  // Errors are rare and matter; make them visible at once even with a buffered sink.
  logger.flush_on(spdlog::level::warn);
}

// libprotobuf writes one stderr line per malformed message (e.g. "String field … contains
// invalid UTF-8"), so any client could flood the log with bad bodies. Route its lines through a
// named logger at a bounded rate instead.
void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                        const std::string& message) {
  static RateLimitedLog* limiter = new RateLimitedLog(RealClock(), 10, std::chrono::seconds(60));
  spdlog::level::level_enum spd = spdlog::level::debug;
  if (level == google::protobuf::LOGLEVEL_WARNING || level == google::protobuf::LOGLEVEL_ERROR) {
    spd = spdlog::level::warn;
  } else if (level == google::protobuf::LOGLEVEL_FATAL) {
    spd = spdlog::level::critical;
  }
  auto logger = Logger(loggers::kProtobuf);
  KPISCALE_LOG_RATE_LIMITED(*limiter, logger, spd, "msg=protobuf_log at={}:{} text={}",
                            filename == nullptr ? "?" : filename, line, LogfmtValue(message));
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view text) {
  const std::string lower = absl::AsciiStrToLower(AbslView(text));
  if (lower == "text" || lower == "logfmt") return LogFormat::kText;
  if (lower == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format \"", AbslView(text), "\" is not one of text, json"));
}

absl::StatusOr<LevelSpec> ParseLevelSpec(std::string_view text) {
  LevelSpec spec;
  bool have_default = false;
  for (absl::string_view raw : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    const absl::string_view item = absl::StripAsciiWhitespace(raw);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string_view level_text =
        eq == absl::string_view::npos
            ? std::string_view(item.data(), item.size())
            : std::string_view(item.data() + eq + 1, item.size() - eq - 1);
    const auto level = ParseLevelName(level_text);
    if (!level.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("log level \"", AbslView(level_text),
                       "\" is not one of trace, debug, info, warn, error, critical, off (in \"",
                       AbslView(text), "\")"));
    }
    if (eq == absl::string_view::npos) {
      if (have_default) {
        return absl::InvalidArgumentError(
            absl::StrCat("log level spec \"", AbslView(text), "\" gives the default level twice"));
      }
      have_default = true;
      spec.default_level = *level;
    } else {
      const std::string name(absl::StripAsciiWhitespace(item.substr(0, eq)));
      if (name.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("log level spec \"", AbslView(text),
                                                       "\" has an item without a logger name"));
      }
      spec.per_logger[name] = *level;
    }
  }
  return spec;
}

absl::Status InitLogging(const LoggingOptions& options) {
  std::string level_text = options.level;
  if (level_text.empty()) {
    const char* env = std::getenv("SPDLOG_LEVEL");
    level_text = env != nullptr ? env : "info";
  }
  absl::StatusOr<LevelSpec> spec = ParseLevelSpec(level_text);
  if (!spec.ok()) return spec.status();

  LoggingState& state = State();
  std::lock_guard<std::mutex> lock(state.mu);
  state.levels = *std::move(spec);
  state.format = options.format;
  state.sink = options.sink ? options.sink : std::make_shared<spdlog::sinks::stderr_sink_mt>();
  state.sink->set_formatter(std::make_unique<KpiscaleFormatter>(options.format));
  for (auto& [name, logger] : state.loggers) ConfigureLocked(state, *logger);
  google::protobuf::SetLogHandler(&ProtobufLogHandler);
  return absl::OkStatus();
}

void AddLogFlags(ConfigLoader& loader, LogFlags* flags) {
  loader.Add("log-level", &flags->level, "log level, or a spec such as warn,adapter.api=debug")
      .Env("SPDLOG_LEVEL")
      .Check([](const std::string& v) { return ParseLevelSpec(v).status(); });
  loader.Add("log-format", &flags->format, "text (logfmt) or json").Check([](const std::string& v) {
    return ParseLogFormat(v).status();
  });
}

absl::Status InitLogging(const LogFlags& flags) {
  LoggingOptions options;
  options.level = flags.level.empty() ? "info" : flags.level;
  absl::StatusOr<LogFormat> format = ParseLogFormat(flags.format);
  if (!format.ok()) return format.status();
  options.format = *format;
  return InitLogging(options);
}

std::shared_ptr<spdlog::logger> Logger(std::string_view name) {
  LoggingState& state = State();
  std::lock_guard<std::mutex> lock(state.mu);
  const auto it = state.loggers.find(name);
  if (it != state.loggers.end()) return it->second;
  auto logger = std::make_shared<spdlog::logger>(std::string(name));
  ConfigureLocked(state, *logger);
  state.loggers.emplace(std::string(name), logger);
  return logger;
}

std::string LogfmtValue(std::string_view value) {
  if (!NeedsQuoting(value)) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

namespace {
// The logfmt grammar, shared by ParseLogfmt and the formatter's allocation-free check: with
// `fields` null nothing is built, only the answer "is this logfmt" is computed.
bool ScanLogfmt(std::string_view body, std::vector<std::pair<std::string, std::string>>* fields) {
  std::size_t count = 0;
  std::size_t i = 0;
  const std::size_t n = body.size();
  while (true) {
    while (i < n && body[i] == ' ') ++i;
    if (i >= n) break;
    const std::size_t key_start = i;
    while (i < n && IsKeyChar(body[i])) ++i;
    if (i == key_start || i >= n || body[i] != '=') return false;
    const std::string_view key = body.substr(key_start, i - key_start);
    ++i;  // '='
    std::string value;
    if (i < n && body[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = body[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          value += c;
          continue;
        }
        if (i >= n) return false;
        const char e = body[i++];
        switch (e) {
          case 'n':
            value += '\n';
            break;
          case 'r':
            value += '\r';
            break;
          case 't':
            value += '\t';
            break;
          case 'u': {
            if (i + 4 > n) return false;
            unsigned code = 0;
            for (int k = 0; k < 4; ++k) {
              const char h = body[i++];
              code <<= 4;
              if (h >= '0' && h <= '9') {
                code |= static_cast<unsigned>(h - '0');
              } else if (h >= 'a' && h <= 'f') {
                code |= static_cast<unsigned>(h - 'a' + 10);
              } else if (h >= 'A' && h <= 'F') {
                code |= static_cast<unsigned>(h - 'A' + 10);
              } else {
                return false;
              }
            }
            if (code >= 0x80) return false;  // LogfmtValue only writes \u for ASCII
            value += static_cast<char>(code);
            break;
          }
          default:
            value += e;
        }
      }
      if (!closed) return false;
      if (i < n && body[i] != ' ') return false;
    } else {
      const std::size_t value_start = i;
      while (i < n && body[i] != ' ') {
        if (body[i] == '"') return false;
        ++i;
      }
      if (fields != nullptr) value.assign(body.substr(value_start, i - value_start));
    }
    ++count;
    if (fields != nullptr) fields->emplace_back(std::string(key), std::move(value));
  }
  return count > 0;
}
}  // namespace

std::optional<std::vector<std::pair<std::string, std::string>>> ParseLogfmt(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> fields;
  if (!ScanLogfmt(body, &fields)) return std::nullopt;
  return fields;
}

RateLimitedLog::RateLimitedLog(const Clock& clock, uint32_t max_lines,
                               std::chrono::nanoseconds period)
    : clock_(clock), max_lines_(max_lines == 0 ? 1 : max_lines), period_(period) {}

std::optional<uint64_t> RateLimitedLog::Acquire() {
  const auto now = clock_.SteadyNow();
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_ || now - window_start_ >= period_) {
    started_ = true;
    window_start_ = now;
    lines_in_window_ = 0;
  }
  if (lines_in_window_ >= max_lines_) {
    ++suppressed_since_last_;
    suppressed_total_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  ++lines_in_window_;
  const uint64_t suppressed = suppressed_since_last_;
  suppressed_since_last_ = 0;
  return suppressed;
}

}  // namespace kpiscale::common
