#include "kpiscale/common/label_selector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace kpiscale::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Op = LabelRequirement::Op;

LabelSelector MustParse(const std::string& text) {
  auto s = LabelSelector::Parse(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status();
  return s.ok() ? *s : LabelSelector();
}

std::string ParseError(const std::string& text) {
  auto s = LabelSelector::Parse(text);
  EXPECT_FALSE(s.ok()) << text << " parsed as " << (s.ok() ? s->ToString() : "");
  if (s.ok()) return "";
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.status().message());
}

TEST(LabelSelectorParseTest, EmptyAndBlankSelectEverything) {
  for (const char* text : {"", " ", "\t\r\n "}) {
    const LabelSelector s = MustParse(text);
    EXPECT_TRUE(s.empty());
    EXPECT_TRUE(s.Matches({}));
    EXPECT_TRUE(s.Matches({{"a", "b"}}));
    EXPECT_EQ(s.ToString(), "");
  }
  EXPECT_TRUE(LabelSelector::Everything().Matches({{"x", "y"}}));
  EXPECT_TRUE(LabelSelector().empty());
}

TEST(LabelSelectorParseTest, AllOperatorsAndCanonicalString) {
  const LabelSelector s = MustParse("x in (foo,,baz),y,z notin (),!w,a==b,c!=d,e=f,n>5,m<10");
  ASSERT_EQ(s.requirements().size(), 9u);
  EXPECT_EQ(s.ToString(), "a=b,c!=d,e=f,m<10,n>5,!w,x in (,baz,foo),y,z notin ()");
  EXPECT_EQ(s.requirements()[0].op, Op::kEquals);
  EXPECT_EQ(s.requirements()[1].op, Op::kNotEquals);
  EXPECT_EQ(s.requirements()[3].op, Op::kLessThan);
  EXPECT_EQ(s.requirements()[4].op, Op::kGreaterThan);
  EXPECT_EQ(s.requirements()[5].op, Op::kDoesNotExist);
  EXPECT_EQ(s.requirements()[6].op, Op::kIn);
  EXPECT_THAT(s.requirements()[6].values, ElementsAre("", "baz", "foo"));
  EXPECT_EQ(s.requirements()[7].op, Op::kExists);
  EXPECT_EQ(s.requirements()[8].op, Op::kNotIn);
  EXPECT_THAT(s.requirements()[8].values, ElementsAre(""));
  // The canonical form parses back to the same selector.
  EXPECT_EQ(MustParse(s.ToString()), s);
}

TEST(LabelSelectorParseTest, WhitespaceBetweenTokensIsIgnored) {
  const LabelSelector a = MustParse("  app = web ,  tier in ( a , b ) ,!  canary , env notin(x)");
  const LabelSelector b = MustParse("app=web,tier in (a,b),!canary,env notin (x)");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.ToString(), "app=web,!canary,env notin (x),tier in (a,b)");
  EXPECT_EQ(MustParse("a\tin\n(b)").ToString(), "a in (b)");
}

TEST(LabelSelectorParseTest, EmptyValues) {
  const LabelSelector s = MustParse("a=,b= ,c==,d!=");
  EXPECT_EQ(s.ToString(), "a=,b=,c=,d!=");
  EXPECT_TRUE(s.Matches({{"a", ""}, {"b", ""}, {"c", ""}}));
  EXPECT_FALSE(s.Matches({{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}}));
  EXPECT_FALSE(s.Matches({{"b", ""}, {"c", ""}}));  // a= needs the key present
  EXPECT_THAT(MustParse("a in (b,)").requirements()[0].values, ElementsAre("", "b"));
  EXPECT_THAT(MustParse("a in (,,)").requirements()[0].values, ElementsAre(""));
}

// Upstream's documented example `z notin ()` parses, with () meaning the value set {""}.
TEST(LabelSelectorParseTest, EmptyParenthesesMeanTheEmptyValue) {
  const LabelSelector in = MustParse("a in ()");
  EXPECT_EQ(in.ToString(), "a in ()");
  EXPECT_TRUE(in.Matches({{"a", ""}}));
  EXPECT_FALSE(in.Matches({{"a", "x"}}));
  EXPECT_FALSE(in.Matches({}));
  const LabelSelector notin = MustParse("a notin ()");
  EXPECT_TRUE(notin.Matches({}));
  EXPECT_TRUE(notin.Matches({{"a", "x"}}));
  EXPECT_FALSE(notin.Matches({{"a", ""}}));
  EXPECT_THAT(ParseError("a in"), HasSubstr("found end of string, expected: '('"));
  EXPECT_THAT(ParseError("a in (b"), HasSubstr("expected: ',' or ')' at position 7"));
  EXPECT_THAT(ParseError("a in (b c)"), HasSubstr("found 'c', expected: ',' or ')'"));
  EXPECT_THAT(ParseError("a in (="), HasSubstr("found '=', expected: ',', ')' or identifier"));
}

TEST(LabelSelectorParseTest, DuplicateKeysKeepEveryRequirement) {
  const LabelSelector s = MustParse("a=b,a!=c,a in (b,c)");
  ASSERT_EQ(s.requirements().size(), 3u);
  EXPECT_EQ(s.ToString(), "a=b,a!=c,a in (b,c)");  // stable order for equal keys
  EXPECT_TRUE(s.Matches({{"a", "b"}}));
  EXPECT_FALSE(s.Matches({{"a", "c"}}));
  const LabelSelector contradiction = MustParse("a=b,a=c");
  EXPECT_EQ(contradiction.requirements().size(), 2u);
  EXPECT_FALSE(contradiction.Matches({{"a", "b"}}));
  EXPECT_FALSE(contradiction.Matches({{"a", "c"}}));
  EXPECT_EQ(MustParse("a=b,a=b").requirements().size(), 2u);
  EXPECT_THAT(MustParse("a in (c,b,c)").requirements()[0].values, ElementsAre("b", "c"));
}

TEST(LabelSelectorMatchTest, SetAndExistenceSemantics) {
  const Labels web{{"app", "web"}, {"tier", "front"}};
  const Labels db{{"app", "db"}};
  const Labels none{};
  EXPECT_TRUE(MustParse("app=web").Matches(web));
  EXPECT_FALSE(MustParse("app=web").Matches(db));
  EXPECT_FALSE(MustParse("app=web").Matches(none));
  EXPECT_TRUE(MustParse("app!=web").Matches(none));  // absent key matches !=
  EXPECT_TRUE(MustParse("app notin (web)").Matches(db));
  EXPECT_TRUE(MustParse("app notin (web)").Matches(none));
  EXPECT_TRUE(MustParse("app in (db,web)").Matches(db));
  EXPECT_FALSE(MustParse("app in (db,web)").Matches(none));
  EXPECT_TRUE(MustParse("tier").Matches(web));
  EXPECT_FALSE(MustParse("tier").Matches(db));
  EXPECT_TRUE(MustParse("!tier").Matches(db));
  EXPECT_FALSE(MustParse("!tier").Matches(web));
  EXPECT_TRUE(MustParse("app=web,tier=front").Matches(web));
  EXPECT_FALSE(MustParse("app=web,tier=back").Matches(web));
  EXPECT_TRUE(MustParse("zoo in (mar,lar,dar),moo,thing == map,!thingy")
                  .Matches({{"zoo", "mar"}, {"moo", "lar"}, {"thing", "map"}}));
}

TEST(LabelSelectorMatchTest, GreaterAndLessCompareIntegers) {
  EXPECT_TRUE(MustParse("n>5").Matches({{"n", "6"}}));
  EXPECT_FALSE(MustParse("n>5").Matches({{"n", "5"}}));
  EXPECT_FALSE(MustParse("n>5").Matches({{"n", "x"}}));
  EXPECT_FALSE(MustParse("n>5").Matches({}));
  EXPECT_TRUE(MustParse("n<5").Matches({{"n", "-7"}}));
  EXPECT_FALSE(MustParse("n<5").Matches({{"n", "99999999999999999999"}}));
  EXPECT_THAT(ParseError("n>x"), HasSubstr("the value must be an integer at position 2"));
  EXPECT_THAT(ParseError("n>"), HasSubstr("the value must be an integer"));
  EXPECT_THAT(ParseError("n<-1"), HasSubstr("invalid label value \"-1\""));
}

TEST(LabelSelectorParseTest, KeywordsAreKeysAndValuesOutsideOperatorPosition) {
  EXPECT_EQ(MustParse("in in (in,notin)").ToString(), "in in (in,notin)");
  EXPECT_EQ(MustParse("notin=in").ToString(), "notin=in");
  EXPECT_TRUE(MustParse("in").Matches({{"in", ""}}));
}

TEST(LabelSelectorParseTest, SyntaxErrorsNameThePosition) {
  EXPECT_THAT(ParseError("a=b,"), HasSubstr("found end of string, expected: identifier after ',' "
                                            "at position 4"));
  EXPECT_THAT(ParseError(",a"), HasSubstr("found ',', expected: !, identifier, or 'end of string' "
                                          "at position 0"));
  EXPECT_THAT(ParseError("a=b c=d"), HasSubstr("found 'c', expected: ',' or 'end of string' at "
                                               "position 4"));
  EXPECT_THAT(ParseError("x=a||y=b"), HasSubstr("invalid label value \"a||y\""));
  EXPECT_THAT(ParseError("x==a==b"), HasSubstr("found '==', expected: ',' or 'end of string'"));
  EXPECT_THAT(ParseError("!x=a"), HasSubstr("found '=', expected: ',' or 'end of string' at "
                                            "position 2"));
  EXPECT_THAT(ParseError("a b"), HasSubstr("unable to parse requirement: found 'b', expected: in, "
                                           "notin, =, ==, !=, >, < at position 2"));
  EXPECT_THAT(ParseError("a=(b)"), HasSubstr("found '(', expected: identifier at position 2"));
  EXPECT_THAT(ParseError("!"),
              HasSubstr("found end of string, expected: identifier at position 1"));
  EXPECT_THAT(ParseError("a,,b"), HasSubstr("at position 2"));
  EXPECT_THAT(ParseError("a=b,c=d,"), HasSubstr("at position 8"));
  EXPECT_THAT(ParseError("a=b\x01"), HasSubstr("\\x01"));
}

TEST(LabelSelectorValidationTest, Keys) {
  EXPECT_EQ(MustParse("example.com/MyName=x").ToString(), "example.com/MyName=x");
  EXPECT_EQ(MustParse("a.b-c_d.E9").ToString(), "a.b-c_d.E9");
  EXPECT_EQ(MustParse(std::string(63, 'k')).requirements()[0].key, std::string(63, 'k'));
  EXPECT_THAT(ParseError(std::string(64, 'k')), HasSubstr("name part must be no more than 63"));
  EXPECT_THAT(ParseError("_zoo=bar"), HasSubstr("invalid label key \"_zoo\""));
  EXPECT_THAT(ParseError("_zoo=bar"), HasSubstr("at position 0"));
  EXPECT_THAT(ParseError("zoo-=bar"), HasSubstr("must start and end with an alphanumeric"));
  EXPECT_THAT(ParseError("/zoo"), HasSubstr("prefix part must be non-empty"));
  EXPECT_THAT(ParseError("Example.com/zoo"), HasSubstr("prefix part must be a lowercase RFC 1123"));
  EXPECT_THAT(ParseError("a..b/zoo"), HasSubstr("RFC 1123"));
  EXPECT_THAT(ParseError("a/b/c"), HasSubstr("at most one '/'"));
  EXPECT_THAT(ParseError("ex.com/"), HasSubstr("name part must be non-empty"));
  EXPECT_THAT(ParseError("x,a:b=c"), HasSubstr("invalid label key \"a:b\""));
  EXPECT_THAT(ParseError("x,a:b=c"), HasSubstr("at position 2"));
  // A 253-character prefix is allowed, 254 is not.
  std::string prefix;
  while (prefix.size() < 253) prefix += prefix.empty() ? "a" : ".a";
  ASSERT_EQ(prefix.size(), 253u);
  EXPECT_EQ(MustParse(prefix + "/n").requirements()[0].key, prefix + "/n");
  EXPECT_THAT(ParseError("b" + prefix + "/n"), HasSubstr("no more than 253"));
}

TEST(LabelSelectorValidationTest, Values) {
  EXPECT_EQ(MustParse("a=" + std::string(63, 'v')).requirements()[0].values[0],
            std::string(63, 'v'));
  EXPECT_THAT(ParseError("a=" + std::string(64, 'v')), HasSubstr("no more than 63"));
  EXPECT_THAT(ParseError("zoo=bar,foo=_mar"), HasSubstr("invalid label value \"_mar\""));
  EXPECT_THAT(ParseError("zoo=bar,foo=_mar"), HasSubstr("at position 12"));
  EXPECT_THAT(ParseError("a in (b,-c)"), HasSubstr("invalid label value \"-c\""));
  EXPECT_THAT(ParseError("a in (b,-c)"), HasSubstr("at position 8"));
  EXPECT_THAT(ParseError("a=b/c"), HasSubstr("invalid label value"));
  EXPECT_THAT(ParseError("a=\xed\x95\xa8"), HasSubstr("invalid label value"));
}

// URL-decoded forms of what real clients send (the adapter decodes before parsing).
TEST(LabelSelectorParseTest, DecodedUrlForms) {
  // labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29
  EXPECT_EQ(MustParse("app=web,tier in (a,b)").ToString(), "app=web,tier in (a,b)");
  // labelSelector=app.kubernetes.io%2Fname%3Dshop (prefixed key)
  EXPECT_TRUE(
      MustParse("app.kubernetes.io/name=shop").Matches({{"app.kubernetes.io/name", "shop"}}));
  // A '%' left over from a double-encoded selector is rejected, not matched literally.
  EXPECT_THAT(ParseError("app%3Dweb"), HasSubstr("invalid label key"));
}

TEST(LabelSelectorObjectTest, MatchLabelsAndExpressionsFromJson) {
  const auto json = nlohmann::json::parse(R"({
    "matchLabels": {"app": "web", "tier": ""},
    "matchExpressions": [
      {"key": "env", "operator": "In", "values": ["prod", "canary"]},
      {"key": "track", "operator": "NotIn", "values": ["beta"]},
      {"key": "owner", "operator": "Exists"},
      {"key": "legacy", "operator": "DoesNotExist", "values": []}
    ]})");
  const auto s = LabelSelector::FromJson(json);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ToString(), "app=web,env in (canary,prod),!legacy,owner,tier=,track notin (beta)");
  EXPECT_TRUE(s->Matches({{"app", "web"}, {"tier", ""}, {"env", "prod"}, {"owner", "me"}}));
  EXPECT_FALSE(s->Matches({{"app", "web"}, {"tier", ""}, {"env", "prod"}}));
  EXPECT_EQ(*LabelSelector::Parse(s->ToString()), *s);
}

TEST(LabelSelectorObjectTest, NullAndEmptySelectEverything) {
  EXPECT_TRUE(LabelSelector::FromJson(nullptr)->empty());
  EXPECT_TRUE(LabelSelector::FromJson(nlohmann::json::object())->empty());
  EXPECT_TRUE(LabelSelector::FromJson(
                  nlohmann::json::parse(R"({"matchLabels":null,"matchExpressions":null})"))
                  ->empty());
  EXPECT_TRUE(LabelSelector::FromYaml(YAML::Load("~"))->empty());
  EXPECT_TRUE(LabelSelector::FromYaml(YAML::Node())->empty());
}

TEST(LabelSelectorObjectTest, ObjectErrorsNameTheField) {
  const auto error = [](const char* text) {
    const auto s = LabelSelector::FromJson(nlohmann::json::parse(text));
    EXPECT_FALSE(s.ok()) << text;
    return s.ok() ? std::string() : std::string(s.status().message());
  };
  EXPECT_THAT(
      error(R"({"matchExpressions":[{"key":"a","operator":"Exists"},
                      {"key":"b","operator":"Gt","values":["1"]}]})"),
      HasSubstr("matchExpressions[1].operator: \"Gt\" is not a valid label selector operator"));
  EXPECT_THAT(
      error(R"({"matchExpressions":[{"key":"a","operator":"In","values":[]}]})"),
      HasSubstr("matchExpressions[0]: for 'in', 'notin' operators, values set can't be empty"));
  EXPECT_THAT(error(R"({"matchExpressions":[{"key":"a","operator":"NotIn"}]})"),
              HasSubstr("values set can't be empty"));
  EXPECT_THAT(error(R"({"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]})"),
              HasSubstr("values set must be empty for exists and does not exist"));
  EXPECT_THAT(error(R"({"matchExpressions":[{"key":"a","operator":"In","values":["ok","-x"]}]})"),
              HasSubstr("matchExpressions[0].values[1]: invalid label value \"-x\""));
  EXPECT_THAT(error(R"({"matchExpressions":[{"operator":"Exists"}]})"),
              HasSubstr("matchExpressions[0].key: is required"));
  EXPECT_THAT(error(R"({"matchExpressions":[{"key":"a"}]})"),
              HasSubstr("matchExpressions[0].operator: is required"));
  EXPECT_THAT(error(R"({"matchExpressions":[{"key":"a","operator":"Exists","extra":1}]})"),
              HasSubstr("matchExpressions[0].extra: unknown field"));
  EXPECT_THAT(error(R"({"matchLabels":{"_a":"b"}})"), HasSubstr("invalid label key \"_a\""));
  EXPECT_THAT(error(R"({"matchLabels":{"a":1}})"),
              HasSubstr("matchLabels[\"a\"]: must be a string"));
  EXPECT_THAT(error(R"({"matchLabel":{"a":"b"}})"), HasSubstr("matchLabel: unknown field"));
  EXPECT_THAT(error(R"([1])"), HasSubstr("must be an object"));
  EXPECT_THAT(error(R"({"matchExpressions":{}})"), HasSubstr("matchExpressions: must be a list"));
}

TEST(LabelSelectorObjectTest, FromYamlAsInAnHpaManifest) {
  const YAML::Node node = YAML::Load(R"(
matchLabels:
  app: shop
  version: 1
matchExpressions:
  - {key: env, operator: In, values: [prod]}
  - key: canary
    operator: DoesNotExist
)");
  const auto s = LabelSelector::FromYaml(node);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ToString(), "app=shop,!canary,env in (prod),version=1");
  const auto bad =
      LabelSelector::FromYaml(YAML::Load("matchExpressions: [{key: a, operator: Lt}]"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"Lt\" is not a valid"));
}

TEST(LabelRequirementTest, ToStringAndMatchesPerRequirement) {
  const LabelRequirement r{"a", Op::kIn, {"x", "y"}};
  EXPECT_EQ(r.ToString(), "a in (x,y)");
  EXPECT_TRUE(r.Matches({{"a", "y"}}));
  EXPECT_EQ((LabelRequirement{"a", Op::kDoesNotExist, {}}).ToString(), "!a");
  EXPECT_EQ((LabelRequirement{"a", Op::kNotEquals, {"v"}}).ToString(), "a!=v");
}

}  // namespace
}  // namespace kpiscale::common
