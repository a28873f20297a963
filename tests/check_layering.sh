#!/bin/sh
# Pure code (parsers, state machines, analysis, composition) must not include Asio or c-ares.
# Only the files listed here do I/O; add a file here only if it really is an I/O edge.
top=${1:-.}
cd "$top" || exit 2
io_files='smtp/asio.hpp smtp/server.cpp smtp/server.hpp smtp/client.cpp smtp/client.hpp
responder/dns_resolver.cpp responder/dns_resolver.hpp responder/service.cpp responder/service.hpp
responder/delivery.cpp responder/delivery.hpp responder/main.cpp
responder/lookups.cpp responder/lookups.hpp responder/service.cpp responder/service.hpp'
bad=0
for f in $(ls smtp/*.?pp mime/*.?pp responder/*.?pp config/*.?pp 2>/dev/null); do
  case " $(echo $io_files) " in *" $f "*) continue ;; esac
  if grep -nE '#include *[<"](boost/asio|ares\.h|smtp/asio\.hpp)' "$f"; then
    echo "layering: $f is pure code but includes Asio or c-ares" >&2
    bad=1
  fi
done
exit $bad
