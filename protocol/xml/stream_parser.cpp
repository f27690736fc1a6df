#include "protocol/xml/stream_parser.hpp"

#include <expat.h>

#include <algorithm>
#include <climits>
#include <deque>
#include <limits>
#include <new>

namespace multiend::xml {
namespace {

// Separates namespace URI and local name in names expat reports. U+0001 cannot occur in
// XML 1.0 text (not even as &#1;), so it cannot be smuggled into a URI.
constexpr char kSep = '\x01';
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";
// XML_Parse takes an int length.
constexpr std::size_t kMaxChunk = INT_MAX / 2;

struct QName {
  std::string_view ns;
  std::string_view local;
};

QName split(const XML_Char* raw) {
  const std::string_view s(raw);
  const std::size_t sep = s.find(kSep);
  if (sep == std::string_view::npos) return {{}, s};
  return {s.substr(0, sep), s.substr(sep + 1)};
}

// Attribute name in the stored form documented in element.hpp.
std::string attr_name(const XML_Char* raw) {
  const QName q = split(raw);
  if (q.ns.empty()) return std::string(q.local);
  if (q.ns == kXmlNs) return "xml:" + std::string(q.local);
  std::string out;
  out.reserve(q.ns.size() + q.local.size() + 2);
  out += '{';
  out += q.ns;
  out += '}';
  out += q.local;
  return out;
}

bool is_xml_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

Errc map_expat_error(XML_Error code) {
  switch (code) {
    case XML_ERROR_PARAM_ENTITY_REF:
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_RECURSIVE_ENTITY_REF:
    case XML_ERROR_ASYNC_ENTITY:
    case XML_ERROR_BINARY_ENTITY_REF:
    case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
    case XML_ERROR_MISPLACED_XML_PI:  // an XML declaration after the start
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_NOT_STANDALONE:
    case XML_ERROR_ENTITY_DECLARED_IN_PE:
    case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
      return Errc::xml_restricted;
    default:
      return Errc::xml_malformed;
  }
}

}  // namespace

struct StreamParser::Impl {
  StreamLimits limits;
  bool fragment;  // parse_element: no stream wrapper, the root is the "stanza"

  XML_Parser parser = nullptr;
  std::deque<StreamEvent> events;
  std::optional<Errc> error;
  std::size_t fed = 0;        // bytes handed to expat since the stream started
  std::size_t quiescent = 0;  // byte offset where the last completed event ended
  std::size_t last_event = 0; // byte offset where the last event of any kind ended
  std::size_t open = 0;       // open elements including the stream (virtual in fragment mode)
  std::string stream_default_ns;
  std::optional<Element> stanza;
  std::vector<Element*> stack;  // open elements of the stanza being built

  Impl(StreamLimits l, bool frag) : limits(l), fragment(frag) { start(); }
  ~Impl() { XML_ParserFree(parser); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void start() {
    parser = XML_ParserCreateNS("UTF-8", kSep);  // forced UTF-8 overrides any declaration
    if (parser == nullptr) throw std::bad_alloc();
    XML_SetUserData(parser, this);
    XML_SetElementHandler(parser, &on_start, &on_end);
    XML_SetCharacterDataHandler(parser, &on_text);
    XML_SetStartNamespaceDeclHandler(parser, &on_ns_decl);
    XML_SetXmlDeclHandler(parser, &on_xml_decl);
    // Everything RFC 6120 §11.1 forbids. Without a DTD no entity can be declared, so the
    // billion-laughs surface is gone; parameter entities are off for good measure.
    XML_SetCommentHandler(parser, &on_comment);
    XML_SetProcessingInstructionHandler(parser, &on_pi);
    XML_SetStartDoctypeDeclHandler(parser, &on_doctype);
    XML_SetEntityDeclHandler(parser, &on_entity_decl);
    XML_SetUnparsedEntityDeclHandler(parser, &on_unparsed_entity_decl);
    XML_SetNotationDeclHandler(parser, &on_notation_decl);
    XML_SetSkippedEntityHandler(parser, &on_skipped_entity);
    XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6)
    // Deferral could hold back a complete stanza until more bytes arrive, which stalls an
    // interactive stream; re-scanning of unfinished tokens is bounded by max_token_bytes.
    XML_SetReparseDeferralEnabled(parser, XML_FALSE);
#endif
    open = fragment ? 1 : 0;
  }

  void restart() {
    XML_ParserFree(parser);
    parser = nullptr;
    events.clear();
    error.reset();
    fed = quiescent = last_event = 0;
    stream_default_ns.clear();
    stanza.reset();
    stack.clear();
    start();
  }

  // Records the first error and makes expat return as soon as the handler does.
  void fail(Errc e) {
    if (!error) error = e;
    XML_StopParser(parser, XML_FALSE);
  }

  std::size_t event_end() const {
    return static_cast<std::size_t>(XML_GetCurrentByteIndex(parser)) +
           static_cast<std::size_t>(XML_GetCurrentByteCount(parser));
  }

  // Notes that expat got past a token; everything before `end` will not be re-scanned.
  void mark(std::size_t end) { last_event = std::max(last_event, end); }

  bool within_limit(std::size_t end) {
    if (end - quiescent <= limits.max_stanza_bytes) return true;
    fail(Errc::xml_too_large);
    return false;
  }

  // expat reports a DOCTYPE (or any other markup declaration) after the prolog, i.e. inside the
  // stream, as a plain syntax error; RFC 6120 §11.1 makes it restricted XML wherever it is.
  Errc classify_expat_error() const {
    const Errc e = map_expat_error(XML_GetErrorCode(parser));
    if (e != Errc::xml_malformed) return e;
    int offset = 0, size = 0;
    const char* context = XML_GetInputContext(parser, &offset, &size);  // null without XML_CONTEXT_BYTES
    if (context == nullptr || offset < 0 || offset > size) return e;
    // expat points just past the "<!" of the declaration it refuses.
    const std::string_view before(context, static_cast<std::size_t>(offset));
    const std::string_view at(context + offset, static_cast<std::size_t>(size - offset));
    const bool declaration = before.ends_with("<!") && !at.empty() && at[0] >= 'A' && at[0] <= 'Z';
    return declaration ? Errc::xml_restricted : e;
  }

  Result<void> feed(std::string_view bytes, bool final) {
    if (error) return *error;
    do {
      // Never give expat more than one byte past the budget: it would buffer an unfinished
      // token however long it is.
      const std::size_t remaining = limits.max_stanza_bytes - (fed - quiescent);
      const std::size_t budget =
          remaining == std::numeric_limits<std::size_t>::max() ? remaining : remaining + 1;
      const std::size_t n = std::min({bytes.size(), budget, kMaxChunk});
      const bool last = final && n == bytes.size();
      if (XML_Parse(parser, bytes.data(), static_cast<int>(n), last) != XML_STATUS_OK) {
        if (!error) error = classify_expat_error();
        return *error;
      }
      fed += n;
      bytes.remove_prefix(n);
      // An unfinished token that long would make every later feed re-scan it.
      if (fed - quiescent > limits.max_stanza_bytes || fed - last_event > limits.max_token_bytes) {
        error = Errc::xml_too_large;
        return *error;
      }
    } while (!bytes.empty());
    return {};
  }

  void start_element(const XML_Char* raw_name, const XML_Char** atts) {
    const std::size_t level = open;
    if (level > limits.max_depth) return fail(Errc::xml_too_deep);
    std::size_t n_atts = 0;
    while (atts[2 * n_atts] != nullptr) ++n_atts;
    if (n_atts > limits.max_attributes) return fail(Errc::xml_too_large);
    const std::size_t end = event_end();
    mark(end);
    if (static_cast<std::size_t>(XML_GetCurrentByteCount(parser)) > limits.max_token_bytes)
      return fail(Errc::xml_too_large);
    if (!within_limit(end)) return;
    const QName q = split(raw_name);

    if (level == 0) {
      if (q.local != "stream" || q.ns != kStreamNs) return fail(Errc::xml_bad_stream);
      StreamOpened opened;
      for (std::size_t i = 0; i < n_atts; ++i)
        opened.attrs.emplace_back(attr_name(atts[2 * i]), atts[2 * i + 1]);
      opened.default_ns = std::move(stream_default_ns);
      events.emplace_back(std::move(opened));
      quiescent = end;
      open = 1;
      return;
    }

    Element e{std::string(q.local), std::string(q.ns)};
    for (std::size_t i = 0; i < n_atts; ++i) e.set_attr(attr_name(atts[2 * i]), atts[2 * i + 1]);
    if (level == 1) {
      stanza.emplace(std::move(e));
      stack.assign(1, &*stanza);
    } else {
      stack.push_back(&stack.back()->add_child(std::move(e)));
    }
    ++open;
  }

  void end_element() {
    const std::size_t end = event_end();
    mark(end);
    --open;
    if (open == 0) {  // only in stream mode: </stream:stream>
      events.emplace_back(StreamClosed{});
      quiescent = end;
      return;
    }
    if (open > 1) {
      stack.pop_back();
      return;
    }
    if (!within_limit(end)) return;
    events.emplace_back(StanzaEvent{std::move(*stanza)});
    stanza.reset();
    stack.clear();
    quiescent = end;
  }

  void text(std::string_view s) {
    mark(event_end());
    if (stack.empty()) {  // between stanzas: only whitespace keepalives belong here
      if (!is_xml_space(s)) return fail(Errc::xml_malformed);
      const std::size_t end = event_end();
      if (within_limit(end)) quiescent = end;
      return;
    }
    stack.back()->add_text(std::string(s));
  }

  // expat is C: no exception may cross it, and nothing runs after a stop.
  template <class F>
  static void guarded(void* ud, F&& f) {
    auto* self = static_cast<Impl*>(ud);
    if (self->error) return;
    try {
      f(*self);
    } catch (...) {  // invalid name from the wire (std::invalid_argument) or allocation
      self->fail(Errc::xml_malformed);
    }
  }

  static void on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
    guarded(ud, [&](Impl& s) { s.start_element(name, atts); });
  }
  static void on_end(void* ud, const XML_Char*) {
    guarded(ud, [](Impl& s) { s.end_element(); });
  }
  static void on_text(void* ud, const XML_Char* s, int len) {
    guarded(ud, [&](Impl& self) { self.text(std::string_view(s, static_cast<std::size_t>(len))); });
  }
  static void on_ns_decl(void* ud, const XML_Char* prefix, const XML_Char* uri) {
    // Declarations arrive before their element's start handler.
    guarded(ud, [&](Impl& s) {
      if (!s.fragment && s.open == 0 && prefix == nullptr) s.stream_default_ns = uri ? uri : "";
    });
  }
  static void on_xml_decl(void* ud, const XML_Char*, const XML_Char* encoding, int) {
    guarded(ud, [&](Impl& s) {
      s.mark(s.event_end());
      if (encoding != nullptr && !iequals_ascii(encoding, "UTF-8")) s.fail(Errc::xml_restricted);
    });
  }
  static void restricted(void* ud) {
    guarded(ud, [](Impl& s) { s.fail(Errc::xml_restricted); });
  }
  static void on_comment(void* ud, const XML_Char*) { restricted(ud); }
  static void on_pi(void* ud, const XML_Char*, const XML_Char*) { restricted(ud); }
  static void on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    restricted(ud);
  }
  static void on_entity_decl(void* ud, const XML_Char*, int, const XML_Char*, int,
                             const XML_Char*, const XML_Char*, const XML_Char*,
                             const XML_Char*) {
    restricted(ud);
  }
  static void on_unparsed_entity_decl(void* ud, const XML_Char*, const XML_Char*,
                                      const XML_Char*, const XML_Char*, const XML_Char*) {
    restricted(ud);
  }
  static void on_notation_decl(void* ud, const XML_Char*, const XML_Char*, const XML_Char*,
                               const XML_Char*) {
    restricted(ud);
  }
  static void on_skipped_entity(void* ud, const XML_Char*, int) { restricted(ud); }
};

StreamParser::StreamParser(StreamLimits limits) : StreamParser(limits, false) {}
StreamParser::StreamParser(StreamLimits limits, bool fragment)
    : impl_(std::make_unique<Impl>(limits, fragment)) {}
StreamParser::~StreamParser() = default;
StreamParser::StreamParser(StreamParser&&) noexcept = default;
StreamParser& StreamParser::operator=(StreamParser&&) noexcept = default;

Result<void> StreamParser::feed(std::string_view bytes) {
  if (bytes.empty()) return impl_->error ? Result<void>(*impl_->error) : Result<void>();
  return impl_->feed(bytes, false);
}

std::optional<StreamEvent> StreamParser::next() {
  if (impl_->events.empty()) return std::nullopt;
  StreamEvent ev = std::move(impl_->events.front());
  impl_->events.pop_front();
  return ev;
}

void StreamParser::reset() { impl_->restart(); }

std::size_t StreamParser::pending_bytes() const noexcept { return impl_->fed - impl_->quiescent; }

Result<Element> parse_element(std::string_view xml, StreamLimits limits) {
  if (xml.size() > limits.max_stanza_bytes) return Errc::xml_too_large;
  StreamParser p(limits, true);
  if (auto r = p.impl_->feed(xml, true); !r) return r.error();
  auto ev = p.next();
  if (!ev || !std::holds_alternative<StanzaEvent>(*ev)) return Errc::xml_malformed;
  return std::move(std::get<StanzaEvent>(*ev).stanza);
}

}  // namespace multiend::xml
