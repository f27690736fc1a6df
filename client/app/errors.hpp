// What the client reports to its user. Expected failures a user can act on are ClientError
// with a kind that the CLI maps to its exit code; anything else is a bug or a setup problem.
#pragma once

#include <stdexcept>
#include <string>

namespace multiend::client {

enum class ErrorKind {
  usage = 1,        // bad arguments or a state file that does not fit the command
  connection = 2,   // the XMPP server cannot be reached, refused us, or went away
  refused = 3,      // the component or a peer refused what we asked (unknown recipient, …)
  state = 4,        // the state file is unusable (missing, corrupt, another program's)
};

class ClientError : public std::runtime_error {
 public:
  ClientError(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace multiend::client
