// The running ipconfirm: wires the config to the resolver, the spool, the SMTP server and the
// delivery worker, and handles each accepted message: observation -> report -> reply policy ->
// rendered reply -> durable queue, all before the 250 that ends DATA (docs/flow.md).
#pragma once

#include <functional>
#include <memory>

#include "config/config.hpp"
#include "core/asio.hpp"

namespace ipconfirm::responder {

class Service {
 public:
  Service(asio::io_context& io, config::Config config);
  ~Service();
  // Loads the templates, binds the listeners (reading the TLS key), runs `after_bind` (where
  // main drops root's privileges, responder/privileges.hpp), then opens the spool (recovering
  // what a previous run left) and starts delivering. Throws std::runtime_error with a clear
  // message; so may `after_bind`.
  void start(const std::function<void()>& after_bind = {});
  // Stops accepting, closes connections (421) and stops the delivery worker.
  void stop();

  struct Impl;  // shared with the connection handlers (service.cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ipconfirm::responder
