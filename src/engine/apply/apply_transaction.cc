#include "engine/apply/apply_transaction.h"

#include <fmt/format.h>

namespace tandem {

Status ApplyTransaction::Begin(const std::vector<std::string>& tables) {
  TANDEM_RETURN_IF_ERROR(dst_.BeginApply());
  // The write lock is held from here: sync.max_txn_ms counts from now.
  started_ = std::chrono::steady_clock::now();
  // The stored position is read in the pipeline: it arrives with the first
  // chunk's prefetch, and is checked before anything is written.
  if (dst_.Traits().fences_apply) {
    Status st = dst_.FenceApply(dir_.name);
    if (st.ok())
      st = dst_.QueryLater("SELECT seq FROM _tandem_position WHERE direction = ?", {Value::Text(dir_.name)},
                           &fenced_position_);
    if (!st.ok()) {
      dst_.RollbackApply();
      return st;
    }
  }
  Status st = dst_.SchemaVersionLater(tables, dir_.written_tables, &target_schema_);
  if (!st.ok()) {
    dst_.RollbackApply();
    return st;
  }
  return Status::Ok();
}

Status ApplyTransaction::CheckBeforeWriting(const std::string& signature) {
  if (checked_) return Status::Ok();
  TANDEM_RETURN_IF_ERROR(dst_.Collect());
  checked_ = true;
  if (target_schema_.empty() || target_schema_[0][0].ToCodeText() != signature) {
    schema_changed_ = true;
    return Status::Unavailable(fmt::format("{}: a mapped table's definition changed on the {} database; the "
                                           "mapping is checked again before anything is written",
                                           dir_.name, SideName(dir_.target)));
  }
  if (!dst_.Traits().fences_apply) return Status::Ok();
  if ((fenced_position_.empty() ? 0 : fenced_position_[0][0].as_integer()) == dir_.position) return Status::Ok();
  dir_.position_uncertain = true;
  return Status::Unavailable(fmt::format("{}: the position moved (a previous process's last batch committed "
                                         "after it stopped); reloading it",
                                         dir_.name));
}

}  // namespace tandem
