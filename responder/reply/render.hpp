// Renders the report into the reply's Subject, text and HTML with mustache templates
// (templates/*.mustache, compiled in; a postmaster can point [reply] templates at their own).
//
// The templates see the report's JSON exactly as it is attached to the reply, plus a `view`
// object of ready-made phrases (yes/no words, wrapped hint texts, one line per Received hop),
// so that custom templates need no logic. The text template is rendered without HTML escaping,
// the HTML one with it. Rendering never fails at run time: templates are checked when loaded.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ipconfirm::responder {

struct Templates {
  // html is the reply mail's HTML part (inline styles, for mail clients); page is the web page
  // of a stored report (GET /r/TOKEN: one <style> element, no style attributes, for its CSP).
  std::string subject, text, html, page;
  // The three templates parsed once by load_templates, so that a report is only rendered, not
  // parsed again. Copies share them: render from one thread at a time (the event loop).
  struct Parsed;
  std::shared_ptr<Parsed> parsed;
};

// Loads subject.mustache, report.txt.mustache, report.html.mustache and
// report.page.html.mustache from `dir`, or the built-in ones when `dir` is empty. nullopt, with
// `error` naming the file, when a file is missing or does not parse. (A folder without the page
// template, written before there were pages, gets the built-in page.)
std::optional<Templates> load_templates(const std::string& dir, std::string& error);

struct Rendered {
  std::string subject, text, html;
};

Rendered render_report(const Templates& templates, const nlohmann::ordered_json& report);
// The text part alone (what render_report(...).text is), for GET /r/TOKEN.txt.
std::string render_text(const Templates& templates, const nlohmann::ordered_json& report);
// The web page of a stored report (GET /r/TOKEN): the same view as the mail, plus the report's
// JSON, pretty-printed, for the folded section below.
std::string render_page(const Templates& templates, const nlohmann::ordered_json& report);

// Wraps text at `width` columns on spaces, indenting continuation lines by `indent` spaces.
std::string wrap(std::string_view text, std::size_t width, std::size_t indent = 0);

}  // namespace ipconfirm::responder
