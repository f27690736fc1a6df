#include "protocol/xml/element.hpp"

#include "protocol/utf8.hpp"

#include <stdexcept>

namespace multiend::xml {
namespace {

constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";
constexpr std::string_view kXmlnsNs = "http://www.w3.org/2000/xmlns/";

// XML 1.0 (5th ed.) NameStartChar / NameChar, without ':' (names here are local names).
bool is_name_start(char32_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) ||
         (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) ||
         (c >= 0x200C && c <= 0x200D) || (c >= 0x2070 && c <= 0x218F) ||
         (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF) ||
         (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD) ||
         (c >= 0x10000 && c <= 0xEFFFF);
}

bool is_name_char(char32_t c) {
  return is_name_start(c) || c == '-' || c == '.' || (c >= '0' && c <= '9') || c == 0xB7 ||
         (c >= 0x300 && c <= 0x36F) || (c >= 0x203F && c <= 0x2040);
}

bool is_ncname(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t len = utf8::decode(s, i, cp);
    if (len == 0 || !(i == 0 ? is_name_start(cp) : is_name_char(cp))) return false;
    i += len;
  }
  return true;
}

// Brings an attribute name into the stored form (see element.hpp), or throws.
std::string normalize_attr_name(std::string name) {
  if (!name.empty() && name.front() == '{') {
    const std::size_t close = name.rfind('}');
    if (close == std::string::npos || close == 1)
      throw std::invalid_argument("xml: bad qualified attribute name");
    const std::string_view uri = std::string_view(name).substr(1, close - 1);
    const std::string_view local = std::string_view(name).substr(close + 1);
    if (!is_ncname(local) || uri == kXmlnsNs)
      throw std::invalid_argument("xml: bad qualified attribute name");
    if (uri == kXmlNs) return "xml:" + std::string(local);
    return name;
  }
  if (name.starts_with("xml:") && is_ncname(std::string_view(name).substr(4))) return name;
  // xmlns declarations are derived from namespaces by the serializer, never stored.
  if (!is_ncname(name) || name == "xmlns")
    throw std::invalid_argument("xml: bad attribute name '" + name + "'");
  return name;
}

}  // namespace

Element::Node::Node(Element element) : element_(std::make_unique<Element>(std::move(element))) {}
Element::Node::Node(std::string text) : text_(std::move(text)) {}
Element::Node::Node(const Node& other)
    : element_(other.element_ ? std::make_unique<Element>(*other.element_) : nullptr),
      text_(other.text_) {}
Element::Node::Node(Node&& other) noexcept = default;
Element::Node& Element::Node::operator=(const Node& other) {
  if (this != &other) *this = Node(other);
  return *this;
}
Element::Node& Element::Node::operator=(Node&& other) noexcept = default;
Element::Node::~Node() = default;

bool operator==(const Element::Node& a, const Element::Node& b) {
  if (a.is_element() != b.is_element()) return false;
  return a.is_element() ? *a.element_ == *b.element_ : a.text_ == b.text_;
}

Element::Element(std::string name, std::string ns) : name_(std::move(name)), ns_(std::move(ns)) {
  if (!is_ncname(name_)) throw std::invalid_argument("xml: bad element name '" + name_ + "'");
}

std::optional<std::string_view> Element::attr(std::string_view name) const {
  for (const auto& [k, v] : attrs_)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

Element& Element::set_attr(std::string name, std::string value) {
  name = normalize_attr_name(std::move(name));
  for (auto& [k, v] : attrs_) {
    if (k == name) {
      v = std::move(value);
      return *this;
    }
  }
  attrs_.emplace_back(std::move(name), std::move(value));
  return *this;
}

Element& Element::add_child(Element child) {
  nodes_.emplace_back(std::move(child));
  return *nodes_.back().element_;
}

Element& Element::add_text(std::string text) {
  if (text.empty()) return *this;
  if (!nodes_.empty() && !nodes_.back().is_element())
    nodes_.back().text_ += text;
  else
    nodes_.emplace_back(std::move(text));
  return *this;
}

const Element* Element::child(std::string_view name, std::string_view ns) const {
  if (ns.empty()) ns = ns_;
  for (const Node& n : nodes_)
    if (n.is_element() && n.element_->name_ == name && n.element_->ns_ == ns)
      return n.element_.get();
  return nullptr;
}

Element* Element::child(std::string_view name, std::string_view ns) {
  return const_cast<Element*>(std::as_const(*this).child(name, ns));
}

std::vector<const Element*> Element::children(std::string_view name, std::string_view ns) const {
  if (ns.empty()) ns = ns_;
  std::vector<const Element*> out;
  for (const Node& n : nodes_)
    if (n.is_element() && n.element_->name_ == name && n.element_->ns_ == ns)
      out.push_back(n.element_.get());
  return out;
}

std::vector<const Element*> Element::element_children() const {
  std::vector<const Element*> out;
  for (const Node& n : nodes_)
    if (n.is_element()) out.push_back(n.element_.get());
  return out;
}

std::string Element::text() const {
  std::string out;
  for (const Node& n : nodes_)
    if (!n.is_element()) out += n.text_;
  return out;
}

bool operator==(const Element& a, const Element& b) {
  return a.name_ == b.name_ && a.ns_ == b.ns_ && a.attrs_ == b.attrs_ && a.nodes_ == b.nodes_;
}

namespace {
std::size_t heap_of(const std::string& s) noexcept {
  // Short strings live inside the object (libstdc++ keeps up to 15 characters there).
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}
}  // namespace

std::size_t Element::memory_bytes() const noexcept {
  std::size_t n = sizeof(Element) + heap_of(name_) + heap_of(ns_) +
                  attrs_.capacity() * sizeof(std::pair<std::string, std::string>) + nodes_.capacity() * sizeof(Node);
  for (const auto& [k, v] : attrs_) n += heap_of(k) + heap_of(v);
  for (const Node& node : nodes_) n += node.element() ? node.element()->memory_bytes() : heap_of(node.text());
  return n;
}

}  // namespace multiend::xml
