// The OMEMO 2 XML elements: <bundle>, <devices>, <encrypted> and the SCE envelope, round trips
// and every kind of bad input a peer can send.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "protocol/omemo/bundle.hpp"
#include "protocol/omemo/device_list.hpp"
#include "protocol/omemo/encrypted_element.hpp"
#include "protocol/omemo/sce_envelope.hpp"
#include "protocol/xml/serializer.hpp"
#include "protocol/xml/stream_parser.hpp"
#include "tests/support/devices.hpp"

using namespace multiend;
using namespace multiend::omemo;

namespace {

Result<Bundle> bundle_of(std::string_view x) {
  auto e = xml::parse_element(x);
  if (!e) return e.error();
  return bundle_from_xml(*e);
}
Result<EncryptedMessage> encrypted_of(std::string_view x) {
  auto e = xml::parse_element(x);
  if (!e) return e.error();
  return encrypted_from_xml(*e);
}
Result<DeviceList> devices_of(std::string_view x) {
  auto e = xml::parse_element(x);
  if (!e) return e.error();
  return device_list_from_xml(*e);
}

const std::string k32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";  // 32 zero bytes
const std::string k64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

std::string bundle_xml(std::string spk_id, std::string pks) {
  return "<bundle xmlns='urn:xmpp:omemo:2'><spk id='" + spk_id + "'>" + k32 + "</spk><spks>" + k64 +
         "</spks><ik>" + k32 + "</ik><prekeys>" + pks + "</prekeys></bundle>";
}

}  // namespace

TEST_CASE("bundle: round trip of a real device's bundle") {
  auto d = test::make_device("alice@example.org", 5, 1);
  Bundle b = d->mgr.bundle();
  auto back = bundle_of(xml::serialize(bundle_to_xml(b)));
  REQUIRE(back.has_value());
  CHECK(back->spk_id == b.spk_id);
  CHECK(back->spk == b.spk);
  CHECK(back->spks == b.spks);
  CHECK(back->ik == b.ik);
  REQUIRE(back->prekeys.size() == 100);
  CHECK(back->prekeys[7].id == b.prekeys[7].id);
  CHECK(back->prekeys[7].key == b.prekeys[7].key);
}

TEST_CASE("bundle: children in any order, bad ids, sizes and counts refused") {
  CHECK(bundle_of(bundle_xml("1", "<pk id='3'>" + k32 + "</pk>")).has_value());
  CHECK(bundle_of("<bundle xmlns='urn:xmpp:omemo:2'><prekeys><pk id='1'>" + k32 + "</pk></prekeys><ik>" + k32 +
                  "</ik><spks>" + k64 + "</spks><spk id='9'>" + k32 + "</spk></bundle>")
            .has_value());
  CHECK(bundle_of(bundle_xml("0", "<pk id='3'>" + k32 + "</pk>")).error() == Errc::bad_element);
  CHECK(bundle_of(bundle_xml("2147483648", "<pk id='3'>" + k32 + "</pk>")).error() == Errc::bad_element);
  CHECK(bundle_of(bundle_xml("-1", "<pk id='3'>" + k32 + "</pk>")).error() == Errc::bad_element);
  CHECK(bundle_of(bundle_xml("1", "")).error() == Errc::no_prekeys);
  CHECK(bundle_of(bundle_xml("1", "<pk id='3'>AAAA</pk>")).error() == Errc::bad_key);
  CHECK(bundle_of(bundle_xml("1", "<pk id='3'>!!!!</pk>")).error() == Errc::bad_base64);
  CHECK(bundle_of(bundle_xml("1", "<pk>" + k32 + "</pk>")).error() == Errc::bad_element);
  std::string many;
  for (int i = 1; i <= 1001; ++i) many += "<pk id='" + std::to_string(i) + "'>" + k32 + "</pk>";
  CHECK(bundle_of(bundle_xml("1", many)).error() == Errc::limit_exceeded);
  CHECK(bundle_of("<bundle xmlns='urn:xmpp:omemo:1'/>").error() == Errc::bad_element);
}

TEST_CASE("device list: ids only on the way out, duplicates merged, limits") {
  DeviceList l{{{1, {}, {}}, {2147483647, std::string("phone"), std::string("c2ln")}}};
  std::string x = xml::serialize(device_list_to_xml(l));
  CHECK(x == "<devices xmlns='urn:xmpp:omemo:2'><device id='1'/><device id='2147483647'/></devices>");
  auto back = devices_of("<devices xmlns='urn:xmpp:omemo:2'><device id='4'/><device id='4' label='x'/>"
                         "<device id='5' label='tab' labelsig='c2ln'/></devices>");
  REQUIRE(back.has_value());
  REQUIRE(back->devices.size() == 2);
  CHECK(back->devices[1].label == "tab");
  CHECK(back->contains(4));
  CHECK_FALSE(back->contains(6));
  CHECK(devices_of("<devices xmlns='urn:xmpp:omemo:2'><device/></devices>").error() == Errc::bad_element);
  CHECK(devices_of("<devices xmlns='urn:xmpp:omemo:2'><device id='0'/></devices>").error() == Errc::bad_element);
  CHECK(devices_of("<devices xmlns='urn:xmpp:omemo:2'/>").value().devices.empty());
}

TEST_CASE("encrypted: kex written only as 'true', read as xs:boolean") {
  EncryptedMessage m;
  m.sid = 7;
  m.groups.push_back({"bob@example.org", {{1, true, {1, 2}}, {2, false, {3}}}});
  std::string x = xml::serialize(encrypted_to_xml(m));
  CHECK(x.find("kex='true'") != std::string::npos);
  CHECK(x.find("kex='false'") == std::string::npos);
  CHECK(x.find("<payload") == std::string::npos);
  auto back = encrypted_of(x);
  REQUIRE(back.has_value());
  CHECK(back->find_key("bob@example.org", 1)->kex);
  CHECK_FALSE(back->find_key("bob@example.org", 2)->kex);
  CHECK_FALSE(back->payload.has_value());
  const std::string head = "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='7'><keys jid='b@x.org'>";
  CHECK(encrypted_of(head + "<key rid='1' kex='1'>AQ==</key></keys></header></encrypted>")->groups[0].keys[0].kex);
  CHECK_FALSE(encrypted_of(head + "<key rid='1' kex='0'>AQ==</key></keys></header></encrypted>")->groups[0].keys[0].kex);
  CHECK(encrypted_of(head + "<key rid='1' kex='yes'>AQ==</key></keys></header></encrypted>").error() ==
        Errc::bad_element);
}

TEST_CASE("encrypted: malformed headers refused with a typed error") {
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><payload>AQ==</payload></encrypted>").error() ==
        Errc::bad_element);
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><header><keys jid='a@b'><key rid='1'>AQ==</key>"
                     "</keys></header></encrypted>")
            .error() == Errc::bad_element);
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/></encrypted>").error() ==
        Errc::bad_element);
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b/res'><key rid='1'>AQ==</key>"
                     "</keys></header></encrypted>")
            .error() == Errc::bad_element);
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'/></header></encrypted>")
            .error() == Errc::bad_element);
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key rid='1'>" +
                     std::string(2000, 'A') + "</key></keys></header></encrypted>")
            .error() == Errc::limit_exceeded);
  CHECK(encrypted_of("<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='a@b'><key rid='1'>AQ==</key>"
                     "</keys></header><payload></payload></encrypted>")
            .error() == Errc::bad_element);
}

TEST_CASE("SCE envelope: built with rpad and affixes, parsed back, server-only content dropped") {
  crypto::DeterministicRng rng(9);
  std::string env = build_envelope(text_envelope("Hello <Bob> & co", "alice@example.org", "2024-01-01T00:00:00Z"), rng);
  CHECK(env.find("<rpad>") != std::string::npos);
  auto back = parse_envelope(env);
  REQUIRE(back.has_value());
  CHECK(back->body() == "Hello <Bob> & co");
  CHECK(back->from == "alice@example.org");
  CHECK(back->time == "2024-01-01T00:00:00Z");
  CHECK_FALSE(back->to.has_value());

  auto with_hint = parse_envelope(
      "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>x</body>"
      "<store xmlns='urn:xmpp:hints'/><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='a'/></content></envelope>");
  REQUIRE(with_hint.has_value());
  CHECK(with_hint->content.size() == 1);
  CHECK(parse_envelope("<envelope xmlns='urn:xmpp:sce:1'/>").error() == Errc::bad_element);
  CHECK(parse_envelope("<body xmlns='jabber:client'>x</body>").error() == Errc::bad_element);
  CHECK_FALSE(parse_envelope("not xml").has_value());
  // Padding hides the length: two different short bodies give envelopes of varying size.
  std::string a = build_envelope(text_envelope("a", "x@y", "t"), rng);
  std::string b = build_envelope(text_envelope("a", "x@y", "t"), rng);
  CHECK(a != b);
}
