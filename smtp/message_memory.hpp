// The budget for message data that all sessions of a server hold together ([smtp]
// max_message_memory), and what one message holds of it.
//
// A session in DATA keeps a message's header, and the whole message only for mail that must be
// kept whole (postmaster@); every byte it keeps is counted here as it is kept, and given back
// when the message is answered (250, 451, 552, ...) or dropped. Past the limit the session stops
// keeping and the message is refused with 451 4.3.2 (smtp/session_pump.hpp), so that many slow
// senders cannot make the server hold gigabytes. Transient read buffers (at most 64 KiB per
// connection and wake-up) are not counted.
//
// Thread-safe (the count is atomic): a message's hold may end on another thread than the one
// that took it. Pure: no I/O.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

namespace ipconfirm::smtp {

class MessageMemory {
 public:
  explicit MessageMemory(std::size_t limit) : limit_(limit) {}  // 0: no limit

  // Counts `n` more bytes held. False when that goes over the limit: they are counted all the
  // same, and the caller is to stop keeping and give back what it holds.
  bool take(std::size_t n) {
    const std::size_t limit = limit_.load();
    return used_.fetch_add(n) + n <= limit || limit == 0;
  }
  void give_back(std::size_t n) { used_.fetch_sub(n); }
  // No room for anything more.
  bool full() const {
    const std::size_t limit = limit_.load();
    return limit != 0 && used_.load() >= limit;
  }
  std::size_t used() const { return used_.load(); }
  std::size_t limit() const { return limit_.load(); }
  // A reload's new limit; what is held stays counted.
  void set_limit(std::size_t limit) { limit_.store(limit); }

 private:
  std::atomic<std::size_t> limit_;
  std::atomic<std::size_t> used_{0};
};

// What one message holds of a MessageMemory, given back when the hold is destroyed. Movable; the
// MessageMemory must outlive it.
class MemoryHold {
 public:
  MemoryHold() = default;
  MemoryHold(MessageMemory* memory, std::size_t bytes) : memory_(memory), bytes_(bytes) {}
  MemoryHold(MemoryHold&& other) noexcept
      : memory_(std::exchange(other.memory_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  MemoryHold& operator=(MemoryHold&& other) noexcept {
    if (this != &other) {
      release();
      memory_ = std::exchange(other.memory_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  MemoryHold(const MemoryHold&) = delete;
  MemoryHold& operator=(const MemoryHold&) = delete;
  ~MemoryHold() { release(); }

  std::size_t bytes() const { return bytes_; }
  void release() {
    if (memory_ && bytes_) memory_->give_back(bytes_);
    memory_ = nullptr;
    bytes_ = 0;
  }

 private:
  MessageMemory* memory_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace ipconfirm::smtp
