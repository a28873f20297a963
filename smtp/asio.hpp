// Include this instead of <boost/asio.hpp>.
//
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>; with GCC 12 that
// fails to compile unless <utility> comes first. Only I/O files include this header: the pure
// parsers, the session state machine and the analysis must not (a ctest check enforces it).
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

namespace ipconfirm {
namespace asio = boost::asio;
}
