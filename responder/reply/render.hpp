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
  std::string subject, text, html;
  // The three templates parsed once by load_templates, so that a report is only rendered, not
  // parsed again. Copies share them: render from one thread at a time (the event loop).
  struct Parsed;
  std::shared_ptr<Parsed> parsed;
};

// Loads subject.mustache, report.txt.mustache and report.html.mustache from `dir`, or the
// built-in ones when `dir` is empty. nullopt, with `error` naming the file, when a file is
// missing or does not parse.
std::optional<Templates> load_templates(const std::string& dir, std::string& error);

struct Rendered {
  std::string subject, text, html;
};

Rendered render_report(const Templates& templates, const nlohmann::ordered_json& report);

// Wraps text at `width` columns on spaces, indenting continuation lines by `indent` spaces.
std::string wrap(std::string_view text, std::size_t width, std::size_t indent = 0);

}  // namespace ipconfirm::responder
