// Which files of the configuration hold secrets, and whether anyone but their owner may read
// them: the config file itself when it holds the smarthost password, the smarthost auth file,
// and the TLS private key. ipconfirm warns (it does not refuse to start: the admin may have
// reasons, such as a group the service shares with a key manager) when one of them is readable
// by group or others.
//
// What it does not do: it does not look at the directories above the files, nor at who owns
// them, and it reads no file's contents (only stat(2), following symbolic links).
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace ipconfirm::config {

struct SecretFileWarning {
  std::string file;   // the path as configured
  unsigned mode = 0;  // its permission bits, e.g. 0644
  std::string holds;  // what secret it holds: "the smarthost password", ...
};

// One warning per secret file that exists and has S_IRGRP or S_IROTH set. `config_path` is the
// file `config` was loaded from ("" for the built-in config, which holds no secret).
std::vector<SecretFileWarning> secret_file_warnings(const Config& config,
                                                    const std::string& config_path);

}  // namespace ipconfirm::config
