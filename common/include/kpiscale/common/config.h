#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace CLI {
class App;
}  // namespace CLI

namespace kpiscale::common {

/// Parses a Go duration (time.ParseDuration): a sequence of decimal numbers with units ns, us
/// (µs), ms, s, m, h, e.g. "200ms", "1.5s", "1m30s", "-2h"; "0" alone needs no unit. The result
/// is truncated to whole nanoseconds; overflow is an error.
absl::StatusOr<std::chrono::nanoseconds> ParseDuration(std::string_view text);

/// Formats like Go's Duration.String(): "1m30s", "200ms", "1.5µs", "0s".
std::string FormatDuration(std::chrono::nanoseconds d);

/// A listen or upstream address. An empty host means all interfaces (":8080").
struct HostPort {
  std::string host;
  int port = 0;
  /// "host:port", with IPv6 hosts in brackets.
  std::string ToString() const;
  bool operator==(const HostPort& other) const { return host == other.host && port == other.port; }
};

/// Parses "host:port", "[::1]:8080", ":8080" (port 0..65535; 0 means "pick a free one").
/// Errors say what is wrong.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

/// Looks up an environment variable; injectable so tests need not touch the process env.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
/// getenv.
EnvLookup ProcessEnv();

/// Where an option's effective value came from.
enum class ConfigSource { kDefault, kFile, kEnv, kFlag };
std::string_view ConfigSourceName(ConfigSource source);

/// How a value type is parsed from flag/env/file text and printed back. Specialized for
/// std::string, bool, integers, double, std::chrono durations (Go syntax), HostPort and
/// std::vector<std::string> (comma-separated on flags and env; a YAML sequence in files).
template <typename T, typename Enable = void>
struct ConfigValueTraits;

template <>
struct ConfigValueTraits<std::string> {
  static constexpr std::string_view kTypeName = "string";
  static absl::StatusOr<std::string> Parse(std::string_view text) { return std::string(text); }
  static std::string Format(const std::string& v) { return v; }
};

template <>
struct ConfigValueTraits<bool> {
  static constexpr std::string_view kTypeName = "bool";
  static absl::StatusOr<bool> Parse(std::string_view text);
  static std::string Format(bool v) { return v ? "true" : "false"; }
};

template <>
struct ConfigValueTraits<double> {
  static constexpr std::string_view kTypeName = "float";
  static absl::StatusOr<double> Parse(std::string_view text);
  static std::string Format(double v);
};

namespace internal {
absl::StatusOr<int64_t> ParseConfigInt(std::string_view text, int64_t min, int64_t max);
}  // namespace internal

template <typename T>
struct ConfigValueTraits<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static_assert(sizeof(T) <= sizeof(int64_t));
  static_assert(std::is_signed_v<T> || sizeof(T) < sizeof(int64_t), "uint64 options unsupported");
  static constexpr std::string_view kTypeName = "int";
  static absl::StatusOr<T> Parse(std::string_view text) {
    absl::StatusOr<int64_t> v =
        internal::ParseConfigInt(text, static_cast<int64_t>(std::numeric_limits<T>::min()),
                                 static_cast<int64_t>(std::numeric_limits<T>::max()));
    if (!v.ok()) return v.status();
    return static_cast<T>(*v);
  }
  static std::string Format(T v) { return std::to_string(v); }
};

template <typename Rep, typename Period>
struct ConfigValueTraits<std::chrono::duration<Rep, Period>> {
  using D = std::chrono::duration<Rep, Period>;
  static constexpr std::string_view kTypeName = "duration";
  static absl::StatusOr<D> Parse(std::string_view text) {
    absl::StatusOr<std::chrono::nanoseconds> ns = ParseDuration(text);
    if (!ns.ok()) return ns.status();
    const D d = std::chrono::duration_cast<D>(*ns);
    if (std::chrono::duration_cast<std::chrono::nanoseconds>(d) != *ns) {
      return absl::InvalidArgumentError(
          "duration \"" + std::string(text) + "\" is finer than this option's resolution (" +
          FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(D(1))) + ")");
    }
    return d;
  }
  static std::string Format(D d) {
    return FormatDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
  }
};

template <>
struct ConfigValueTraits<HostPort> {
  static constexpr std::string_view kTypeName = "host:port";
  static absl::StatusOr<HostPort> Parse(std::string_view text) { return ParseHostPort(text); }
  static std::string Format(const HostPort& v) { return v.ToString(); }
};

template <>
struct ConfigValueTraits<std::vector<std::string>> {
  static constexpr std::string_view kTypeName = "list";
  /// Comma-separated; empty items are dropped ("" is the empty list).
  static absl::StatusOr<std::vector<std::string>> Parse(std::string_view text);
  static std::string Format(const std::vector<std::string>& v);
};

/// One declared option, type-erased. Programs use ConfigLoader::Add and the Option<T> handle.
class ConfigOptionBase {
 public:
  virtual ~ConfigOptionBase() = default;
  ConfigOptionBase(const ConfigOptionBase&) = delete;
  ConfigOptionBase& operator=(const ConfigOptionBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::string& env() const { return env_; }
  bool secret() const { return secret_; }
  bool required() const { return required_; }
  ConfigSource source() const { return source_; }
  virtual std::string_view type_name() const = 0;
  virtual bool is_bool() const = 0;
  virtual bool is_list() const = 0;
  /// The current value as text (secrets included; callers redact).
  virtual std::string ValueText() const = 0;
  /// The current value as a list (lists only).
  virtual std::vector<std::string> ValueList() const { return {}; }
  const std::string& default_text() const { return default_text_; }

  /// Parses text and stores it, recording the source.
  virtual absl::Status Set(std::string_view text, ConfigSource source) = 0;
  /// Stores a list (list options; a YAML sequence).
  virtual absl::Status SetList(const std::vector<std::string>& items, ConfigSource source);
  /// Range, one-of and custom checks on the current value.
  virtual absl::Status Check() const = 0;
  /// Restores the value the target had when the option was declared.
  virtual void ResetToDefault() = 0;

 protected:
  ConfigOptionBase(std::string name, std::string help)
      : name_(std::move(name)), help_(std::move(help)) {}

  std::string name_;
  std::string help_;
  std::string env_;
  std::string default_text_;
  bool secret_ = false;
  bool required_ = false;
  ConfigSource source_ = ConfigSource::kDefault;

  template <typename T>
  friend class Option;
  friend class ConfigLoader;
};

template <typename T>
class TypedConfigOption final : public ConfigOptionBase {
 public:
  using Traits = ConfigValueTraits<T>;
  TypedConfigOption(std::string name, T* target, std::string help)
      : ConfigOptionBase(std::move(name), std::move(help)), target_(target), default_(*target) {
    default_text_ = Traits::Format(*target_);
  }
  void ResetToDefault() override {
    *target_ = default_;
    source_ = ConfigSource::kDefault;
  }
  std::string_view type_name() const override { return Traits::kTypeName; }
  bool is_bool() const override { return std::is_same_v<T, bool>; }
  bool is_list() const override { return std::is_same_v<T, std::vector<std::string>>; }
  std::string ValueText() const override { return Traits::Format(*target_); }
  std::vector<std::string> ValueList() const override {
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      return *target_;
    } else {
      return {};
    }
  }
  absl::Status Set(std::string_view text, ConfigSource source) override {
    absl::StatusOr<T> v = Traits::Parse(text);
    if (!v.ok()) return v.status();
    *target_ = *std::move(v);
    source_ = source;
    return absl::OkStatus();
  }
  absl::Status SetList(const std::vector<std::string>& items, ConfigSource source) override {
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      *target_ = items;
      source_ = source;
      return absl::OkStatus();
    } else {
      return ConfigOptionBase::SetList(items, source);
    }
  }
  absl::Status Check() const override {
    for (const auto& check : checks_) {
      absl::Status st = check(*target_);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

 private:
  T* target_;
  const T default_;
  std::vector<std::function<absl::Status(const T&)>> checks_;

  template <typename U>
  friend class Option;
};

/// A handle to refine a declared option; every method returns *this for chaining.
template <typename T>
class Option {
 public:
  explicit Option(TypedConfigOption<T>* option) : option_(option) {}

  /// Also read from this environment variable (flag > env > file > default).
  Option& Env(std::string variable) {
    option_->env_ = std::move(variable);
    return *this;
  }
  /// Never printed: the effective config shows "<redacted>" for a non-empty value.
  Option& Secret() {
    option_->secret_ = true;
    return *this;
  }
  /// Must be given by a flag, the environment or the file.
  Option& Required() {
    option_->required_ = true;
    return *this;
  }
  /// The value must lie in [lo, hi] (integers, floats, durations).
  Option& Range(T lo, T hi) {
    using Traits = ConfigValueTraits<T>;
    return Check([lo, hi](const T& v) -> absl::Status {
      if (v < lo || hi < v) {
        return absl::OutOfRangeError(Traits::Format(v) + " is out of range [" + Traits::Format(lo) +
                                     ", " + Traits::Format(hi) + "]");
      }
      return absl::OkStatus();
    });
  }
  /// The value must be one of these (strings).
  Option& OneOf(std::vector<T> allowed) {
    using Traits = ConfigValueTraits<T>;
    return Check([allowed = std::move(allowed)](const T& v) -> absl::Status {
      for (const T& a : allowed) {
        if (a == v) return absl::OkStatus();
      }
      std::string list;
      for (const T& a : allowed) list += (list.empty() ? "" : ", ") + Traits::Format(a);
      return absl::InvalidArgumentError("\"" + Traits::Format(v) + "\" is not one of " + list);
    });
  }
  /// A custom check; its message is prefixed with the option name.
  Option& Check(std::function<absl::Status(const T&)> check) {
    option_->checks_.push_back(std::move(check));
    return *this;
  }

 private:
  TypedConfigOption<T>* option_;
};

/// What the program should do after parsing.
struct ConfigOutcome {
  enum class Action {
    kRun,       ///< run normally
    kValidate,  ///< --validate: the configuration is valid; do deeper checks, print, exit 0
    kExit,      ///< --help or --version: print `output`, exit 0
  };
  Action action = Action::kRun;
  std::string output;
};

/// Declares a program's options once and fills a plain config struct from flags, environment
/// and a YAML file.
///
/// ```
/// struct AdapterConfig { int secure_port = 6443; std::chrono::milliseconds stale_after{5000}; };
/// AdapterConfig cfg;
/// ConfigLoader loader("kpiscale-adapter", "Kubernetes custom metrics adapter");
/// loader.Add("secure-port", &cfg.secure_port, "HTTPS port").Range(0, 65535);
/// loader.Add("stale-after", &cfg.stale_after, "drop pods without a newer window");
/// absl::StatusOr<ConfigOutcome> outcome = loader.Parse(argc, argv);
/// ```
///
/// Flags are Kubernetes style (`--secure-port=6443` or `--secure-port 6443`, booleans
/// `--flag` / `--flag=false`, lists comma-separated or repeated). `--config FILE` reads a YAML
/// map whose keys are the flag names without the dashes; unknown keys are rejected by name.
/// Precedence: flag > environment variable (when the option declares one) > file > default.
/// After loading, every option's checks (Range, OneOf, Check) and every AddCheck run;
/// all problems are reported together. `--validate` and `--version` are built in.
/// Thread-safety: none; use from main() before starting threads.
class ConfigLoader {
 public:
  ConfigLoader(std::string program, std::string description,
               std::string version = KPISCALE_VERSION);
  ~ConfigLoader();
  ConfigLoader(const ConfigLoader&) = delete;
  ConfigLoader& operator=(const ConfigLoader&) = delete;

  /// Declares `--name` bound to *target (whose current value is the default). The target must
  /// outlive the loader. Names are lower-case words joined by '-'.
  template <typename T>
  Option<T> Add(std::string name, T* target, std::string help) {
    auto option = std::make_unique<TypedConfigOption<T>>(std::move(name), target, std::move(help));
    TypedConfigOption<T>* raw = option.get();
    AddOption(std::move(option));
    return Option<T>(raw);
  }

  /// A check across options, run after all values are loaded (e.g. "tls-cert-file and
  /// tls-private-key-file go together").
  void AddCheck(std::function<absl::Status()> check);

  /// Parses argv (argv[0] is the program), the environment and the config file. On error the
  /// message names the flag, variable or file key (with line), and every problem found.
  /// Every call starts again from the declared defaults.
  absl::StatusOr<ConfigOutcome> Parse(int argc, const char* const* argv,
                                      const EnvLookup& env = ProcessEnv());
  absl::StatusOr<ConfigOutcome> Parse(const std::vector<std::string>& args,
                                      const EnvLookup& env = ProcessEnv());

  /// The effective configuration as YAML (loadable again with --config), in declaration order,
  /// each key commented with its source; secrets are "<redacted>".
  std::string EffectiveYaml() const;
  /// The same on one logfmt line (`secure-port=6443 token=<redacted> …`), to log at start-up.
  std::string EffectiveLogfmt() const;

  /// Where the option's value came from; kDefault for unknown names.
  ConfigSource SourceOf(std::string_view name) const;
  /// The path given with --config, if any.
  const std::string& config_file() const { return config_file_; }
  /// The generated --help text.
  std::string Help() const;

 private:
  struct FlagHolders;
  std::unique_ptr<CLI::App> BuildApp(FlagHolders& holders) const;
  void AddOption(std::unique_ptr<ConfigOptionBase> option);
  absl::Status LoadFile(const std::string& path, std::vector<std::string>& problems);
  ConfigOptionBase* Find(std::string_view name) const;

  std::string program_;
  std::string description_;
  std::string version_;
  std::string config_file_;
  std::vector<std::unique_ptr<ConfigOptionBase>> options_;
  std::vector<std::function<absl::Status()>> checks_;
};

/// Handles the common ends of Parse in a main(): prints an error (exit code 2), --help or
/// --version text (exit 0). Returns the exit code to leave with, or nullopt to go on (run or
/// validate). `out` and `err` default to stdout and stderr.
std::optional<int> ExitCodeForConfigOutcome(const absl::StatusOr<ConfigOutcome>& outcome,
                                            std::FILE* out = nullptr, std::FILE* err = nullptr);

}  // namespace kpiscale::common
