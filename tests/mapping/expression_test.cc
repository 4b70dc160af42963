#include "mapping/expression.h"

#include <gtest/gtest.h>

namespace tandem {

TEST(ExpressionTest, EvaluatesSqliteExpressionsOverTheSourceRow) {
  auto db = OpenExpressionDatabase();
  ASSERT_TRUE(db.ok());
  auto set = ExpressionSet::Compile(**db, {"CNAME", "BAL_CENTS"},
                                    {"trim(substr(CNAME, instr(CNAME, ',') + 1))",
                                     "trim(substr(CNAME, 1, instr(CNAME, ',') - 1))", "BAL_CENTS / 100.0"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  Row out;
  ASSERT_TRUE((*set)->Evaluate({Value::Text("LOVELACE, ADA"), Value::Integer(123456)}, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].as_bytes(), "ADA");
  EXPECT_EQ(out[1].as_bytes(), "LOVELACE");
  EXPECT_DOUBLE_EQ(out[2].as_real(), 1234.56);
}

TEST(ExpressionTest, UnknownColumnIsReportedAtCompileTime) {
  auto db = OpenExpressionDatabase();
  Status st = ExpressionSet::CompileOne(**db, {"CNAME"}, "upper(CNAM)");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("CNAM"), std::string::npos);
}

TEST(ExpressionTest, ReferencedColumnsIgnoresStringLiterals) {
  std::vector<std::string> cols = {"first_name", "last_name", "email"};
  auto refs = ReferencedColumns("last_name || ', first_name' || \"first_name\"", cols);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0], 1);
  EXPECT_EQ(refs[1], 0);
}

}  // namespace tandem
