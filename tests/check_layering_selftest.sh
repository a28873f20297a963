#!/bin/sh
# Shows that tests/check_layering.sh can fail: on a copy of the tree, one include that goes up
# (core/ -> smtp/), one sideways (smtp/ -> mime/), one from a lower room to a higher one
# (responder/dns/ -> responder/analysis/), responder/http/ reaching into another room, and Asio
# in a pure file must each be refused, and the
# untouched copy must pass.
set -u
src=${1:?source dir}
check="$src/tests/check_layering.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
copy() {
  rm -rf "$tmp/t"
  mkdir -p "$tmp/t"
  (cd "$src" && tar cf - core smtp mime config responder) | (cd "$tmp/t" && tar xf -)
}
expect() { # rc description
  sh "$check" "$tmp/t" >/dev/null 2>&1
  rc=$?
  if [ "$rc" -ne "$1" ]; then
    echo "FAIL: $2 (exit $rc, expected $1)"
    fail=1
  else
    echo "ok: $2"
  fi
}
copy
expect 0 "the tree as it is"
echo '#include "smtp/session.hpp"' >>"$tmp/t/core/ascii.hpp"
expect 1 "core/ including smtp/"
copy
echo '#include "mime/incoming.hpp"' >>"$tmp/t/smtp/session.cpp"
expect 1 "smtp/ including mime/"
copy
echo '#include "responder/analysis/report.hpp"' >>"$tmp/t/responder/dns/dns_message.cpp"
expect 1 "responder/dns/ including responder/analysis/"
copy
echo '#include "responder/queue/spool.hpp"' >>"$tmp/t/responder/http/http_router.cpp"
expect 1 "responder/http/ including responder/queue/"
copy
echo '#include "core/asio.hpp"' >>"$tmp/t/responder/analysis/report.cpp"
expect 1 "a pure file including Asio"
copy
echo '#include "core/asio.hpp"' >>"$tmp/t/responder/http/prometheus.cpp"
expect 1 "the pure Prometheus formatter including Asio"
exit $fail
