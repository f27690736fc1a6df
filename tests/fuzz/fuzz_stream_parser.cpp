// libFuzzer target for the XMPP stream parser and parse_element.
// Oracles beyond "no crash, no sanitizer report":
//  * feeding in one piece or in small chunks gives the same events and the same error (only
//    the moment an error is noticed may differ, so then one transcript is a prefix);
//  * reset() really starts over: the same input gives the same result again;
//  * every parsed element survives serialize -> parse_element unchanged.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"

namespace {

using multiend::Errc;
using namespace multiend::xml;

// Small limits so the fuzzer reaches every limit with small inputs.
StreamLimits fuzz_limits() {
  StreamLimits l;
  l.max_stanza_bytes = 2048;
  l.max_depth = 8;
  l.max_attributes = 8;
  l.max_token_bytes = 512;
  return l;
}

void check_round_trip(const Element& e) {
  StreamLimits roomy;  // escaping can make the text longer than what was parsed
  roomy.max_stanza_bytes = 1 << 24;
  roomy.max_token_bytes = 1 << 24;
  roomy.max_attributes = 1 << 16;
  roomy.max_depth = 64;
  const std::string text = serialize(e);
  auto back = parse_element(text, roomy);
  if (!back.has_value() || !(*back == e)) __builtin_trap();
}

struct Outcome {
  std::vector<std::string> events;
  Errc error = Errc::ok;
};

void drain(StreamParser& p, Outcome& out) {
  while (auto ev = p.next()) {
    if (auto* o = std::get_if<StreamOpened>(&*ev)) {
      std::string s = "open " + o->default_ns;
      for (const auto& [k, v] : o->attrs) s += "|" + k + "=" + v;
      out.events.push_back(std::move(s));
    } else if (auto* st = std::get_if<StanzaEvent>(&*ev)) {
      check_round_trip(st->stanza);
      out.events.push_back(serialize(st->stanza));
    } else {
      out.events.push_back("close");
    }
  }
}

Outcome run(StreamParser& p, std::string_view in, std::size_t chunk) {
  Outcome out;
  for (std::size_t i = 0; i < in.size(); i += chunk) {
    auto r = p.feed(in.substr(i, chunk));
    drain(p, out);
    if (!r) {
      out.error = static_cast<Errc>(r.error().value());
      // Sticky: a later feed reports the same error and produces nothing.
      auto again = p.feed("<x/>");
      if (again.has_value() || again.error() != r.error() || p.next()) __builtin_trap();
      break;
    }
  }
  return out;
}

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.size() > b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t chunk = size == 0 ? 1 : 1 + data[0] % 13;

  StreamParser whole_parser(fuzz_limits());
  const Outcome whole = run(whole_parser, in, in.size() + 1);
  StreamParser chunked_parser(fuzz_limits());
  const Outcome chunked = run(chunked_parser, in, chunk);

  // Chunking may move the moment an error is noticed (a size limit, or expat needing more
  // bytes before it judges the start of a document), never what is parsed before it.
  if (!is_prefix(whole.events, chunked.events) && !is_prefix(chunked.events, whole.events))
    __builtin_trap();
  if (whole.error == Errc::ok && chunked.error == Errc::ok && whole.events != chunked.events)
    __builtin_trap();
  if (whole.error != Errc::ok && chunked.error != Errc::ok && whole.error != chunked.error &&
      whole.error != Errc::xml_too_large && chunked.error != Errc::xml_too_large)
    __builtin_trap();

  chunked_parser.reset();
  const Outcome again = run(chunked_parser, in, chunk);
  if (again.error != chunked.error || again.events != chunked.events) __builtin_trap();

  if (auto e = parse_element(in, fuzz_limits())) check_round_trip(*e);
  return 0;
}
