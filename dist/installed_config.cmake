# Writes the config that `cmake --install` puts into /etc/ipconfirm: the commented example
# (config/ipconfirm.toml, also the built-in default) with the paths of an installed service
# and its user. Each replaced line must occur exactly once, so that a change of the example
# that this script does not know about fails the build instead of installing a wrong config.
# -DIN=config/ipconfirm.toml -DOUT=... -DSTATE_DIR=/var/lib/ipconfirm -DUSER=_ipconfirm
file(READ "${IN}" text)
set(note "# Installed as the configuration of the ipconfirm service: the paths below point into\n# ${STATE_DIR} and the server runs as ${USER}. The comments tell each key's built-in default.\n#\n")
string(PREPEND text "${note}")
foreach(pair
    "user = \"\"|user = \"${USER}\""
    "dir = \"./spool\"|dir = \"${STATE_DIR}/spool\""
    "maildir = \"./outbox\"|maildir = \"${STATE_DIR}/outbox\""
    "maildir = \"./postmaster\"|maildir = \"${STATE_DIR}/postmaster\"")
  string(REPLACE "|" ";" parts "${pair}")
  list(GET parts 0 from)
  list(GET parts 1 to)
  string(REGEX MATCHALL "\n${from}\n" hits "${text}")
  list(LENGTH hits n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "installed_config.cmake: '${from}' occurs ${n} times in ${IN}, not once")
  endif()
  string(REPLACE "\n${from}\n" "\n${to}\n" text "${text}")
endforeach()
file(WRITE "${OUT}.tmp" "${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
