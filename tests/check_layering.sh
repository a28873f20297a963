#!/bin/sh
# The layering of the source tree, checked on every #include "..." of the project:
#
#   core/                 the shared vocabulary: includes nothing else of the project
#   smtp/ mime/ config/   include core/ only (never each other)
#   responder/dns/        core/
#   responder/queue/      core/ smtp/ config/ responder/dns/
#   responder/analysis/   core/ mime/ config/ responder/dns/
#   responder/reply/      core/ mime/ config/ responder/dns/ responder/analysis/
#   responder/http/       core/ (a generic HTTP listener; the service adds the routes)
#   responder/            (service, main) everything
#
# A folder may always include its own files. Second rule: pure code (parsers, state machines,
# analysis, composition) must not include Asio or c-ares; only the files listed in io_files do
# I/O, and a file belongs there only if it really is an I/O edge.
top=${1:-.}
cd "$top" || exit 2

allowed() { # folder -> folders it may include, besides itself
  case "$1" in
    core) echo "" ;;
    smtp | mime | config) echo "core" ;;
    responder/dns) echo "core" ;;
    responder/queue) echo "core smtp config responder/dns" ;;
    responder/analysis) echo "core mime config responder/dns" ;;
    responder/reply) echo "core mime config responder/dns responder/analysis" ;;
    responder/http) echo "core" ;;
    responder) echo "core smtp mime config responder/dns responder/queue responder/analysis responder/reply responder/http" ;;
    *) echo "?" ;;
  esac
}

io_files='core/asio.hpp smtp/server.cpp smtp/server.hpp smtp/client.cpp smtp/client.hpp
responder/dns/dns_resolver.cpp responder/dns/dns_resolver.hpp
responder/analysis/lookups.cpp responder/analysis/lookups.hpp
responder/analysis/auth_lookups.cpp responder/analysis/auth_lookups.hpp
responder/queue/delivery.cpp responder/queue/delivery.hpp
responder/http/http_server.cpp responder/http/http_server.hpp
responder/service.cpp responder/service.hpp responder/main.cpp'

bad=0
files=$(find core smtp mime config responder -name '*.[ch]pp' | sort)
[ -n "$files" ] || { echo "layering: no sources found under $top" >&2; exit 2; }
for f in $files; do
  dir=$(dirname "$f")
  ok=$(allowed "$dir")
  if [ "$ok" = "?" ]; then
    echo "layering: $dir is not a known folder; add it to tests/check_layering.sh" >&2
    bad=1
    continue
  fi
  for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
    idir=$(dirname "$inc")
    [ "$idir" = "$dir" ] && continue
    case " $ok " in
      *" $idir "*) ;;
      *)
        echo "layering: $f includes \"$inc\": $dir may include only: ${ok:-nothing of the project}" >&2
        bad=1
        ;;
    esac
  done
  case " $(echo $io_files) " in *" $f "*) continue ;; esac
  if grep -nE '#include *[<"](boost/asio|ares\.h|core/asio\.hpp)' "$f"; then
    echo "layering: $f is pure code but includes Asio or c-ares" >&2
    bad=1
  fi
done
exit $bad
