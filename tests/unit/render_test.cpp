// The rendered report: golden files, custom templates, and the whole reply (report -> render ->
// reply mail) parsed back with mimetic, with hostile values in every place a sender controls.
//
// Golden files: tests/data/report/NN-name.json is a fixed report (the JSON contract);
// NN-name.txt and NN-name.html are the built-in templates' output for it. After a deliberate
// change of wording, regenerate them with IPCONFIRM_UPDATE_GOLDEN=1 and review the diff.
#include <doctest/doctest.h>
#include <mimetic/mimetic.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <kainjow/mustache.hpp>

#include "mime/incoming.hpp"
#include "responder/analysis/report.hpp"
#include "responder/reply/render.hpp"
#include "responder/reply/reply_mail.hpp"

using namespace ipconfirm;
using namespace ipconfirm::responder;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Templates builtin() {
  std::string error;
  auto t = load_templates("", error);
  REQUIRE_MESSAGE(t, error);
  return *t;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Checks the whole message's wire format; returns the top-level header field names.
std::vector<std::string> check_wire(const std::string& msg) {
  std::vector<std::string> names;
  bool header = true;
  std::size_t start = 0;
  while (start < msg.size()) {
    const std::size_t crlf = msg.find("\r\n", start);
    REQUIRE(crlf != std::string::npos);
    const std::string line = msg.substr(start, crlf - start);
    CHECK(line.find_first_of("\r\n") == std::string::npos);
    CHECK(line.size() <= 998);
    if (header) {
      if (line.empty()) {
        header = false;
      } else {
        for (char c : line) {
          CHECK(static_cast<unsigned char>(c) >= 0x20);
          CHECK(static_cast<unsigned char>(c) < 0x7F);
        }
        if (line[0] != ' ' && line[0] != '\t')
          names.push_back(lower(line.substr(0, line.find(':'))));
      }
    }
    start = crlf + 2;
  }
  CHECK_FALSE(header);
  return names;
}

std::string field(const mimetic::MimeEntity& e, const std::string& name) {
  for (const auto& f : e.header())
    if (lower(f.name()) == lower(name)) return f.value();
  return "";
}

std::size_t count_fields(const mimetic::MimeEntity& e, const std::string& name) {
  std::size_t n = 0;
  for (const auto& f : e.header()) n += lower(f.name()) == lower(name);
  return n;
}

Observation observation() {
  Observation o;
  o.ip = *IpAddress::parse("192.0.2.10");
  o.port = 41000;
  o.arrival = 1795000000;
  o.helo = "mail.sender.test";
  o.esmtp = true;
  o.mail_from = "alice@sender.test";
  o.rcpt_to = {"ipconfirm@example.test"};
  o.reply_domain = "example.test";
  o.message = mime::read_incoming(
      "From: Alice <alice@sender.test>\r\nSubject: test\r\nMessage-ID: "
      "<m1@sender.test>\r\n\r\nhi\r\n");
  return o;
}

// Builds the whole reply as the service does.
ReplyMail reply_for(const Observation& obs, const Templates& t = builtin()) {
  Report report = build_report(obs, ReportOptions{"mx.example.test"});
  Rendered rendered = render_report(t, report.json);
  return build_reply_mail(obs, rendered, report.json, "mx.example.test", 1795000000);
}

const std::set<std::string> kExpectedFields = {
    "date",        "from",           "to",
    "subject",     "message-id",     "in-reply-to",
    "references",  "auto-submitted", "x-auto-response-suppress",
    "precedence",  "x-ipconfirm-ip", "mime-version",
    "content-type"};

// Parses the reply with mimetic and checks that its header is exactly ours.
void check_reply(const ReplyMail& mail, const std::string& recipient) {
  CHECK(mail.sender.empty());
  CHECK(mail.recipient == recipient);
  const std::vector<std::string> names = check_wire(mail.data);
  std::set<std::string> unique(names.begin(), names.end());
  CHECK(unique.size() == names.size());  // no field twice
  for (const auto& n : names)
    CHECK_MESSAGE(kExpectedFields.count(n) + (n == "in-reply-to") + (n == "references") > 0, n);
  const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
  CHECK(count_fields(e, "To") == 1);
  CHECK(count_fields(e, "Bcc") == 0);
  CHECK(count_fields(e, "Cc") == 0);
  CHECK(field(e, "Auto-Submitted") == "auto-replied");
  CHECK(lower(e.header().contentType().type()) == "multipart");
  CHECK(mime::is_msg_id(field(e, "Message-ID")));
  // The text part is there and the JSON part parses.
  bool json_found = false;
  for (const auto* p : e.body().parts()) {
    const auto ct =
        lower(p->header().contentType().type() + "/" + p->header().contentType().subtype());
    if (ct == "application/json") {
      json_found = true;
      const std::string& body = p->body();
      std::string decoded;
      if (lower(p->header().contentTransferEncoding().mechanism()) == "base64") {
        mimetic::Base64::Decoder d;
        mimetic::decode(body.begin(), body.end(), d, std::back_inserter(decoded));
      } else {
        decoded = body;
      }
      CHECK(nlohmann::json::accept(decoded));
    }
  }
  CHECK(json_found);
}

}  // namespace

TEST_CASE("render: golden reports") {
  const fs::path dir = fs::path(IPCONFIRM_TEST_DATA) / "report";
  const bool update = std::getenv("IPCONFIRM_UPDATE_GOLDEN") != nullptr;
  const Templates t = builtin();
  std::size_t n = 0;
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".json") inputs.push_back(entry.path());
  std::sort(inputs.begin(), inputs.end());
  for (const auto& in : inputs) {
    ++n;
    const std::string stem = in.stem().string();
    CAPTURE(stem);
    const auto report = nlohmann::ordered_json::parse(read_file(in));
    const Rendered r = render_report(t, report);
    fs::path txt = in, html = in;
    txt.replace_extension(".txt");
    html.replace_extension(".html");
    if (update) {
      write_file(txt, r.text);
      write_file(html, r.html);
    }
    CHECK(r.text == read_file(txt));
    CHECK(r.html == read_file(html));
    const std::string ip = report["connection"]["ip"].get<std::string>();
    CHECK(r.subject == "Your mail server connected from " + ip);
    // The connecting IP comes first.
    CHECK(r.text.rfind("YOUR MAIL SERVER CONNECTED FROM " + ip + "\n", 0) == 0);
    // Every hint is explained in the text, with its code.
    for (const auto& h : report["hints"])
      CHECK(r.text.find(h["code"].get<std::string>()) != std::string::npos);
    // Plain ASCII lines of at most 76 columns, so the text part goes as 7bit, unless the report
    // itself carries a long or non-ASCII value (the fixtures named *-hostile*).
    if (stem.find("hostile") == std::string::npos) {
      for (const auto& line : lines_of(r.text)) {
        CHECK_MESSAGE(line.size() <= 76, line);
        for (char c : line) CHECK(static_cast<unsigned char>(c) < 0x80);
      }
    }
  }
  CHECK(n >= 3);
}

TEST_CASE("render: each hint gets a plain-words title, who can fix it, and what to do") {
  Observation o = observation();
  o.ptr.done = true;
  o.ptr.status = DnsStatus::nxdomain;
  o.helo = "localhost";
  Report report = build_report(o, ReportOptions{"mx.example.test"});
  Rendered r = render_report(builtin(), report.json);
  CHECK(r.text.find("Your address has no name in the DNS") != std::string::npos);
  CHECK(r.text.find("internet provider") != std::string::npos);
  CHECK(r.text.find("Must fix (no-ptr)") != std::string::npos);
  CHECK(r.text.find("incomplete name") != std::string::npos);
  CHECK(r.html.find("Your address has no name in the DNS") != std::string::npos);
}

TEST_CASE("render: templates can be overridden by a folder") {
  const fs::path dir = fs::temp_directory_path() / ("ipconfirm-tpl-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_file(dir / "subject.mustache", "IP {{connection.ip}} / {{rdns.status}}\n");
  write_file(dir / "report.txt.mustache", "custom {{connection.ip}} {{view.ptr_text}}\n");
  write_file(dir / "report.html.mustache", "<p>{{connection.ip}} {{helo.name}}</p>\n");
  std::string error;
  auto t = load_templates(dir.string(), error);
  REQUIRE_MESSAGE(t, error);
  Observation o = observation();
  o.helo = "<b>x</b>";
  Report report = build_report(o, ReportOptions{"mx.example.test"});
  Rendered r = render_report(*t, report.json);
  CHECK(r.subject == "IP 192.0.2.10 / temperror");
  CHECK(r.text.rfind("custom 192.0.2.10 ", 0) == 0);
  CHECK(r.html.find("&lt;b&gt;x&lt;/b&gt;") != std::string::npos);  // HTML is escaped
  CHECK(r.html.find("<b>") == std::string::npos);

  // A missing file and a broken template are errors that name the file.
  fs::remove(dir / "report.html.mustache");
  CHECK_FALSE(load_templates(dir.string(), error));
  CHECK(error.find("report.html.mustache") != std::string::npos);
  write_file(dir / "report.html.mustache", "{{#open}} never closed\n");
  CHECK_FALSE(load_templates(dir.string(), error));
  CHECK(error.find("report.html.mustache") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("render: dotted names resolve from the innermost section out; no control character") {
  const fs::path dir =
      fs::temp_directory_path() / ("ipconfirm-tpl-dots-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_file(dir / "subject.mustache", "{{connection.ip}} {{extra.inner.word}}\n");
  write_file(dir / "report.txt.mustache",
             "{{#connection}}{{ip}} {{connection.ip}} {{extra.ctl}} {{extra.inner.word}}"
             "{{/connection}}|{{missing.x}}|{{connection.missing}}|{{#extra}}{{ctl}}{{/extra}}|"
             "{{#extra.list}}{{.}},{{/extra.list}}\n");
  write_file(dir / "report.html.mustache", "<p>{{extra.ctl}}</p>{{extra.html}}{{{extra.html}}}\n");
  std::string error;
  auto t = load_templates(dir.string(), error);
  REQUIRE_MESSAGE(t, error);
  Observation o = observation();
  Report report = build_report(o, ReportOptions{"mx.example.test"});
  report.json["extra"] = {{"inner", {{"word", "deep"}}},
                          {"list", {"x", "y"}},
                          {"ctl", "a\r\nb\tc\x7f"},
                          {"html", "<a href=\"x\">Tom & Jerry's</a>"}};
  const nlohmann::ordered_json before = report.json;
  Rendered r = render_report(*t, report.json);
  CHECK(r.subject == "192.0.2.10 deep");
  CHECK(r.text == "192.0.2.10 192.0.2.10 a  b c  deep|||a  b c |x,y,\n");
  CHECK(r.html ==
        "<p>a  b c </p>&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;"
        "<a href=\"x\">Tom & Jerry's</a>\n");
  CHECK(report.json == before);  // the caller's report is left as it was
  fs::remove_all(dir);
}

TEST_CASE("reply: an ordinary reply parses back with mimetic") {
  Observation o = observation();
  ReplyMail mail = reply_for(o);
  check_reply(mail, "alice@sender.test");
  const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
  CHECK(field(e, "In-Reply-To") == "<m1@sender.test>");
  CHECK(field(e, "Subject") == "Your mail server connected from 192.0.2.10");
  // The reply never echoes the original body.
  CHECK(mail.data.find("\r\nhi\r\n") == std::string::npos);
}

TEST_CASE("reply: injection attempts cannot add header fields or recipients") {
  const std::string evil = "\r\nBcc: victim@elsewhere.test\r\nX-Evil: 1";
  SUBCASE("HELO") {
    Observation o = observation();
    o.helo = "evil.test" + evil;
    check_reply(reply_for(o), "alice@sender.test");
  }
  SUBCASE("MAIL FROM local part") {
    Observation o = observation();
    o.mail_from = "\"a\r\nBcc: victim@elsewhere.test\"@sender.test";
    ReplyMail mail = reply_for(o);
    check_reply(mail, o.mail_from);
    CHECK(mail.data.find("\r\nBcc:") == std::string::npos);
  }
  SUBCASE("a quoted local part keeps its spaces and stays inside the brackets") {
    Observation o = observation();
    o.mail_from = "\"john doe\"@sender.test";
    ReplyMail mail = reply_for(o);
    check_reply(mail, o.mail_from);
    const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
    CHECK(field(e, "To") == "<\"john doe\"@sender.test>");
    o.mail_from = "\"john doe@sender.test>, victim@elsewhere.test";  // unbalanced quote
    mail = reply_for(o);
    const mimetic::MimeEntity e2(mail.data.begin(), mail.data.end());
    CHECK(field(e2, "To") == "<johndoe@sender.testvictim@elsewhere.test>");
  }
  SUBCASE("MAIL FROM with a display-name and angle brackets") {
    Observation o = observation();
    o.mail_from = "Eve <eve@evil.test>, victim@elsewhere.test";
    ReplyMail mail = reply_for(o);
    const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
    CHECK(count_fields(e, "To") == 1);
    CHECK(field(e, "To").find(',') == std::string::npos);
  }
  SUBCASE("Subject, Message-ID, References and Received of the incoming message") {
    Observation o = observation();
    std::string raw =
        "Subject: =?utf-8?Q?hi=0D=0ABcc:_victim@elsewhere.test?=\r\n"
        "Message-ID: <a@b>\r\n Bcc: victim@elsewhere.test\r\n"
        "References: <r1@x> <r2@x>\r\n X-Evil: 1\r\n"
        "Received: from evil.test (evil [192.0.2.99]) by mx.evil.test\r\n"
        " with ESMTP id 1\r\n\tBcc: victim@elsewhere.test; Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        "Received: from =?utf-8?B?w6nDqcOp?= ([10.0.0.1]) by h\xC3\xA9llo.test; "
        "Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n";
    o.message = mime::read_incoming(raw);
    // Even unchecked values straight into the observation.
    o.message.message_id = "<a@b>\r\nBcc: victim@elsewhere.test";
    o.message.references = "<r1@x>\r\nBcc: victim@elsewhere.test <r2@x>";
    ReplyMail mail = reply_for(o);
    check_reply(mail, "alice@sender.test");
    const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
    CHECK(count_fields(e, "In-Reply-To") == 0);  // not a valid msg-id: dropped
    CHECK(field(e, "References").find("Bcc") == std::string::npos);
  }
  SUBCASE("a custom subject template that echoes hostile values") {
    std::string error;
    const fs::path dir =
        fs::temp_directory_path() / ("ipconfirm-tpl-evil-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    write_file(dir / "subject.mustache", "Re {{helo.name}} {{envelope.mail_from}}");
    write_file(dir / "report.txt.mustache", "{{helo.name}}\n");
    write_file(dir / "report.html.mustache", "<p>{{helo.name}}</p>\n");
    auto t = load_templates(dir.string(), error);
    fs::remove_all(dir);
    REQUIRE(t);
    Observation o = observation();
    o.helo = std::string(2000, 'h') + evil + "\xC3\xA9\xFF";
    o.mail_from = "a" + evil + "@sender.test";
    ReplyMail mail = reply_for(o, *t);
    check_reply(mail, o.mail_from);
    const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
    CHECK(count_fields(e, "Subject") == 1);
  }
}

TEST_CASE(
    "reply: a U-label domain is written as A-labels, so that an ASCII local part needs no "
    "SMTPUTF8") {
  Observation o = observation();
  o.mail_from =
      "jorg@b\xC3\xBC"
      "cher.test";
  ReplyMail mail = reply_for(o);
  check_reply(mail, "jorg@xn--bcher-kva.test");  // the whole header is ASCII
  const mimetic::MimeEntity e(mail.data.begin(), mail.data.end());
  CHECK(field(e, "To") == "<jorg@xn--bcher-kva.test>");

  // A UTF-8 local part has no ASCII form: it stays (and needs SMTPUTF8); the domain is A-labels.
  o.mail_from =
      "j\xC3\xB6rg@b\xC3\xBC"
      "cher.test";
  CHECK(reply_for(o).recipient == "j\xC3\xB6rg@xn--bcher-kva.test");
  // ASCII and invalid IDNA stay as they are.
  o.mail_from = "Alice@Sender.Test";
  CHECK(reply_for(o).recipient == "Alice@Sender.Test");
  o.mail_from = "a@\xE2\x98\x83\xE2\x98\x83--.test";  // disallowed code points
  CHECK(reply_for(o).recipient == o.mail_from);
}

TEST_CASE("reply: PTR names and non-ASCII values are encoded, lines stay within 998") {
  Observation o = observation();
  o.ptr.done = true;
  o.ptr.status = DnsStatus::ok;
  DnsRecord rec;
  rec.type = RrType::ptr;
  rec.name = "10.2.0.192.in-addr.arpa";
  rec.text =
      std::string(60, 'p') + "." + std::string(60, 'q') + "." + std::string(60, 'r') + ".test";
  o.ptr.records.push_back(rec);
  rec.text = "evil.test\r\nBcc: victim@elsewhere.test\xFF";
  o.ptr.records.push_back(rec);
  o.helo = "h\xC3\xA9llo.test";
  ReplyMail mail = reply_for(o);
  check_reply(mail, "alice@sender.test");
}

namespace {

// The report as the library's own data, converted whole: what the renderer's names must find.
kainjow::mustache::data whole_data(const nlohmann::ordered_json& j) {
  using kainjow::mustache::data;
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::object: {
      data d{data::type::object};
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), whole_data(it.value()));
      return d;
    }
    case nlohmann::ordered_json::value_t::array: {
      data d{data::type::list};
      for (const auto& e : j) d.push_back(whole_data(e));
      return d;
    }
    case nlohmann::ordered_json::value_t::string:
      return data{j.get<std::string>()};
    case nlohmann::ordered_json::value_t::boolean:
      return data{j.get<bool>()};
    case nlohmann::ordered_json::value_t::null:
      return data{false};
    default:
      return data{j.dump()};
  }
}

}  // namespace

TEST_CASE("render: names are looked up as the library's own context looks them up") {
  // A custom template of every kind of lookup (dotted names from inside sections, lists of
  // scalars, of objects and of lists, inverted sections, the current item, missing names,
  // partials), rendered by render_report, which looks names up in the JSON, and by the
  // library itself on the whole report converted to its data.
  const std::string tmpl =
      "{{reporter}}|{{connection.ip}}|{{#rdns.ptr}}[{{.}}]{{/rdns.ptr}}|"
      "{{^rdns.ptr}}none{{/rdns.ptr}}|{{#hints}}{{code}}:{{severity}}:{{connection.ip}};"
      "{{/hints}}|{{#connection}}{{ip}}-{{reporter}}-{{tls.version}}{{/connection}}|"
      "{{#auth.dkim}}{{domain}} {{result}} {{auth.spf.result}};{{/auth.dkim}}|{{missing.name}}|"
      "{{#dns_log}}{{#answers}}{{.}},{{/answers}}{{/dns_log}}|"
      "{{#envelope.rcpt_to}}<{{.}}>{{/envelope.rcpt_to}}|{{#grid}}({{#.}}{{.}}{{/.}}){{/grid}}|"
      "{{#objs}}{{a.b}}{{#a}}{{b}}{{reporter}}{{/a}}{{/objs}}|{{^flag}}F{{/flag}}{{#flag}}T"
      "{{/flag}}|{{#n}}N{{/n}}{{^n}}no-n{{/n}}|{{num}} {{big}}|{{grid.0}}|{{#num}}{{.}}{{/num}}|"
      "{{#nested}}{{#inner}}{{x}}{{y}}{{/inner}}{{/nested}}|{{objs.a.b}}|{{#empty}}E{{/empty}}"
      "{{^empty}}not-E{{/empty}}|{{#emptyobj}}O{{/emptyobj}}|{{>partial_text}}|"
      "{{#rdns}}{{status}}{{#ptr}}{{status}}{{.}}{{/ptr}}{{/rdns}}\n";
  const fs::path dir = fs::path(IPCONFIRM_TEST_DATA) / "report";
  for (const char* name : {"01-all-good.json", "03-dynamic-listed.json", "05-hostile-values.json",
                           "06-dkim-body-changed.json"}) {
    CAPTURE(name);
    auto report = nlohmann::ordered_json::parse(read_file(dir / name));
    // Control characters would be cleaned by the renderer and not by the library: none here.
    report["grid"] = {{1, 2}, nlohmann::ordered_json::array(), {"a"}};
    report["objs"] = {{{"a", {{"b", "x"}}}}, {{"a", {{"b", "y"}, {"reporter", "inner"}}}}};
    report["flag"] = false;
    report["n"] = nullptr;
    report["num"] = 3.5;
    report["big"] = 12345678901LL;
    report["nested"] = {{"inner", {{{"x", "1"}}, {{"y", "2"}}}}, {"x", "outer"}};
    report["empty"] = nlohmann::ordered_json::array();
    report["emptyobj"] = nlohmann::ordered_json::object();
    report["partial_text"] = "{{reporter}}!";
    Templates t;
    t.subject = "s";
    t.text = tmpl;
    t.html = tmpl;
    const Rendered r = render_report(t, report);
    kainjow::mustache::mustache plain{tmpl};
    plain.set_custom_escape([](const std::string& s) { return s; });
    CHECK(r.text == plain.render(whole_data(report)));
    CHECK(r.text.find("|(12)()(a)|xxmx.example.testyyinner|F|no-n|3.5 12345678901||3.5|1outer2||"
                      "not-E|O|mx.example.test!|") != std::string::npos);
    kainjow::mustache::mustache html{tmpl};
    CHECK(r.html == html.render(whole_data(report)));
  }
}
