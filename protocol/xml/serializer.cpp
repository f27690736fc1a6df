#include "protocol/xml/serializer.hpp"

#include <array>

#include "protocol/utf8.hpp"

#include <algorithm>
#include <vector>

namespace multiend::xml {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";

// Length of a valid, XML-1.0-allowed UTF-8 sequence (>= 2 bytes) at s[i]; 0 if not.
std::size_t valid_multibyte(std::string_view s, std::size_t i) {
  char32_t cp = 0;
  const std::size_t len = utf8::decode(s, i, cp);
  if (len < 2 || cp == 0xFFFE || cp == 0xFFFF) return 0;  // not XML Chars
  return len;
}

// Escapes s into out. In attribute values quotes and whitespace other than space are
// escaped too: attribute-value normalization would otherwise turn tab/LF into spaces.
// Bytes copied as they are: printable ASCII that needs no reference (in attributes, no quotes
// either). Runs of them (base64 payloads are nothing else) are appended at once.
constexpr std::array<bool, 256> plain_table(bool attribute) {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '&' && c != '<' && c != '>' && c != 0x7f;
  t[0x7f] = true;
  if (attribute) t['"'] = t['\''] = false;
  return t;
}
constexpr auto kPlainText = plain_table(false);
constexpr auto kPlainAttr = plain_table(true);

void escape(std::string_view s, std::string& out, bool attribute) {
  out.reserve(out.size() + s.size());
  const auto& plain = attribute ? kPlainAttr : kPlainText;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t j = i;
    while (j < s.size() && plain[static_cast<unsigned char>(s[j])]) ++j;
    if (j > i) {
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const std::size_t len = valid_multibyte(s, i);
      if (len == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '&': out += "&amp;"; continue;
      case '<': out += "&lt;"; continue;
      case '>': out += "&gt;"; continue;  // also keeps "]]>" out of text
      case '\r': out += "&#13;"; continue;
      case '"': out += attribute ? "&quot;" : "\""; continue;
      case '\'': out += attribute ? "&apos;" : "'"; continue;
      case '\t': out += attribute ? "&#9;" : "\t"; continue;
      case '\n': out += attribute ? "&#10;" : "\n"; continue;
      default: break;
    }
    if (u < 0x20) {
      out += kReplacement;  // C0 controls cannot appear in XML 1.0, not even as references
      continue;
    }
    out += c;
  }
}

void write_attr(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "='";
  escape(value, out, true);
  out += '\'';
}

struct Rename {
  std::string_view from, to;
};

void write(const Element& e, std::string& out, std::string_view parent_ns, const Rename* rename) {
  const std::string_view ns = rename && e.ns() == rename->from ? rename->to : std::string_view(e.ns());
  // The XML namespace may not be the default namespace; it always has the prefix xml.
  const bool xml_prefixed = ns == kXmlNs;
  const std::string qname = xml_prefixed ? "xml:" + e.name() : e.name();
  const std::string_view default_ns = xml_prefixed ? parent_ns : ns;
  out += '<';
  out += qname;
  if (default_ns != parent_ns) write_attr(out, "xmlns", default_ns);

  // Prefixes for "{uri}name" attributes are local to this element; each element that needs
  // one declares its own, so no prefix bookkeeping crosses element boundaries.
  std::vector<std::string_view> prefixed_ns;
  for (const auto& [name, value] : e.attrs()) {
    if (name.empty() || name.front() != '{') {
      write_attr(out, name, value);
      continue;
    }
    const std::size_t close = name.rfind('}');
    const std::string_view uri = std::string_view(name).substr(1, close - 1);
    auto it = std::find(prefixed_ns.begin(), prefixed_ns.end(), uri);
    const std::string prefix = "ns" + std::to_string(it - prefixed_ns.begin());
    if (it == prefixed_ns.end()) {
      prefixed_ns.push_back(uri);
      write_attr(out, "xmlns:" + prefix, uri);
    }
    write_attr(out, prefix + ":" + name.substr(close + 1), value);
  }

  if (e.nodes().empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const Element::Node& n : e.nodes()) {
    if (n.is_element())
      write(*n.element(), out, default_ns, rename);
    else
      escape(n.text(), out, false);
  }
  out += "</";
  out += qname;
  out += '>';
}

}  // namespace

std::string serialize(const Element& element) {
  std::string out;
  serialize_to(element, out, {});
  return out;
}

void serialize_to(const Element& element, std::string& out, std::string_view parent_ns) {
  write(element, out, parent_ns, nullptr);
}

std::string serialize_renamed(const Element& element, std::string_view from_ns, std::string_view to_ns) {
  const Rename rename{from_ns, to_ns};
  std::string out;
  write(element, out, {}, &rename);
  return out;
}

}  // namespace multiend::xml
