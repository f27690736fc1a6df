// XEP-0004 data forms (<x xmlns='jabber:x:data'>) as far as request parameters need them:
// the form type and its fields with their values. Owns the element layout and the bounds on
// untrusted forms; it does not know what any field means (MAM, publish-options, … decide that)
// and ignores titles, instructions, options, descriptions and multi-item result tables.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"
#include "protocol/xml/element.hpp"

namespace multiend::xmpp {

inline constexpr std::size_t kMaxFormFields = 64;
inline constexpr std::size_t kMaxFieldValues = 256;

struct FormField {
  std::string var;   // "" only for fields without a var (type 'fixed' labels)
  std::string type;  // "" when the sender gave none
  std::vector<std::string> values;
};

struct DataForm {
  std::string type;  // form, submit, cancel or result
  std::vector<FormField> fields;

  const FormField* field(std::string_view var) const;  // nullptr if absent
  // The field's first value; "" for a field present without a value; nullopt if absent.
  std::optional<std::string> value(std::string_view var) const;
  // The value of the hidden FORM_TYPE field (XEP-0068), if any.
  std::optional<std::string> form_type() const;
};

// `x` must be <x xmlns='jabber:x:data'> (else Errc::bad_element) with a type of form, submit,
// cancel or result (missing: bad_element; anything else: bad_request). Two fields with the same
// var are Errc::bad_request; more than kMaxFormFields fields or kMaxFieldValues values in one
// field are Errc::limit_exceeded. Values are kept verbatim (no trimming).
Result<DataForm> parse_data_form(const xml::Element& x);

// Writes var and type only when non-empty.
xml::Element data_form_to_xml(const DataForm& form);

}  // namespace multiend::xmpp
