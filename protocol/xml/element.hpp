// A small namespace-aware XML element tree: name, namespace, attributes and ordered mixed
// content (child elements and text). It owns the tree's shape and its invariants (names that
// can be serialized); it knows nothing about parsing, serialization or XMPP.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace multiend::xml {

// Attribute names are stored as:
//   "name"           an unqualified attribute (the usual case),
//   "xml:lang"       an attribute in the XML namespace (xml:lang, xml:space, ...),
//   "{uri}name"      an attribute in any other namespace; the serializer invents a prefix.
// Element and attribute names are checked on construction / set_attr: an invalid name is a
// programmer error and throws std::invalid_argument. Values and text are not checked here;
// the serializer escapes them and replaces what XML 1.0 cannot carry.
class Element {
 public:
  // One item of mixed content: either a child element or a run of text.
  class Node {
   public:
    explicit Node(Element element);
    explicit Node(std::string text);
    Node(const Node& other);
    Node(Node&& other) noexcept;
    Node& operator=(const Node& other);
    Node& operator=(Node&& other) noexcept;
    ~Node();

    bool is_element() const noexcept { return element_ != nullptr; }
    const Element* element() const noexcept { return element_.get(); }  // nullptr for text
    Element* element() noexcept { return element_.get(); }
    const std::string& text() const noexcept { return text_; }  // empty for elements

    friend bool operator==(const Node& a, const Node& b);

   private:
    friend class Element;
    // unique_ptr keeps a child's address stable while siblings are added.
    std::unique_ptr<Element> element_;
    std::string text_;
  };

  explicit Element(std::string name, std::string ns = {});

  const std::string& name() const noexcept { return name_; }
  const std::string& ns() const noexcept { return ns_; }

  std::optional<std::string_view> attr(std::string_view name) const;
  Element& set_attr(std::string name, std::string value);  // replaces an existing value
  const std::vector<std::pair<std::string, std::string>>& attrs() const noexcept {
    return attrs_;
  }

  Element& add_child(Element child);    // returns the stored child
  Element& add_text(std::string text);  // merges with a preceding text node; returns *this

  // Empty ns means "the same namespace as this element".
  const Element* child(std::string_view name, std::string_view ns = {}) const;
  Element* child(std::string_view name, std::string_view ns = {});
  std::vector<const Element*> children(std::string_view name, std::string_view ns = {}) const;
  std::vector<const Element*> element_children() const;

  std::string text() const;  // concatenation of the direct text nodes

  // Ordered mixed content, for the serializer and for generic walks.
  const std::vector<Node>& nodes() const noexcept { return nodes_; }

  // Heap and object memory the tree holds (approximate, from capacities): what a stanza costs
  // while it is held, which can be many times its size on the wire.
  std::size_t memory_bytes() const noexcept;

  // Structural equality: names, namespaces, attributes (in order) and content.
  friend bool operator==(const Element& a, const Element& b);

 private:
  std::string name_;
  std::string ns_;
  std::vector<std::pair<std::string, std::string>> attrs_;
  std::vector<Node> nodes_;
};

}  // namespace multiend::xml
