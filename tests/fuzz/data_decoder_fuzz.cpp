// Fuzzes the DATA decoder: two bytes choose the limits, the rest is fed once whole and once in
// chunks of 1 to 23 bytes whose sizes come from the input; both must agree and stay bounded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/data_decoder.hpp"

using ipconfirm::smtp::DataDecoder;

namespace {
struct Collect : DataDecoder::Sink {
  std::string message;
  void on_data(std::string_view piece) override {
    if (piece.empty()) std::abort();
    message.append(piece);
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const DataDecoder::Limits limits{std::size_t{data[0]} * 4, 16 + std::size_t{data[1]} % 64};
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  DataDecoder whole(limits), chunked(limits);
  Collect whole_out, chunked_out;
  const std::size_t consumed = whole.feed(in, whole_out);
  std::size_t pos = 0;
  for (std::size_t step = 1; pos < in.size() && chunked.state() == DataDecoder::State::reading;) {
    step = (step * 7 + static_cast<unsigned char>(in[pos])) % 23 + 1;
    pos += chunked.feed(in.substr(pos, step), chunked_out);
  }
  if (pos != consumed || whole.state() != chunked.state() ||
      whole.over_size() != chunked.over_size() ||
      whole.line_too_long() != chunked.line_too_long() || whole.size() > limits.max_message ||
      whole_out.message.size() != whole.size() || whole_out.message != chunked_out.message) {
    std::abort();
  }
  return 0;
}
