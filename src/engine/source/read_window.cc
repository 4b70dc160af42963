#include "engine/source/read_window.h"

namespace tandem {

namespace {
// A pinned snapshot further than this many batches ahead is not used: the
// target transaction would hold the write lock too long.
constexpr int64_t kMaxPinnedSpanBatches = 4;
}  // namespace

ReadWindow::~ReadWindow() {
  dir_.src = own_;
  if (pinned_) pinned_->db->EndRead();
}

Result<bool> ReadWindow::Open(int64_t batch_size) {
  if (pinned_) {
    upto_ = pinned_->seq;  // still inside its read transaction (a careful re-run)
    return true;
  }
  TANDEM_RETURN_IF_ERROR(own_->BeginReadAfter(dir_.position));
  auto upto_r = own_->MaxChangeSeq();
  if (!upto_r.ok()) {
    own_->EndRead();
    return upto_r.status();
  }
  upto_ = *upto_r;
  // Before anything is applied: the change at the position is still the
  // one applied (a source restored in place while running shows here).
  if (upto_ != dir_.position && !dir_.source_mark.empty()) {
    auto now_mark = own_->HistoryMark(dir_.position);
    if (!now_mark.ok() || *now_mark != dir_.source_mark) {
      own_->EndRead();
      if (!now_mark.ok()) return now_mark.status();
      return false;
    }
  }
  // More than a batch behind: apply up to a pinned snapshot's boundary, read
  // in that snapshot (see commit_boundaries.h).
  if (upto_ - dir_.position > batch_size) {
    pinned_ = boundaries_.TakeSnapshot(dir_.position, upto_, batch_size, kMaxPinnedSpanBatches * batch_size);
    if (pinned_) {
      own_->EndRead();
      dir_.src = pinned_->db.get();
      upto_ = pinned_->seq;
    }
  }
  return true;
}

void ReadWindow::End() {
  if (!pinned_) dir_.src->EndRead();
}

}  // namespace tandem
