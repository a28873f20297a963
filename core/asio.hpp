// Include this instead of <boost/asio.hpp>.
//
// GCC 12 miscompiles some coroutine shapes (seen: `if (!co_await a) co_return x;` followed by
// `co_return co_await b;` resumed a destroyed frame). Store every co_await result in a named
// variable before testing or returning it.
//
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>; with GCC 12 that
// fails to compile unless <utility> comes first. Only I/O files include this header: the pure
// parsers, the session state machine and the analysis must not (a ctest check enforces it).
#pragma once

#include <utility>

// GCC 12 at -O2 reports -Wmismatched-new-delete inside Boost 1.74's coroutine frame allocator
// (a false positive: the frame is allocated and freed by the same awaitable_frame operators).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

namespace ipconfirm {
namespace asio = boost::asio;
}
