// The fold of change-log rows into work items (engine/source/work_items.h),
// case by case: one item per record, key-change chains collapsed, a key
// reused by a new record, a record whose key another one moved onto.
#include "engine/source/work_items.h"

#include <gtest/gtest.h>

#include <unordered_map>
#include <vector>

namespace tandem {
namespace {

constexpr int kTableId = 7;

class WorkItemsTest : public ::testing::Test {
 protected:
  WorkItemsTest() {
    spec_.table = "CUSTMAST";
    spec_.key_columns = {"CUSTNO"};
    spec_.entities = {0};
    tables_[kTableId] = &spec_;
  }

  // A log row of the captured table; keys are padded as the log holds them
  // (kMaxKeyColumns values, the unused ones NULL).
  CapturedChange Change(int64_t seq, ChangeOp op, int64_t key, int64_t old_key = 0) {
    CapturedChange c;
    c.seq = seq;
    c.table_id = kTableId;
    c.op = op;
    c.key = Padded(key);
    if (op == ChangeOp::kKeyChange) c.old_key = Padded(old_key);
    c.captured_at_ms = 1000 + seq;
    return c;
  }

  std::vector<WorkItem> Fold(const std::vector<CapturedChange>& changes) {
    std::vector<WorkItem> items;
    BuildWorkItems(tables_, changes, &items);
    return items;
  }

 private:
  static Row Padded(int64_t key) {
    Row r{Value::Integer(key)};
    while (r.size() < static_cast<size_t>(kMaxKeyColumns)) r.push_back(Value::Null());
    return r;
  }
  CapturedTableSpec spec_;
  std::unordered_map<int, const CapturedTableSpec*> tables_;
};

Row Key(int64_t k) { return Row{Value::Integer(k)}; }

TEST_F(WorkItemsTest, ManyChangesOfOneRecordAreOneItemCarryingTheLastSeq) {
  auto items = Fold({Change(1, ChangeOp::kInsert, 1), Change(2, ChangeOp::kUpdate, 1), Change(3, ChangeOp::kUpdate, 1)});
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].key, Key(1));
  EXPECT_TRUE(items[0].old_key.empty());
  EXPECT_EQ(items[0].seq, 3);
  EXPECT_EQ(items[0].captured_at_ms, 1003);
  EXPECT_FALSE(items[0].deleted);
  EXPECT_FALSE(items[0].superseded);
}

TEST_F(WorkItemsTest, AKeyChangeChainCollapsesToOneMove) {
  auto items = Fold({Change(1, ChangeOp::kKeyChange, 5, 1), Change(2, ChangeOp::kKeyChange, 6, 5),
                     Change(3, ChangeOp::kUpdate, 6)});
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].key, Key(6));
  EXPECT_EQ(items[0].old_key, Key(1));
  EXPECT_EQ(items[0].seq, 3);
}

TEST_F(WorkItemsTest, AKeyMovedBackWhereItStartedIsNoMove) {
  auto items = Fold({Change(1, ChangeOp::kKeyChange, 100, 1), Change(2, ChangeOp::kKeyChange, 1, 100)});
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].key, Key(1));
  EXPECT_TRUE(items[0].old_key.empty());
}

TEST_F(WorkItemsTest, AnInsertAfterADeleteOfTheSameKeyIsANewRecord) {
  auto items = Fold({Change(1, ChangeOp::kDelete, 3), Change(2, ChangeOp::kInsert, 3), Change(3, ChangeOp::kUpdate, 3)});
  ASSERT_EQ(items.size(), 2u);
  EXPECT_TRUE(items[0].deleted);
  EXPECT_TRUE(items[0].superseded);
  EXPECT_FALSE(items[0].is_new);
  EXPECT_EQ(items[1].key, Key(3));
  EXPECT_TRUE(items[1].is_new);
  EXPECT_FALSE(items[1].superseded);
  EXPECT_EQ(items[1].seq, 3);  // the update joins the new record
}

TEST_F(WorkItemsTest, ARecordWhoseKeyAnotherMovedOntoIsGone) {
  auto items = Fold({Change(1, ChangeOp::kUpdate, 2), Change(2, ChangeOp::kKeyChange, 2, 1)});
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].key, Key(2));
  EXPECT_TRUE(items[0].superseded);
  EXPECT_EQ(items[1].key, Key(2));
  EXPECT_EQ(items[1].old_key, Key(1));
  EXPECT_FALSE(items[1].superseded);
}

TEST_F(WorkItemsTest, ChangesOfTablesNoLongerMappedAreSkipped) {
  CapturedChange other = Change(1, ChangeOp::kInsert, 1);
  other.table_id = kTableId + 1;
  auto items = Fold({other, Change(2, ChangeOp::kInsert, 2)});
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].key, Key(2));
}

TEST_F(WorkItemsTest, ReplacedRecordsGoFirstThenParentsBeforeChildrenAndChildrenBeforeParentsForDeletes) {
  auto item = [](int64_t seq, int entity, bool exists, bool superseded) {
    WorkItem w;
    w.seq = seq;
    w.entity = entity;  // entity 0 is the parent of entity 1
    w.source_exists = exists;
    w.superseded = superseded;
    return w;
  };
  std::vector<WorkItem> items = {item(0, 1, true, false),    // a child written
                                 item(1, 0, false, false),   // a parent deleted
                                 item(2, 1, false, false),   // a child deleted
                                 item(3, 0, true, false),    // a parent written
                                 item(4, 1, false, true)};   // a record whose key a new one took
  OrderForApply(&items);
  std::vector<int64_t> order;
  for (const WorkItem& w : items) order.push_back(w.seq);
  EXPECT_EQ(order, (std::vector<int64_t>{4, 3, 0, 2, 1}));
}

}  // namespace
}  // namespace tandem
