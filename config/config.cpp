#include "config/config.hpp"

#include <toml++/toml.h>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "core/domain.hpp"

namespace ipconfirm::config {

std::string Endpoint::to_string() const {
  if (address.is_v4()) return address.to_string() + ":" + std::to_string(port);
  return "[" + address.to_string() + "]:" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto ip = IpAddress::parse(host);
  if (!ip) return std::nullopt;
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return std::nullopt;
  return Endpoint{*ip, static_cast<std::uint16_t>(port)};
}

std::optional<Network> parse_network(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const int max = ip->is_v4() ? 32 : 128;
  if (slash == std::string_view::npos) return Network{*ip, max};
  auto digits = text.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() || prefix < 0 ||
      prefix > max)
    return std::nullopt;
  return Network{*ip, prefix};
}

namespace {

// A user or group name as useradd(8) accepts it: letters, digits, '_', '.', '-' (not first),
// an optional trailing '$', at most 32 bytes.
bool is_account_name(std::string_view s) {
  if (s.empty() || s.size() > 32 || s.front() == '-') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    const bool ok =
        std::isalnum(ch) || ch == '_' || ch == '.' || ch == '-' || (ch == '$' && i + 1 == s.size());
    if (!ok) return false;
  }
  return s != "." && s != "..";
}

// "" (off), or an http:// or https:// URL with a host, an optional port and path, and no
// query, fragment, white space, quotes or angle brackets (it goes into the 250 line and into
// HTML); its trailing slashes are dropped. Sets `why` when the URL is refused.
std::string normalize_public_url(std::string url, std::string& why) {
  if (url.empty()) return url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::string_view rest = url;
  if (rest.substr(0, 7) == "http://")
    rest.remove_prefix(7);
  else if (rest.substr(0, 8) == "https://")
    rest.remove_prefix(8);
  else
    why = "must start with http:// or https://";
  if (why.empty() && (rest.empty() || rest.front() == '/' || rest.front() == ':'))
    why = "needs a host name after the scheme";
  if (why.empty() && url.size() > 200) why = "must be at most 200 characters";
  for (char ch : url) {
    const unsigned char u = static_cast<unsigned char>(ch);
    const bool ok = std::isalnum(u) ||
                    std::string_view("-._~:/[]%@!$()*+,;=").find(ch) != std::string_view::npos;
    if (why.empty() && !ok)
      why = "may hold only letters, digits and -._~:/[]%@!$()*+,;= (no query or fragment)";
  }
  return url;
}

// Thrown inside the loader only; parse_config turns it into a LoadResult.
struct ConfigError {
  std::string message;
};

class Loader {
 public:
  explicit Loader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node* node, const std::string& key, const std::string& why) {
    std::ostringstream out;
    out << source_;
    if (node) out << ":" << node->source().begin.line;
    out << ": key '" << key << "': " << why;
    throw ConfigError{out.str()};
  }

  // Refuses keys of `table` that are not in `known`.
  void only_known(const toml::table& table, const std::string& prefix,
                  std::initializer_list<std::string_view> known) {
    for (auto&& [k, v] : table) {
      bool found = false;
      for (auto name : known) found = found || k.str() == name;
      if (!found) fail(&v, prefix + std::string(k.str()), "unknown key");
    }
  }

  const toml::table* table(const toml::table& parent, std::string_view name,
                           const std::string& key) {
    const toml::node* n = parent.get(name);
    if (!n) return nullptr;
    if (!n->is_table()) fail(n, key, "must be a table");
    return n->as_table();
  }

  std::optional<std::string> string(const toml::table& t, std::string_view name,
                                    const std::string& key) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    if (!n->is_string()) fail(n, key, "must be a string");
    return n->value<std::string>();
  }

  std::optional<std::int64_t> integer(const toml::table& t, std::string_view name,
                                      const std::string& key, std::int64_t min, std::int64_t max) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    if (!n->is_integer()) fail(n, key, "must be an integer");
    auto v = *n->value<std::int64_t>();
    if (v < min || v > max)
      fail(n, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return v;
  }

  template <typename T>
  void set_size(const toml::table& t, std::string_view name, const std::string& key, T& out,
                std::int64_t min, std::int64_t max) {
    if (auto v = integer(t, name, key, min, max)) out = static_cast<T>(*v);
  }

  std::optional<std::vector<std::string>> strings(const toml::table& t, std::string_view name,
                                                  const std::string& key) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    if (!n->is_array()) fail(n, key, "must be a list of strings");
    std::vector<std::string> out;
    for (auto&& e : *n->as_array()) {
      if (!e.is_string()) fail(&e, key, "must be a list of strings");
      out.push_back(*e.value<std::string>());
    }
    return out;
  }

  std::vector<Endpoint> endpoints(const toml::table& t, std::string_view name,
                                  const std::string& key) {
    std::vector<Endpoint> out;
    const toml::node* n = t.get(name);
    auto list = strings(t, name, key);
    if (!list) return out;
    for (const auto& s : *list) {
      auto ep = parse_endpoint(s);
      if (!ep) fail(n, key, "'" + s + "' is not an address:port (IPv6 in brackets)");
      out.push_back(*ep);
    }
    return out;
  }

  Config load(const toml::table& root) {
    Config c;
    only_known(root, "",
               {"hostname", "domains", "service", "smtp", "dns", "delivery", "queue", "reply",
                "postmaster", "analysis", "http"});

    auto hostname = string(root, "hostname", "hostname");
    if (!hostname) fail(nullptr, "hostname", "is required");
    if (!is_valid_domain(*hostname))
      fail(root.get("hostname"), "hostname", "'" + *hostname + "' is not a valid host name");
    c.hostname = *hostname;

    auto domains = strings(root, "domains", "domains");
    if (!domains || domains->empty()) fail(root.get("domains"), "domains", "needs at least one");
    for (auto& d : *domains) {
      if (!is_valid_domain(d))
        fail(root.get("domains"), "domains", "'" + d + "' is not a valid domain");
      for (auto& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    c.domains = *domains;

    if (auto sv = table(root, "service", "service")) {
      only_known(*sv, "service.", {"user", "group"});
      if (auto u = string(*sv, "user", "service.user")) {
        if (!u->empty() && !is_account_name(*u))
          fail(sv->get("user"), "service.user", "'" + *u + "' is not a user name");
        c.service.user = *u;
      }
      if (auto g = string(*sv, "group", "service.group")) {
        if (!g->empty() && !is_account_name(*g))
          fail(sv->get("group"), "service.group", "'" + *g + "' is not a group name");
        c.service.group = *g;
      }
      if (c.service.user.empty() && !c.service.group.empty())
        fail(sv->get("group"), "service.group", "needs service.user");
    }

    if (auto s = table(root, "smtp", "smtp")) {
      only_known(
          *s, "smtp.",
          {"listen", "max_message_size", "max_message_memory", "max_recipients", "max_errors",
           "max_commands", "max_connections", "max_connections_per_ip", "ipv6_connection_prefix",
           "command_timeout", "connection_deadline", "tls_cert", "tls_key", "implicit_tls_listen",
           "proxy_protocol_listen", "trusted_proxies", "proxy_protocol_tls_listen"});
      c.smtp.listen = endpoints(*s, "listen", "smtp.listen");
      set_size(*s, "max_message_size", "smtp.max_message_size", c.smtp.max_message_size, 1024,
               1LL << 30);
      set_size(*s, "max_message_memory", "smtp.max_message_memory", c.smtp.max_message_memory,
               64 * 1024, 1LL << 40);
      set_size(*s, "max_recipients", "smtp.max_recipients", c.smtp.max_recipients, 1, 1000);
      set_size(*s, "max_errors", "smtp.max_errors", c.smtp.max_errors, 1, 1000);
      set_size(*s, "max_commands", "smtp.max_commands", c.smtp.max_commands, 10, 100000);
      set_size(*s, "max_connections", "smtp.max_connections", c.smtp.max_connections, 1, 1000000);
      set_size(*s, "max_connections_per_ip", "smtp.max_connections_per_ip",
               c.smtp.max_connections_per_ip, 1, 1000000);
      set_size(*s, "ipv6_connection_prefix", "smtp.ipv6_connection_prefix",
               c.smtp.ipv6_connection_prefix, 16, 128);
      if (auto v = integer(*s, "command_timeout", "smtp.command_timeout", 1, 3600))
        c.smtp.command_timeout = std::chrono::seconds(*v);
      if (auto v = integer(*s, "connection_deadline", "smtp.connection_deadline", 1, 86400))
        c.smtp.connection_deadline = std::chrono::seconds(*v);
      if (auto v = string(*s, "tls_cert", "smtp.tls_cert")) c.smtp.tls_cert = *v;
      if (auto v = string(*s, "tls_key", "smtp.tls_key")) c.smtp.tls_key = *v;
      if (c.smtp.tls_cert.empty() != c.smtp.tls_key.empty())
        fail(s->get(c.smtp.tls_cert.empty() ? "tls_key" : "tls_cert"), "smtp.tls_cert",
             "tls_cert and tls_key go together");
      c.smtp.implicit_tls_listen = endpoints(*s, "implicit_tls_listen", "smtp.implicit_tls_listen");
      if (!c.smtp.implicit_tls_listen.empty() && c.smtp.tls_cert.empty())
        fail(s->get("implicit_tls_listen"), "smtp.implicit_tls_listen",
             "needs smtp.tls_cert and smtp.tls_key");
      c.smtp.proxy_protocol_listen =
          endpoints(*s, "proxy_protocol_listen", "smtp.proxy_protocol_listen");
      c.smtp.proxy_protocol_tls_listen =
          endpoints(*s, "proxy_protocol_tls_listen", "smtp.proxy_protocol_tls_listen");
      if (!c.smtp.proxy_protocol_tls_listen.empty() && c.smtp.tls_cert.empty())
        fail(s->get("proxy_protocol_tls_listen"), "smtp.proxy_protocol_tls_listen",
             "needs smtp.tls_cert and smtp.tls_key");
      if (auto nets = strings(*s, "trusted_proxies", "smtp.trusted_proxies")) {
        for (const auto& n : *nets) {
          auto net = parse_network(n);
          if (!net)
            fail(s->get("trusted_proxies"), "smtp.trusted_proxies",
                 "'" + n + "' is not an address or address/prefix");
          c.smtp.trusted_proxies.push_back(*net);
        }
      }
      if (!c.smtp.proxy_protocol_listen.empty() && c.smtp.trusted_proxies.empty())
        fail(s->get("proxy_protocol_listen"), "smtp.proxy_protocol_listen",
             "needs smtp.trusted_proxies");
      if (!c.smtp.proxy_protocol_tls_listen.empty() && c.smtp.trusted_proxies.empty())
        fail(s->get("proxy_protocol_tls_listen"), "smtp.proxy_protocol_tls_listen",
             "needs smtp.trusted_proxies");
    }
    if (c.smtp.listen.empty() && c.smtp.implicit_tls_listen.empty() &&
        c.smtp.proxy_protocol_listen.empty() && c.smtp.proxy_protocol_tls_listen.empty())
      fail(nullptr, "smtp.listen", "needs at least one address");

    if (auto d = table(root, "dns", "dns")) {
      only_known(*d, "dns.",
                 {"servers", "dnsbl", "timeout_ms", "tries", "report_deadline_ms", "cache_bytes"});
      if (auto servers = strings(*d, "servers", "dns.servers")) {
        for (const auto& s : *servers)
          if (!parse_endpoint(s))
            fail(d->get("servers"), "dns.servers",
                 "'" + s + "' is not an address:port (IPv6 in brackets)");
        c.dns.servers = *servers;
      }
      if (auto zones = strings(*d, "dnsbl", "dns.dnsbl")) {
        for (const auto& z : *zones)
          if (!is_valid_domain(z))
            fail(d->get("dnsbl"), "dns.dnsbl", "'" + z + "' is not a valid zone name");
        c.dns.dnsbl = *zones;
      }
      if (auto v = integer(*d, "timeout_ms", "dns.timeout_ms", 50, 60000))
        c.dns.timeout = std::chrono::milliseconds(*v);
      if (auto v = integer(*d, "tries", "dns.tries", 1, 10)) c.dns.tries = static_cast<int>(*v);
      if (auto v = integer(*d, "report_deadline_ms", "dns.report_deadline_ms", 100, 120000))
        c.dns.report_deadline = std::chrono::milliseconds(*v);
      set_size(*d, "cache_bytes", "dns.cache_bytes", c.dns.cache_bytes, 0, 1LL << 30);
    }

    if (auto d = table(root, "delivery", "delivery")) {
      only_known(
          *d, "delivery.",
          {"mode", "smarthost", "maildir", "smarthost_tls", "smarthost_user", "smarthost_password",
           "smarthost_auth_file", "allow_private", "mx_port", "max_per_domain", "attempt_deadline",
           "smarthost_tls_ca_file", "smarthost_tls_name", "smarthost_tls_fingerprint"});
      if (auto mode = string(*d, "mode", "delivery.mode")) {
        if (*mode == "smarthost")
          c.delivery.mode = DeliveryMode::smarthost;
        else if (*mode == "mx")
          c.delivery.mode = DeliveryMode::mx;
        else if (*mode == "maildir")
          c.delivery.mode = DeliveryMode::maildir;
        else
          fail(d->get("mode"), "delivery.mode", "must be \"smarthost\", \"mx\" or \"maildir\"");
      }
      if (auto sh = string(*d, "smarthost", "delivery.smarthost")) {
        c.delivery.smarthost = parse_endpoint(*sh);
        if (!c.delivery.smarthost) {
          // The name form: "smtp.example.net:587".
          const auto colon = sh->rfind(':');
          unsigned port = 0;
          const char* digits = colon == std::string::npos ? nullptr : sh->c_str() + colon + 1;
          const char* end = sh->c_str() + sh->size();
          auto [stop, ec] = digits ? std::from_chars(digits, end, port)
                                   : std::from_chars_result{nullptr, std::errc::invalid_argument};
          const std::string host = colon == std::string::npos ? "" : sh->substr(0, colon);
          if (ec != std::errc{} || stop != end || port == 0 || port > 65535 ||
              !is_valid_domain(host) || host.find('.') == std::string::npos)
            fail(d->get("smarthost"), "delivery.smarthost",
                 "'" + *sh + "' is neither address:port (IPv6 in brackets) nor host.name:port");
          c.delivery.smarthost_host = host;
          c.delivery.smarthost_port = static_cast<std::uint16_t>(port);
        }
      }
      if (auto md = string(*d, "maildir", "delivery.maildir")) {
        if (md->empty()) fail(d->get("maildir"), "delivery.maildir", "must not be empty");
        c.delivery.maildir = *md;
      }
      if (auto tls = string(*d, "smarthost_tls", "delivery.smarthost_tls")) {
        if (*tls == "none")
          c.delivery.smarthost_tls = SmarthostTls::none;
        else if (*tls == "opportunistic")
          c.delivery.smarthost_tls = SmarthostTls::opportunistic;
        else if (*tls == "required")
          c.delivery.smarthost_tls = SmarthostTls::required;
        else
          fail(d->get("smarthost_tls"), "delivery.smarthost_tls",
               "must be \"none\", \"opportunistic\" or \"required\"");
      }
      if (auto u = string(*d, "smarthost_user", "delivery.smarthost_user"))
        c.delivery.smarthost_user = *u;
      if (auto pw = string(*d, "smarthost_password", "delivery.smarthost_password"))
        c.delivery.smarthost_password = *pw;
      if (auto f = string(*d, "smarthost_auth_file", "delivery.smarthost_auth_file"))
        c.delivery.smarthost_auth_file = *f;
      if (auto f = string(*d, "smarthost_tls_ca_file", "delivery.smarthost_tls_ca_file"))
        c.delivery.smarthost_tls_ca_file = *f;
      if (auto n = string(*d, "smarthost_tls_name", "delivery.smarthost_tls_name")) {
        if (!n->empty() && !is_valid_domain(*n))
          fail(d->get("smarthost_tls_name"), "delivery.smarthost_tls_name",
               "'" + *n + "' is not a valid host name");
        c.delivery.smarthost_tls_name = *n;
      }
      if (auto p = string(*d, "smarthost_tls_fingerprint", "delivery.smarthost_tls_fingerprint")) {
        // "AB:CD:..." as openssl prints it, or plain hex; either case.
        std::string hex;
        for (char ch : *p) {
          if (ch == ':') continue;
          hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        const bool ok =
            hex.size() == 64 && hex.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!p->empty() && !ok)
          fail(d->get("smarthost_tls_fingerprint"), "delivery.smarthost_tls_fingerprint",
               "must be a SHA-256 in hex (64 digits, colons allowed)");
        c.delivery.smarthost_tls_fingerprint = p->empty() ? "" : hex;
      }
      if (!c.delivery.smarthost_user.empty() && !c.delivery.smarthost_auth_file.empty())
        fail(d->get("smarthost_auth_file"), "delivery.smarthost_auth_file",
             "give either smarthost_user/smarthost_password or smarthost_auth_file, not both");
      if (const toml::node* n = d->get("allow_private")) {
        if (!n->is_boolean()) fail(n, "delivery.allow_private", "must be true or false");
        c.delivery.allow_private = *n->value<bool>();
      }
      set_size(*d, "mx_port", "delivery.mx_port", c.delivery.mx_port, 1, 65535);
      set_size(*d, "max_per_domain", "delivery.max_per_domain", c.delivery.max_per_domain, 1, 1000);
      if (auto v = integer(*d, "attempt_deadline", "delivery.attempt_deadline", 1, 3600))
        c.delivery.attempt_deadline = std::chrono::seconds(*v);
    }
    if (c.delivery.mode == DeliveryMode::smarthost && !c.delivery.smarthost &&
        c.delivery.smarthost_host.empty())
      fail(nullptr, "delivery.smarthost", "is required when delivery.mode is \"smarthost\"");

    if (auto q = table(root, "queue", "queue")) {
      only_known(*q, "queue.", {"dir", "max_entries", "retry_first", "retry_max", "lifetime"});
      if (auto dir = string(*q, "dir", "queue.dir")) {
        if (dir->empty()) fail(q->get("dir"), "queue.dir", "must not be empty");
        c.queue.dir = *dir;
      }
      set_size(*q, "max_entries", "queue.max_entries", c.queue.max_entries, 1, 10000000);
      set_size(*q, "retry_first", "queue.retry_first", c.queue.retry_first, 1, 86400);
      set_size(*q, "retry_max", "queue.retry_max", c.queue.retry_max, 1, 7 * 86400);
      set_size(*q, "lifetime", "queue.lifetime", c.queue.lifetime, 1, 30 * 86400);
    }

    if (auto r = table(root, "reply", "reply")) {
      only_known(*r, "reply.",
                 {"templates", "mode", "max_received", "max_per_recipient_per_hour",
                  "max_per_ip_per_hour", "max_per_network_per_hour", "max_per_domain_per_hour",
                  "max_per_site_per_hour", "max_total_per_minute", "rate_limit_entries"});
      if (auto t = string(*r, "templates", "reply.templates")) c.reply.templates = *t;
      if (auto mode = string(*r, "mode", "reply.mode")) {
        if (*mode == "mail")
          c.reply.mode = ReplyMode::mail;
        else if (*mode == "transcript")
          c.reply.mode = ReplyMode::transcript;
        else
          fail(r->get("mode"), "reply.mode", "must be \"mail\" or \"transcript\"");
      }
      set_size(*r, "max_received", "reply.max_received", c.reply.max_received, 1, 1000);
      set_size(*r, "max_per_recipient_per_hour", "reply.max_per_recipient_per_hour",
               c.reply.max_per_recipient_per_hour, 0, 1000000);
      set_size(*r, "max_per_ip_per_hour", "reply.max_per_ip_per_hour", c.reply.max_per_ip_per_hour,
               0, 1000000);
      set_size(*r, "max_per_network_per_hour", "reply.max_per_network_per_hour",
               c.reply.max_per_network_per_hour, 0, 1000000);
      set_size(*r, "max_per_domain_per_hour", "reply.max_per_domain_per_hour",
               c.reply.max_per_domain_per_hour, 0, 1000000);
      set_size(*r, "max_per_site_per_hour", "reply.max_per_site_per_hour",
               c.reply.max_per_site_per_hour, 0, 1000000);
      set_size(*r, "max_total_per_minute", "reply.max_total_per_minute",
               c.reply.max_total_per_minute, 0, 1000000);
      set_size(*r, "rate_limit_entries", "reply.rate_limit_entries", c.reply.rate_limit_entries,
               100, 10000000);
    }

    if (auto a = table(root, "analysis", "analysis")) {
      only_known(*a, "analysis.", {"lab_networks"});
      if (auto nets = strings(*a, "lab_networks", "analysis.lab_networks")) {
        for (const auto& n : *nets) {
          auto net = parse_network(n);
          if (!net)
            fail(a->get("lab_networks"), "analysis.lab_networks",
                 "'" + n + "' is not an address or address/prefix");
          c.analysis.lab_networks.push_back(*net);
        }
      }
    }

    if (auto p = table(root, "postmaster", "postmaster")) {
      only_known(*p, "postmaster.",
                 {"forward", "maildir", "max_per_ip_per_hour", "max_per_network_per_hour",
                  "max_total_per_minute", "max_maildir_messages", "max_maildir_bytes"});
      if (auto f = string(*p, "forward", "postmaster.forward")) {
        auto at = f->rfind('@');
        if (!f->empty() &&
            (at == std::string::npos || at == 0 || !is_valid_domain(f->substr(at + 1))))
          fail(p->get("forward"), "postmaster.forward", "'" + *f + "' is not an address");
        c.postmaster.forward = *f;
      }
      if (auto m = string(*p, "maildir", "postmaster.maildir")) c.postmaster.maildir = *m;
      set_size(*p, "max_per_ip_per_hour", "postmaster.max_per_ip_per_hour",
               c.postmaster.max_per_ip_per_hour, 0, 1000000);
      set_size(*p, "max_per_network_per_hour", "postmaster.max_per_network_per_hour",
               c.postmaster.max_per_network_per_hour, 0, 1000000);
      set_size(*p, "max_total_per_minute", "postmaster.max_total_per_minute",
               c.postmaster.max_total_per_minute, 0, 1000000);
      set_size(*p, "max_maildir_messages", "postmaster.max_maildir_messages",
               c.postmaster.max_maildir_messages, 0, 100000000);
      set_size(*p, "max_maildir_bytes", "postmaster.max_maildir_bytes",
               c.postmaster.max_maildir_bytes, 0, 1LL << 50);
      if (c.postmaster.forward.empty() && c.postmaster.maildir.empty())
        fail(p->get("maildir"), "postmaster.maildir", "must not be empty without a forward");
    }

    if (auto h = table(root, "http", "http")) {
      only_known(
          *h, "http.",
          {"listen", "max_connections", "request_timeout", "max_request_size", "max_header_fields",
           "public_url", "report_days", "max_reports", "max_report_requests_per_ip_per_minute"});
      c.http.listen = endpoints(*h, "listen", "http.listen");
      set_size(*h, "max_connections", "http.max_connections", c.http.max_connections, 1, 100000);
      if (auto v = integer(*h, "request_timeout", "http.request_timeout", 1, 3600))
        c.http.request_timeout = std::chrono::seconds(*v);
      set_size(*h, "max_request_size", "http.max_request_size", c.http.max_request_size, 1024,
               1024 * 1024);
      set_size(*h, "max_header_fields", "http.max_header_fields", c.http.max_header_fields, 10,
               1000);
      if (auto u = string(*h, "public_url", "http.public_url")) {
        std::string why;
        c.http.public_url = normalize_public_url(*u, why);
        if (!why.empty()) fail(h->get("public_url"), "http.public_url", why);
        if (!c.http.public_url.empty() && c.http.listen.empty())
          fail(h->get("public_url"), "http.public_url",
               "needs http.listen: the report pages are served by this listener");
      }
      if (const toml::node* n = h->get("report_days")) {
        // Days, fractions allowed (0.5 = 12 hours), at least a second and at most ten years.
        std::optional<double> days;
        if (n->is_integer()) days = static_cast<double>(*n->value<std::int64_t>());
        if (n->is_floating_point()) days = *n->value<double>();
        if (!days) fail(n, "http.report_days", "must be a number");
        if (!(*days * 86400 >= 1) || !(*days <= 3650))
          fail(n, "http.report_days", "must be between 0.0000116 (one second) and 3650");
        c.http.report_days = *days;
      }
      set_size(*h, "max_reports", "http.max_reports", c.http.max_reports, 1, 10000000);
      set_size(*h, "max_report_requests_per_ip_per_minute",
               "http.max_report_requests_per_ip_per_minute",
               c.http.max_report_requests_per_ip_per_minute, 0, 1000000);
    }
    return c;
  }

 private:
  std::string source_;
};

}  // namespace

LoadResult parse_config(std::string_view toml_text, std::string_view source) {
  LoadResult result;
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view{source});
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << source << ":" << e.source().begin.line << ": " << e.description();
    result.error = out.str();
    return result;
  }
  try {
    result.config = Loader(std::string(source)).load(root);
  } catch (const ConfigError& e) {
    result.error = e.message;
  }
  return result;
}

LoadResult load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return LoadResult{std::nullopt, path + ": cannot read the file"};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace ipconfirm::config
