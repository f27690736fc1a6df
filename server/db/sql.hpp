// Small helpers for building SQL with libpqxx's quoting (never by string pasting of raw input).
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "protocol/crypto/secret.hpp"

namespace multiend::server::sql {

inline std::string bytea(pqxx::transaction_base& tx, crypto::ByteView b) {
  return tx.quote_raw(b.data(), b.size());
}

// "(a, b, c)" of quoted values, for IN lists; never empty (callers check first).
template <class T>
std::string in_list(pqxx::transaction_base& tx, const std::vector<T>& values) {
  std::string out = "(";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += tx.quote(values[i]);
  }
  return out + ")";
}

inline crypto::Bytes bytes_of(const pqxx::field& f) {
  pqxx::binarystring b(f);
  return crypto::Bytes(b.begin(), b.end());
}

}  // namespace multiend::server::sql
