#include "kpiscale/common/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kpiscale/common/absl_compat.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/status.h"

namespace kpiscale::common {
namespace {

constexpr char kRedacted[] = "<redacted>";

// Go's time units, in nanoseconds.
struct Unit {
  std::string_view name;
  uint64_t ns;
};
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xc2\xb5s", 1'000},  // U+00B5 micro sign
    {"\xce\xbcs", 1'000},  // U+03BC Greek mu
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

// Go's fmtFrac: v with `prec` decimal digits, trailing zeros (and the dot) removed.
std::string FormatFraction(uint64_t v, int prec) {
  uint64_t scale = 1;
  for (int i = 0; i < prec; ++i) scale *= 10;
  std::string out = std::to_string(v / scale);
  uint64_t frac = v % scale;
  if (frac != 0) {
    std::string digits(static_cast<std::size_t>(prec), '0');
    for (int i = prec - 1; i >= 0; --i) {
      digits[static_cast<std::size_t>(i)] = static_cast<char>('0' + frac % 10);
      frac /= 10;
    }
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  const std::string quoted = absl::StrCat("\"", AbslView(text), "\"");
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return absl::InvalidArgumentError(absl::StrCat("invalid duration ", quoted));
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t total = 0;
  while (!s.empty()) {
    uint64_t whole = 0;
    bool any_digit = false;
    bool overflow = false;
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      const auto digit = static_cast<uint64_t>(s[i] - '0');
      if (whole > (kMax - digit) / 10) overflow = true;
      if (!overflow) whole = whole * 10 + digit;
      any_digit = true;
      ++i;
    }
    // As Go's leadingFraction: integer digits while they fit, the rest ignored.
    uint64_t fraction = 0;
    double scale = 1;
    bool fraction_full = false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        const auto digit = static_cast<uint64_t>(s[i] - '0');
        if (!fraction_full && fraction <= (kMax - digit) / 10) {
          fraction = fraction * 10 + digit;
          scale *= 10;
        } else {
          fraction_full = true;
        }
        any_digit = true;
        ++i;
      }
    }
    if (!any_digit) return absl::InvalidArgumentError(absl::StrCat("invalid duration ", quoted));
    if (overflow) {
      return absl::InvalidArgumentError(absl::StrCat("duration ", quoted, " overflows"));
    }
    s.remove_prefix(i);
    std::size_t unit_len = 0;
    while (unit_len < s.size() && s[unit_len] != '.' && (s[unit_len] < '0' || s[unit_len] > '9')) {
      ++unit_len;
    }
    const std::string_view unit_text = s.substr(0, unit_len);
    if (unit_text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "missing unit in duration ", quoted, " (use ns, us, ms, s, m or h, e.g. \"200ms\")"));
    }
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (u.name == unit_text) unit = &u;
    }
    if (unit == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown unit \"", AbslView(unit_text),
                                                     "\" in duration ", quoted,
                                                     " (use ns, us, ms, s, m or h)"));
    }
    s.remove_prefix(unit_len);
    if (whole > kMax / unit->ns) {
      return absl::InvalidArgumentError(absl::StrCat("duration ", quoted, " overflows"));
    }
    uint64_t v = whole * unit->ns;
    if (fraction > 0) {
      const auto extra = static_cast<uint64_t>(static_cast<double>(fraction) *
                                               (static_cast<double>(unit->ns) / scale));
      if (v > kMax - extra) {
        return absl::InvalidArgumentError(absl::StrCat("duration ", quoted, " overflows"));
      }
      v += extra;
    }
    if (total > kMax - v) {
      return absl::InvalidArgumentError(absl::StrCat("duration ", quoted, " overflows"));
    }
    total += v;
  }
  const auto signed_total = static_cast<int64_t>(total);
  return std::chrono::nanoseconds(negative ? -signed_total : signed_total);
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  const int64_t ns = d.count();
  if (ns == 0) return "0s";
  const bool negative = ns < 0;
  // The magnitude of INT64_MIN does not fit in int64, but does in uint64.
  const uint64_t u = negative ? 0 - static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  std::string out;
  if (u < 1'000'000'000) {
    if (u < 1'000) {
      out = absl::StrCat(u, "ns");
    } else if (u < 1'000'000) {
      out = FormatFraction(u, 3) + "\xc2\xb5s";
    } else {
      out = FormatFraction(u, 6) + "ms";
    }
  } else {
    const uint64_t hours = u / 3'600'000'000'000;
    const uint64_t minutes = (u / 60'000'000'000) % 60;
    const uint64_t sec_ns = u % 60'000'000'000;
    if (hours > 0) absl::StrAppend(&out, hours, "h");
    if (hours > 0 || minutes > 0) absl::StrAppend(&out, minutes, "m");
    out += FormatFraction(sec_ns, 9) + "s";
  }
  return negative ? "-" + out : out;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const std::string quoted = absl::StrCat("\"", AbslView(text), "\"");
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("address ", quoted, ": missing ']'"));
    }
    out.host = std::string(text.substr(1, close - 1));
    if (out.host.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("address ", quoted, ": empty IPv6 host"));
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", quoted, ": missing port (expected [host]:port)"));
    }
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", quoted, ": missing port (expected host:port, e.g. \":8080\")"));
    }
    if (text.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", quoted, ": too many colons (put IPv6 hosts in brackets)"));
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  for (char c : out.host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '/' || c == '[' || c == ']' || c == '@') {
      return absl::InvalidArgumentError(
          absl::StrCat("address ", quoted, ": invalid character in host"));
    }
  }
  if (port_text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("address ", quoted, ": missing port"));
  }
  int port = 0;
  if (port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(AbslView(port_text), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address ", quoted, ": port \"", AbslView(port_text), "\" is not a number in 0..65535"));
  }
  out.port = port;
  return out;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::string_view ConfigSourceName(ConfigSource source) {
  switch (source) {
    case ConfigSource::kDefault:
      return "default";
    case ConfigSource::kFile:
      return "file";
    case ConfigSource::kEnv:
      return "env";
    case ConfigSource::kFlag:
      return "flag";
  }
  return "default";
}

absl::StatusOr<bool> ConfigValueTraits<bool>::Parse(std::string_view text) {
  static const std::set<std::string, std::less<>> kTrue = {
      "1", "t", "T", "true", "TRUE", "True", "yes", "Yes", "YES", "on", "On", "ON"};
  static const std::set<std::string, std::less<>> kFalse = {
      "0", "f", "F", "false", "FALSE", "False", "no", "No", "NO", "off", "Off", "OFF"};
  if (kTrue.count(text) > 0) return true;
  if (kFalse.count(text) > 0) return false;
  return absl::InvalidArgumentError(
      absl::StrCat("\"", AbslView(text), "\" is not a boolean (use true or false)"));
}

absl::StatusOr<double> ConfigValueTraits<double>::Parse(std::string_view text) {
  double v = 0;
  if (!absl::SimpleAtod(AbslView(text), &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", AbslView(text), "\" is not a finite number"));
  }
  return v;
}

// Shortest text that parses back to the same double (absl::StrCat keeps only six digits).
std::string ConfigValueTraits<double>::Format(double v) { return fmt::format("{}", v); }

absl::StatusOr<std::vector<std::string>> ConfigValueTraits<std::vector<std::string>>::Parse(
    std::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(AbslView(text), ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

std::string ConfigValueTraits<std::vector<std::string>>::Format(const std::vector<std::string>& v) {
  return absl::StrJoin(v, ",");
}

namespace internal {
absl::StatusOr<int64_t> ParseConfigInt(std::string_view text, int64_t min, int64_t max) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(AbslView(text), &v)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", AbslView(text), "\" is not an integer"));
  }
  if (v < min || v > max) {
    return absl::OutOfRangeError(
        absl::StrCat(v, " does not fit this option's type [", min, ", ", max, "]"));
  }
  return v;
}
}  // namespace internal

absl::Status ConfigOptionBase::SetList(const std::vector<std::string>&, ConfigSource) {
  return absl::InvalidArgumentError("must be a single value, not a list");
}

struct ConfigLoader::FlagHolders {
  std::map<std::string, std::string> scalars;
  std::map<std::string, std::vector<std::string>> lists;
  std::string config_file;
  bool validate = false;
  bool version = false;
};

ConfigLoader::ConfigLoader(std::string program, std::string description, std::string version)
    : program_(std::move(program)),
      description_(std::move(description)),
      version_(std::move(version)) {}

ConfigLoader::~ConfigLoader() = default;

void ConfigLoader::AddOption(std::unique_ptr<ConfigOptionBase> option) {
  // A program that declares a bad or duplicate name is a programming error, found by any test
  // or --help run of that program.
  KPISCALE_CHECK(!option->name().empty());
  KPISCALE_CHECK(Find(option->name()) == nullptr);
  KPISCALE_CHECK(option->name() != "config" && option->name() != "validate" &&
                 option->name() != "version" && option->name() != "help");
  for (char c : option->name())
    KPISCALE_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  options_.push_back(std::move(option));
}

void ConfigLoader::AddCheck(std::function<absl::Status()> check) {
  checks_.push_back(std::move(check));
}

ConfigOptionBase* ConfigLoader::Find(std::string_view name) const {
  for (const auto& o : options_) {
    if (o->name() == name) return o.get();
  }
  return nullptr;
}

ConfigSource ConfigLoader::SourceOf(std::string_view name) const {
  const ConfigOptionBase* o = Find(name);
  return o == nullptr ? ConfigSource::kDefault : o->source();
}

std::unique_ptr<CLI::App> ConfigLoader::BuildApp(FlagHolders& holders) const {
  auto app = std::make_unique<CLI::App>(description_, program_);
  app->add_option("--config", holders.config_file,
                  "YAML file of options (keys are the flag names without dashes)")
      ->type_name("FILE");
  app->add_flag("--validate", holders.validate, "check the configuration and exit");
  app->add_flag("--version", holders.version, "print the version and exit");
  for (const auto& o : options_) {
    std::string help = o->help();
    if (!o->secret() && !o->default_text().empty()) {
      absl::StrAppend(&help, " (default ", o->default_text(), ")");
    }
    if (!o->env().empty()) absl::StrAppend(&help, " [env ", o->env(), "]");
    if (o->required()) help += " [required]";
    const std::string flag = "--" + o->name();
    if (o->is_bool()) {
      app->add_flag(flag + "{true}", holders.scalars[o->name()], help);
    } else if (o->is_list()) {
      app->add_option(flag, holders.lists[o->name()], help)->delimiter(',')->type_name("LIST");
    } else {
      app->add_option(flag, holders.scalars[o->name()], help)
          ->take_last()
          ->type_name(absl::AsciiStrToUpper(AbslView(o->type_name())));
    }
  }
  return app;
}

std::string ConfigLoader::Help() const {
  FlagHolders holders;
  return BuildApp(holders)->help();
}

absl::Status ConfigLoader::LoadFile(const std::string& path, std::vector<std::string>& problems) {
  const std::string where = absl::StrCat("config file ", path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": cannot be read"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": line ", e.mark.line + 1, ": ", e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": must be a YAML map of option names to values"));
  }
  std::set<std::string> seen;
  try {
    for (const auto& entry : root) {
      const YAML::Node& key_node = entry.first;
      const YAML::Node& value = entry.second;
      const std::string at = absl::StrCat(where, ": line ", key_node.Mark().line + 1);
      if (!key_node.IsScalar()) {
        problems.push_back(absl::StrCat(at, ": keys must be option names"));
        continue;
      }
      const std::string key = key_node.Scalar();
      if (!seen.insert(key).second) {
        problems.push_back(absl::StrCat(at, ": key \"", key, "\" appears twice"));
        continue;
      }
      ConfigOptionBase* option = Find(key);
      if (option == nullptr) {
        std::string hint;
        std::string dashed = key;
        std::replace(dashed.begin(), dashed.end(), '_', '-');
        dashed = absl::AsciiStrToLower(absl::StripPrefix(dashed, "--"));
        for (const auto& o : options_) {
          if (o->name() == dashed || EditDistance(o->name(), key) <= 2) {
            hint = absl::StrCat(" (did you mean \"", o->name(), "\"?)");
            break;
          }
        }
        problems.push_back(absl::StrCat(at, ": unknown key \"", key, "\"", hint));
        continue;
      }
      absl::Status st;
      if (value.IsSequence()) {
        std::vector<std::string> items;
        for (const auto& item : value) {
          if (!item.IsScalar()) {
            st = absl::InvalidArgumentError("list items must be plain values");
            break;
          }
          items.push_back(item.Scalar());
        }
        if (st.ok()) st = option->SetList(items, ConfigSource::kFile);
      } else if (value.IsScalar()) {
        st = option->Set(value.Scalar(), ConfigSource::kFile);
      } else if (value.IsNull()) {
        st = absl::InvalidArgumentError("has no value");
      } else {
        st = absl::InvalidArgumentError("must be a single value or a list, not a map");
      }
      if (!st.ok()) problems.push_back(absl::StrCat(at, ": key \"", key, "\": ", st.message()));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ConfigOutcome> ConfigLoader::Parse(int argc, const char* const* argv,
                                                  const EnvLookup& env) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return Parse(args, env);
}

absl::StatusOr<ConfigOutcome> ConfigLoader::Parse(const std::vector<std::string>& args,
                                                  const EnvLookup& env) {
  for (const auto& o : options_) o->ResetToDefault();
  FlagHolders holders;
  std::unique_ptr<CLI::App> app = BuildApp(holders);
  ConfigOutcome outcome;
  try {
    // CLI11 wants the arguments in reverse order when given as a vector.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app->parse(reversed);
  } catch (const CLI::CallForHelp&) {
    outcome.action = ConfigOutcome::Action::kExit;
    outcome.output = app->help();
    return outcome;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(absl::StrCat("flags: ", e.what(), " (see --help)"));
  }
  if (holders.version) {
    outcome.action = ConfigOutcome::Action::kExit;
    outcome.output = absl::StrCat(program_, " ", version_, "\n");
    return outcome;
  }

  std::vector<std::string> problems;
  config_file_ = holders.config_file;
  if (!config_file_.empty()) {
    const absl::Status st = LoadFile(config_file_, problems);
    if (!st.ok()) problems.emplace_back(st.message());
  }
  const CLI::App& parsed = *app;
  for (const auto& o : options_) {
    const std::string flag = "--" + o->name();
    const bool from_flag = parsed.count(flag) > 0;
    if (!from_flag && !o->env().empty()) {
      const std::optional<std::string> value = env ? env(o->env()) : std::nullopt;
      if (value.has_value()) {
        const absl::Status st = o->Set(*value, ConfigSource::kEnv);
        if (!st.ok()) {
          problems.push_back(
              absl::StrCat("environment variable ", o->env(), " (for ", flag, "): ", st.message()));
        }
      }
    }
    if (from_flag) {
      absl::Status st;
      if (o->is_list()) {
        // Each flag occurrence was split at commas by CLI11; drop empty items as Parse does.
        std::vector<std::string> items;
        for (const std::string& item : holders.lists[o->name()]) {
          const absl::string_view stripped = absl::StripAsciiWhitespace(item);
          if (!stripped.empty()) items.emplace_back(stripped);
        }
        st = o->SetList(items, ConfigSource::kFlag);
      } else {
        st = o->Set(holders.scalars[o->name()], ConfigSource::kFlag);
      }
      if (!st.ok()) problems.push_back(absl::StrCat("flag ", flag, ": ", st.message()));
    }
  }
  for (const auto& o : options_) {
    if (o->required() && o->source() == ConfigSource::kDefault) {
      std::string how = absl::StrCat("--", o->name(), " is required (flag");
      if (!o->env().empty()) absl::StrAppend(&how, ", env ", o->env());
      absl::StrAppend(&how, " or config file key \"", o->name(), "\")");
      problems.push_back(how);
      continue;
    }
    const absl::Status st = o->Check();
    if (!st.ok()) {
      problems.push_back(absl::StrCat("--", o->name(), ": ", st.message(), " (from ",
                                      AbslView(ConfigSourceName(o->source())), ")"));
    }
  }
  if (problems.empty()) {
    for (const auto& check : checks_) {
      const absl::Status st = check();
      if (!st.ok()) problems.emplace_back(st.message());
    }
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid configuration: ", absl::StrJoin(problems, "; ")));
  }
  outcome.action =
      holders.validate ? ConfigOutcome::Action::kValidate : ConfigOutcome::Action::kRun;
  return outcome;
}

std::string ConfigLoader::EffectiveYaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& o : options_) {
    out << YAML::Key << o->name() << YAML::Value;
    const std::string value = o->ValueText();
    if (o->secret() && !value.empty()) {
      out << kRedacted;
    } else if (o->is_list()) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const std::string& item : o->ValueList()) out << item;
      out << YAML::EndSeq;
    } else {
      out << value;
    }
    out << YAML::Comment(std::string(ConfigSourceName(o->source())));
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string ConfigLoader::EffectiveLogfmt() const {
  std::vector<std::string> parts;
  for (const auto& o : options_) {
    const std::string value = o->ValueText();
    parts.push_back(absl::StrCat(o->name(), "=",
                                 o->secret() && !value.empty() ? kRedacted : LogfmtValue(value)));
  }
  return absl::StrJoin(parts, " ");
}

std::optional<int> ExitCodeForConfigOutcome(const absl::StatusOr<ConfigOutcome>& outcome,
                                            std::FILE* out, std::FILE* err) {
  if (out == nullptr) out = stdout;
  if (err == nullptr) err = stderr;
  if (!outcome.ok()) {
    std::fprintf(err, "%s\n", std::string(outcome.status().message()).c_str());
    return 2;
  }
  if (outcome->action == ConfigOutcome::Action::kExit) {
    std::fputs(outcome->output.c_str(), out);
    return 0;
  }
  return std::nullopt;
}

}  // namespace kpiscale::common
