#include "config/secret_files.hpp"

#include <sys/stat.h>

namespace ipconfirm::config {

std::vector<SecretFileWarning> secret_file_warnings(const Config& config,
                                                    const std::string& config_path) {
  std::vector<SecretFileWarning> out;
  auto check = [&](const std::string& path, const char* holds) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
    const unsigned mode = static_cast<unsigned>(st.st_mode) & 07777u;
    if ((mode & (S_IRGRP | S_IROTH)) != 0) out.push_back({path, mode, holds});
  };
  if (!config.delivery.smarthost_password.empty())
    check(config_path, "the smarthost password (delivery.smarthost_password)");
  check(config.delivery.smarthost_auth_file,
        "the smarthost credentials (delivery.smarthost_auth_file)");
  check(config.smtp.tls_key, "the TLS private key (smtp.tls_key)");
  return out;
}

}  // namespace ipconfirm::config
