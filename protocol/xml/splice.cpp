#include "protocol/xml/splice.hpp"

#include <stdexcept>

#include "protocol/xml/serializer.hpp"

namespace multiend::xml {
namespace {

constexpr std::string_view kNs = "urn:multiend:splice-point";
// How the serializer writes splice_point() inside any parent of another namespace. Attribute
// values and text are escaped ('<' becomes &lt;), so this cannot appear anywhere else.
constexpr std::string_view kWritten = "<splice xmlns='urn:multiend:splice-point'/>";

}  // namespace

Element splice_point() { return Element("splice", std::string(kNs)); }

void serialize_spliced(const Element& wrapper, std::string_view fragment, std::string& out, std::string_view parent_ns) {
  const std::size_t start = out.size();
  serialize_to(wrapper, out, parent_ns);
  const std::size_t at = out.find(kWritten, start);
  if (at == std::string::npos) throw std::invalid_argument("serialize_spliced: the wrapper has no splice point");
  out.replace(at, kWritten.size(), fragment);
}

}  // namespace multiend::xml
