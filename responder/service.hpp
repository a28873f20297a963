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
  // Switches to a config just loaded again (SIGHUP): listeners added and removed, TLS files,
  // templates and DNS settings read again, new limits; sessions already open finish under
  // the settings they started with. Keys that need a restart keep their running values
  // (responder/reload.hpp). When `loaded` holds an error, or a part of the new settings does
  // not load (a template, a certificate, an address that cannot be bound), nothing changes:
  // it logs `reload-failed` with the reason (for a config error "FILE:LINE: ...") and
  // returns false.
  bool reload(const config::LoadResult& loaded);

  struct Impl;  // shared with the connection handlers (service.cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ipconfirm::responder
