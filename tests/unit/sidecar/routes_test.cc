#include "kpiscale/sidecar/routes.h"

#include <string>

#include "gtest/gtest.h"

namespace kpiscale::sidecar {
namespace {

TEST(RouteTableTest, MatchesTemplates) {
  auto table = RouteTable::Parse(
      "# comment\n/orders/{id}\nPOST /orders\n/static/*\n\n/health   # trailing comment\n");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->size(), 5u);
  EXPECT_EQ(table->names().back(), "other");
  EXPECT_EQ(table->Match("GET", "/orders/42"), 0u);
  EXPECT_EQ(table->Match("GET", "/orders/42?x=1"), 0u);
  EXPECT_EQ(table->Match("POST", "/orders"), 1u);
  EXPECT_EQ(table->Match("GET", "/orders"), 4u);  // method does not match: other
  EXPECT_EQ(table->Match("GET", "/static/a/b.css"), 2u);
  EXPECT_EQ(table->Match("GET", "/health"), 3u);
  EXPECT_EQ(table->Match("GET", "/wp-admin.php"), 4u);
  EXPECT_EQ(table->Match("GET", "/orders/42/items"), 4u);
}

TEST(RouteTableTest, RejectsBadTemplatesAndTooMany) {
  EXPECT_FALSE(RouteTable::Parse("orders\n").ok());
  EXPECT_FALSE(RouteTable::Parse("/a/*/b\n").ok());
  std::string many;
  for (std::size_t i = 0; i <= RouteTable::kMaxRoutes; ++i) many += "/r" + std::to_string(i) + "\n";
  EXPECT_FALSE(RouteTable::Parse(many).ok());
  EXPECT_FALSE(RouteTable::Load("/nonexistent/routes").ok());
}

TEST(RouteTableTest, DefaultIsOnlyOther) {
  RouteTable t;
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.Match("GET", "/x"), 0u);
}

}  // namespace
}  // namespace kpiscale::sidecar
