#include "mime/saved_reply.hpp"

#include <cstdint>
#include <vector>

#include "mime/incoming.hpp"

namespace ipconfirm::mime {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// One line of `text` from `pos`, without its LF or CRLF; `pos` moves past the line end.
std::string_view next_line(std::string_view text, std::size_t& pos) {
  const std::size_t start = pos;
  std::size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) {
    pos = text.size();
    end = text.size();
  } else {
    pos = end + 1;
  }
  std::string_view line = text.substr(start, end - start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

struct Entity {
  std::string type;  // "text/plain", lower case; "" when absent
  std::string boundary, filename, disposition, encoding;
  std::string queue_id;
  std::string_view body;
};

// A parameter of a structured field (RFC 2045 §5.1): name=token or name="quoted string".
std::string parameter(std::string_view value, std::string_view name) {
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const std::size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) return {};
    const bool match = iequals(trim(value.substr(i, eq - i)), name);
    std::size_t j = eq + 1;
    while (j < value.size() && (value[j] == ' ' || value[j] == '\t')) ++j;
    std::string v;
    if (j < value.size() && value[j] == '"') {
      for (++j; j < value.size() && value[j] != '"'; ++j) {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        v.push_back(value[j]);
      }
      i = value.find(';', j);
    } else {
      const std::size_t end = value.find(';', j);
      v = std::string(trim(value.substr(j, end == std::string_view::npos ? end : end - j)));
      i = end;
    }
    if (match) return v;
  }
  return {};
}

// Splits the header from the body and reads the fields we need (unfolded).
Entity read_entity(std::string_view text) {
  Entity e;
  std::size_t pos = 0;
  std::string field;
  auto take = [&] {
    const std::size_t colon = field.find(':');
    if (colon != std::string::npos) {
      const std::string_view name = trim(std::string_view(field).substr(0, colon));
      const std::string_view value = trim(std::string_view(field).substr(colon + 1));
      if (iequals(name, "Content-Type")) {
        e.type = to_lower(trim(value.substr(0, value.find(';'))));
        e.boundary = parameter(value, "boundary");
      } else if (iequals(name, "Content-Transfer-Encoding")) {
        e.encoding = to_lower(value);
      } else if (iequals(name, "Content-Disposition")) {
        e.disposition = to_lower(trim(value.substr(0, value.find(';'))));
        e.filename = parameter(value, "filename");
      } else if (iequals(name, "X-Ipconfirm-Queue-Id")) {
        e.queue_id = std::string(value.substr(0, 128));
      }
    }
    field.clear();
  };
  while (pos < text.size()) {
    const std::size_t line_start = pos;
    std::string_view line = next_line(text, pos);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      if (!field.empty()) field.append(" ").append(trim(line));
      continue;
    }
    if (line.find(':') == std::string_view::npos) {  // no separator: the body starts here
      pos = line_start;
      break;
    }
    take();
    field.assign(line);
  }
  take();
  e.body = text.substr(pos);
  return e;
}

struct Walker {
  const SavedReplyLimits& limits;
  SavedReply& out;
  std::size_t parts = 0;

  std::string decode(const Entity& e) {
    std::string raw;
    if (e.encoding == "base64")
      raw = decode_base64(e.body);
    else if (e.encoding == "quoted-printable")
      raw = decode_quoted_printable(e.body);
    else
      raw = std::string(e.body);
    std::string lf;
    lf.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i)
      if (!(raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n')) lf.push_back(raw[i]);
    return lf;
  }

  void walk(std::string_view text, std::size_t depth) {
    if (++parts > limits.max_parts) return;
    const Entity e = read_entity(text);
    if (e.type.rfind("multipart/", 0) == 0) {
      if (e.boundary.empty() || depth >= limits.max_depth) return;
      const std::string delimiter = "--" + e.boundary;
      std::size_t pos = 0;
      std::size_t part_start = std::string_view::npos;
      while (pos < e.body.size()) {
        const std::size_t line_start = pos;
        const std::string_view line = trim(next_line(e.body, pos));
        if (line.size() < delimiter.size() || line.substr(0, delimiter.size()) != delimiter)
          continue;
        const std::string_view rest = line.substr(delimiter.size());
        if (!rest.empty() && rest != "--") continue;
        if (part_start != std::string_view::npos) {
          // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
          std::size_t end = line_start;
          if (end > part_start && e.body[end - 1] == '\n') --end;
          if (end > part_start && e.body[end - 1] == '\r') --end;
          walk(e.body.substr(part_start, end - part_start), depth + 1);
        }
        if (rest == "--") return;
        part_start = pos;
      }
      // No close delimiter (a truncated file): the last part runs to the end.
      if (part_start != std::string_view::npos && part_start < e.body.size())
        walk(e.body.substr(part_start), depth + 1);
      return;
    }
    const bool attachment = e.disposition == "attachment" || !e.filename.empty();
    if (e.filename == "ipconfirm.json" || (e.type == "application/json" && !out.json)) {
      if (e.filename == "ipconfirm.json" || !out.json) out.json = decode(e);
    } else if (!attachment && (e.type == "text/plain" || e.type.empty()) && !out.text) {
      out.text = decode(e);
    } else if (!attachment && e.type == "text/html" && !out.html) {
      out.html = decode(e);
    }
  }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string decode_base64(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      continue;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string decode_quoted_printable(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out.push_back(in[i]);
      continue;
    }
    // A soft line break: '=' then optional white space and the line end.
    std::size_t j = i + 1;
    while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
    if (j < in.size() && (in[j] == '\n' || in[j] == '\r')) {
      if (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n') ++j;
      i = j;
      continue;
    }
    if (j == in.size()) break;  // '=' at the very end: a soft break without a line end
    if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
      i += 2;
      continue;
    }
    out.push_back('=');
  }
  return out;
}

std::optional<SavedReply> read_saved_reply(std::string_view message, std::string& error,
                                           const SavedReplyLimits& limits) {
  if (message.size() > limits.max_bytes) {
    error = "larger than " + std::to_string(limits.max_bytes) + " bytes: not a reply";
    return std::nullopt;
  }
  // An mbox message starts with its "From " separator line.
  if (message.substr(0, 5) == "From ") {
    std::size_t pos = 0;
    next_line(message, pos);
    message.remove_prefix(pos);
  }
  const Entity top = read_entity(message);
  if (top.body.size() == message.size()) {
    error = "no mail header: not a saved mail message";
    return std::nullopt;
  }
  SavedReply out;
  out.subject = read_incoming(message).subject;
  out.queue_id = top.queue_id;
  for (auto& c : out.queue_id)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  Walker{limits, out}.walk(message, 0);
  return out;
}

}  // namespace ipconfirm::mime
