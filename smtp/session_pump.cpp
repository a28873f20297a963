#include "smtp/session_pump.hpp"

namespace ipconfirm::smtp {

SessionPump::SessionPump(Session& session, std::size_t max_line, std::size_t max_text_line)
    : session_(session),
      lines_(max_line),
      decoder_(DataDecoder::Limits{session.message_limit(), max_text_line}) {}

Step SessionPump::next(std::string& in) {
  need_more_ = false;
  if (in_data_) {
    in.erase(0, decoder_.feed(in));
    if (decoder_.state() == DataDecoder::State::reading) {
      need_more_ = true;
      return {};
    }
    in_data_ = false;
    DataFault fault = DataFault::none;
    if (decoder_.state() == DataDecoder::State::bad_line_ending)
      fault = DataFault::bad_line_ending;
    else if (decoder_.over_size())
      fault = DataFault::too_big;
    else if (decoder_.line_too_long())
      fault = DataFault::line_too_long;
    Step step = session_.on_data_end(fault);
    if (step.action == Action::queue) message_ = decoder_.take_message();
    decoder_.reset();
    return step;
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
  if (step.action == Action::start_data) in_data_ = true;
  return step;
}

}  // namespace ipconfirm::smtp
