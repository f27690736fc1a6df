// A thin RAII layer over the sqlite3 C API for the client's state file.
//
//  * Database: one connection to one file. Opening creates a missing file with mode 0600
//    (symlinks and non-regular files are refused) and sets synchronous=FULL, foreign_keys=ON,
//    secure_delete=ON. Once the caller knows the file is ours (schema.hpp), make_private()
//    tightens an existing file to 0600 and enable_wal() switches to WAL, so a foreign
//    database opened by mistake is left as it was. It runs no migrations (schema.hpp does).
//    Every failure throws sqlite::Error, whose what() names the file and says what went wrong
//    ("state file '/x/dev.db': cannot open: file is not a database"); nothing is printed.
//  * Query: a cached prepared statement in use; it resets itself and clears its bindings when
//    it goes out of scope, so no statement keeps a read transaction open by accident.
//  * atomically(f): all of f's writes or none. Outside a transaction it is BEGIN IMMEDIATE …
//    COMMIT (then a truncating WAL checkpoint, see Options); inside one it is a SAVEPOINT, so a
//    store call that fails inside the caller's transaction undoes only its own writes.
//  * Transaction: the caller's explicit transaction (BEGIN IMMEDIATE), committed by commit()
//    and rolled back on destruction otherwise. Only one level: a nested begin is a
//    std::logic_error (a nested "commit" that commits nothing would be a lie).
//
// Not thread-safe: one Database is used by one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "protocol/crypto/secret.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace multiend::client::sqlite {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  // SQLite's extended result code, SQLITE_CORRUPT for unreadable stored values, or 0 for
  // failures outside SQLite (open(2), chmod).
  int code() const noexcept { return code_; }

 private:
  int code_;
};

class Database;

// A prepared statement in use. Text and blob bindings are not copied: the bound data must
// live until the Query is destroyed. Column views are valid until the next step().
class Query {
 public:
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  Query& bind(int index, std::int64_t value);
  Query& bind(int index, std::string_view text);
  Query& bind_optional(int index, const std::optional<std::string>& text);
  Query& bind_blob(int index, crypto::ByteView bytes);
  Query& bind_null(int index);

  bool step();  // true: a row is available; false: done
  void run();   // steps to completion
  void reset();  // back to the start for another run; the bindings stay

  bool is_null(int column) const;
  std::int64_t int64(int column) const;
  std::string text(int column) const;
  std::optional<std::string> optional_text(int column) const;
  crypto::ByteView blob(int column) const;

 private:
  friend class Database;
  Query(Database& db, sqlite3_stmt* stmt, bool* in_use) : db_(db), stmt_(stmt), in_use_(in_use) {}
  Database& db_;
  sqlite3_stmt* stmt_;
  bool* in_use_;
};

class Database {
 public:
  struct Options {
    int busy_timeout_ms = 5000;
    // After every commit, copy the WAL into the database file and truncate the WAL to zero
    // bytes, so old page images (ratchet states, removed prekeys) do not linger in the WAL.
    // Turning it off trades that for fewer fsyncs; the WAL is then truncated on close.
    bool checkpoint_after_commit = true;
  };

  Database(const std::filesystem::path& path, Options options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const noexcept { return path_; }
  void make_private();  // chmod 0600 if group or others have any access (before enable_wal)
  void enable_wal();    // PRAGMA journal_mode=WAL (persistent), or throws

  void exec(const char* sql);  // statements without results
  Query query(std::string_view sql);
  std::int64_t pragma_int(const char* name);  // "PRAGMA name", first column of the first row

  template <class F>
  decltype(auto) atomically(F&& f) {
    Section section(*this);
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      f();
      section.done();
    } else {
      auto result = f();
      section.done();
      return result;
    }
  }

  // The caller's transaction (see Transaction).
  void begin();
  void commit();
  void rollback() noexcept;
  bool in_transaction() const noexcept { return explicit_; }

  // Copies the WAL into the database and truncates it to zero bytes. Never waits: returns
  // false if a reader on another connection kept it from completing.
  bool checkpoint();

  [[noreturn]] void fail(int rc, std::string_view doing) const;
  [[noreturn]] void corrupt(std::string_view what) const;

 private:
  class Section {
   public:
    explicit Section(Database& db);
    ~Section();
    void done();

   private:
    Database& db_;
    bool outermost_;
    bool done_ = false;
  };
  struct Finalize {
    void operator()(sqlite3_stmt* s) const noexcept;
  };
  struct Close {
    void operator()(sqlite3* db) const noexcept;
  };
  struct Cached {
    std::unique_ptr<sqlite3_stmt, Finalize> stmt;
    bool in_use = false;
  };

  void configure();
  void after_commit() noexcept;
  bool checkpoint_nothrow(int* rc) noexcept;

  std::string path_;
  Options options_;
  std::unique_ptr<sqlite3, Close> db_;  // declared before the cache: destroyed after it
  std::map<std::string, Cached, std::less<>> cache_;
  bool explicit_ = false;  // a Transaction is open
  int depth_ = 0;          // nested atomic sections
};

// The caller's explicit transaction. Destroying it without commit() rolls back.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(&db) { db.begin(); }
  Transaction(Transaction&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() { rollback(); }

  void commit() {
    if (!db_) throw std::logic_error("transaction already finished");
    db_->commit();
    db_ = nullptr;
  }
  void rollback() noexcept {
    if (db_) std::exchange(db_, nullptr)->rollback();
  }
  bool active() const noexcept { return db_ != nullptr; }

 private:
  Database* db_;
};

}  // namespace multiend::client::sqlite
