#include "smtp/session_pump.hpp"

namespace ipconfirm::smtp {

SessionPump::SessionPump(Session& session, Limits limits, MessageSink* sink, MessageMemory* memory)
    : session_(session),
      lines_(limits.max_line),
      decoder_(DataDecoder::Limits{session.message_limit(), limits.max_text_line}),
      splitter_(limits.max_header),
      sink_(sink),
      memory_(memory) {}

void SessionPump::on_data(std::string_view piece) {
  if (over_budget_) return;
  const std::size_t header_before = splitter_.header().size();
  const std::string_view body = splitter_.feed(piece);
  std::size_t kept = splitter_.header().size() - header_before;
  if (keep_whole_) kept += piece.size();
  if (kept > 0) {
    held_ += kept;
    if (memory_ && !memory_->take(kept)) {
      // Nothing more is kept or passed on; the message is read to its end and refused.
      over_budget_ = true;
      drop_message_data();
      return;
    }
  }
  if (keep_whole_) whole_.append(piece);
  if (!header_told_ && splitter_.header_done()) {
    header_told_ = true;
    if (sink_) sink_->on_header(splitter_.header(), splitter_.header_cut());
  }
  if (!body.empty() && sink_) sink_->on_body(body);
}

void SessionPump::drop_message_data() {
  if (memory_ && held_) memory_->give_back(held_);
  held_ = 0;
  splitter_.reset();
  std::string().swap(whole_);
}

Step SessionPump::end_of_data() {
  in_data_ = false;
  DataFault fault = DataFault::none;
  if (decoder_.state() == DataDecoder::State::bad_line_ending)
    fault = DataFault::bad_line_ending;
  else if (decoder_.over_size())
    fault = DataFault::too_big;
  else if (over_budget_)
    fault = DataFault::no_memory;
  else if (decoder_.line_too_long())
    fault = DataFault::line_too_long;
  if (fault == DataFault::none && !header_told_) {
    header_told_ = true;  // a message without an empty line: all of it was header
    if (sink_) sink_->on_header(splitter_.header(), splitter_.header_cut());
  }
  Step step = session_.on_data_end(fault);
  if (step.action == Action::queue) {
    message_.header_cut = splitter_.header_cut();
    message_.header = splitter_.take_header();
    message_.whole = std::move(whole_);
    message_.size = decoder_.size();
    message_.hold = MemoryHold(memory_, held_);
    held_ = 0;
  }
  drop_message_data();
  decoder_.reset();
  keep_whole_ = false;
  over_budget_ = false;
  header_told_ = false;
  return step;
}

Step SessionPump::next(std::string& in) {
  need_more_ = false;
  if (in_data_) {
    in.erase(0, decoder_.feed(in, *this));
    if (decoder_.state() == DataDecoder::State::reading) {
      need_more_ = true;
      return {};
    }
    return end_of_data();
  }

  Step step;
  auto o = lines_.next(in);
  switch (o.result) {
    case LineReader::Result::need_more:
      in.erase(0, o.consumed);
      need_more_ = true;
      return {};
    case LineReader::Result::line:
      step = session_.on_line(o.line);  // before the erase: o.line views into `in`
      break;
    case LineReader::Result::too_long:
      step = session_.on_line_fault(LineFault::too_long);
      break;
    case LineReader::Result::unterminated:
      step = session_.on_line_fault(LineFault::unterminated);
      break;
    case LineReader::Result::bare_lf:
      step = session_.on_line_fault(LineFault::bare_lf);
      break;
    case LineReader::Result::bare_cr:
      step = session_.on_line_fault(LineFault::bare_cr);
      break;
    case LineReader::Result::nul:
      step = session_.on_line_fault(LineFault::nul);
      break;
  }
  in.erase(0, o.consumed);
  if ((step.action == Action::start_data || step.action == Action::start_tls) && !in.empty())
    step = {reply(554, "5.5.0", "improper use of SMTP command pipelining"), Action::close};
  if (step.action == Action::start_data) {
    // The budget is spent: refuse now rather than read a message that would be refused.
    const DataStart start = memory_ && memory_->full() ? DataStart{false, no_memory_reply()}
                            : sink_                    ? sink_->on_data_start(session_)
                                                       : DataStart{};
    if (start.refuse) {
      step = session_.refuse(*start.refuse);
    } else {
      in_data_ = true;
      keep_whole_ = start.keep_whole;
    }
  }
  return step;
}

}  // namespace ipconfirm::smtp
