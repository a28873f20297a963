#include "smtp/data_decoder.hpp"

#include <cstring>

namespace ipconfirm::smtp {

DataDecoder::DataDecoder(Limits limits) : limits_(limits) {}

void DataDecoder::keep(const char* data, std::size_t n) {
  if (over_size_) return;
  const std::size_t room = limits_.max_message - size_;
  if (n > room) {
    n = room;
    over_size_ = true;
  }
  size_ += n;
  if (n == 0) return;
  if (piece_ != nullptr && piece_ + piece_size_ == data) {
    piece_size_ += n;
    return;
  }
  flush();  // a dropped dot (or a CRLF split between two calls) ends the run
  piece_ = data;
  piece_size_ = n;
}

void DataDecoder::flush() {
  if (piece_size_ > 0) out_->on_data({piece_, piece_size_});
  piece_ = nullptr;
  piece_size_ = 0;
}

std::size_t DataDecoder::feed(std::string_view in, Sink& out) {
  // Every run of kept bytes that is contiguous in `in` becomes one piece; a gap (a dropped
  // dot) passes on the piece before it, and so does the end of the call. (Not from a
  // destructor: the sink may throw, and the exception must reach the caller.)
  out_ = &out;
  piece_ = nullptr;
  piece_size_ = 0;
  const std::size_t used = decode(in);
  flush();
  out_ = nullptr;
  return used;
}

std::size_t DataDecoder::decode(std::string_view in) {
  std::size_t pos = 0;
  const std::size_t n = in.size();
  while (pos < n && state_ == State::reading) {
    switch (phase_) {
      case Phase::line_start:
        line_length_ = 0;
        if (in[pos] == '.') {
          ++pos;
          phase_ = Phase::dot;
        } else {
          phase_ = Phase::text;
        }
        break;
      case Phase::dot:
        // ".\r" may end the data; any other byte continues a stuffed line whose dot is dropped
        // (a LF is then caught as bare by Phase::text).
        if (in[pos] == '\r') {
          ++pos;
          phase_ = Phase::dot_cr;
        } else {
          phase_ = Phase::text;
        }
        break;
      case Phase::dot_cr:
        if (in[pos] != '\n') {
          state_ = State::bad_line_ending;
          return pos;
        }
        state_ = State::done;
        return pos + 1;
      case Phase::text: {
        const char* start = in.data() + pos;
        const std::size_t rest = n - pos;
        const auto* cr = static_cast<const char*>(std::memchr(start, '\r', rest));
        std::size_t length = cr ? static_cast<std::size_t>(cr - start) : rest;
        const auto* lf = static_cast<const char*>(std::memchr(start, '\n', length));
        // Up to a bare LF the bytes are kept like any others, so that what is kept does not
        // depend on how the input was split; the message is to be discarded anyway.
        if (lf) length = static_cast<std::size_t>(lf - start);
        keep(start, length);
        line_length_ += length;
        if (line_length_ + 2 > limits_.max_line) line_too_long_ = true;
        pos += length;
        if (lf) {
          state_ = State::bad_line_ending;
          return pos;
        }
        if (cr) {
          ++pos;
          phase_ = Phase::cr;
        }
        break;
      }
      case Phase::cr:
        if (in[pos] != '\n') {
          state_ = State::bad_line_ending;
          return pos;
        }
        if (pos > 0) {
          keep(in.data() + pos - 1, 2);  // the CR just before, in this same input
        } else {
          static const char kCrLf[] = "\r\n";  // the CR came with the previous call
          keep(kCrLf, 2);
          flush();
        }
        ++pos;
        phase_ = Phase::line_start;
        break;
    }
  }
  return pos;
}

void DataDecoder::reset() {
  state_ = State::reading;
  phase_ = Phase::line_start;
  line_length_ = 0;
  over_size_ = false;
  line_too_long_ = false;
  size_ = 0;
  piece_ = nullptr;
  piece_size_ = 0;
}

}  // namespace ipconfirm::smtp
