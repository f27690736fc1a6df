#include "client/store/sqlite.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace multiend::client::sqlite {
namespace {

// Creates the file with mode 0600 if it does not exist (opening with O_CREAT ourselves rather
// than letting SQLite do it is what fixes the mode; SQLite then creates the -wal and -shm
// files with the database file's permissions). Refuses symlinks and non-regular files.
void prepare_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == ELOOP) throw Error(0, "state file '" + path + "': is a symbolic link (refused)");
  if (fd < 0) throw Error(0, "state file '" + path + "': cannot open: " + std::strerror(errno));
  struct stat st {};
  std::string problem;
  if (::fstat(fd, &st) != 0)
    problem = std::string("cannot stat: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode))
    problem = "not a regular file";
  ::close(fd);
  if (!problem.empty()) throw Error(0, "state file '" + path + "': " + problem);
}

}  // namespace

// ---- Query ----

Query::~Query() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

Query& Query::bind(int index, std::int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) db_.fail(rc, "bind");
  return *this;
}

Query& Query::bind(int index, std::string_view text) {
  // A non-null pointer even for "" so that an empty string binds as '' and not as NULL.
  const char* p = text.empty() ? "" : text.data();
  if (int rc = sqlite3_bind_text64(stmt_, index, p, text.size(), SQLITE_STATIC, SQLITE_UTF8); rc != SQLITE_OK)
    db_.fail(rc, "bind");
  return *this;
}

Query& Query::bind_optional(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind_null(index);
}

Query& Query::bind_blob(int index, crypto::ByteView bytes) {
  static const std::uint8_t empty = 0;
  const void* p = bytes.empty() ? &empty : bytes.data();
  if (int rc = sqlite3_bind_blob64(stmt_, index, p, bytes.size(), SQLITE_STATIC); rc != SQLITE_OK)
    db_.fail(rc, "bind");
  return *this;
}

Query& Query::bind_null(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) db_.fail(rc, "bind");
  return *this;
}

bool Query::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(rc, "query");
}

void Query::run() {
  while (step()) {
  }
}

void Query::reset() { sqlite3_reset(stmt_); }

bool Query::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::int64_t Query::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Query::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

std::optional<std::string> Query::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

crypto::ByteView Query::blob(int column) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
  const int n = sqlite3_column_bytes(stmt_, column);
  if (!p || n <= 0) return {};
  return crypto::ByteView(p, static_cast<std::size_t>(n));
}

// ---- Database ----

void Database::Finalize::operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
void Database::Close::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }

Database::Database(const std::filesystem::path& path, Options options)
    : path_(path.string()), options_(options) {
  prepare_file(path_);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path_.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE, nullptr);
  db_.reset(raw);  // closed on every path, also when opening failed
  if (rc != SQLITE_OK) fail(rc, "cannot open");
  configure();
}

void Database::configure() {
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), options_.busy_timeout_ms);
  // secure_delete first: every later write already overwrites what it deletes.
  exec("PRAGMA secure_delete=ON");
  // The first statement that reads the file: garbage shows up here as "file is not a database".
  if (int rc = sqlite3_exec(db_.get(), "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr); rc != SQLITE_OK)
    fail(rc, "cannot open");
  exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF; PRAGMA cell_size_check=ON");
  if (pragma_int("secure_delete") != 1 || pragma_int("foreign_keys") != 1 || pragma_int("synchronous") != 2)
    throw Error(SQLITE_ERROR, "state file '" + path_ + "': SQLite refused a required setting");
}

void Database::make_private() {
  // The -wal and -shm files of an earlier run are re-used as they are: tighten them too.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string p = path_ + suffix;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT && *suffix) continue;
      throw Error(0, "state file '" + p + "': cannot stat: " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) throw Error(0, "state file '" + p + "': not a regular file");
    if ((st.st_mode & 0077) != 0 && ::chmod(p.c_str(), 0600) != 0)
      throw Error(0, "state file '" + p + "': cannot restrict permissions to 0600: " + std::strerror(errno));
  }
}

void Database::enable_wal() {
  std::string mode;
  {
    auto q = query("PRAGMA journal_mode=WAL");
    if (q.step()) mode = q.text(0);
  }
  if (mode != "wal")
    throw Error(SQLITE_ERROR, "state file '" + path_ + "': cannot enable WAL journaling (journal_mode is '" + mode + "')");
}

Database::~Database() {
  if (explicit_ || depth_ > 0) rollback();
  cache_.clear();
  // Leave no WAL behind; SQLite also checkpoints when the last connection closes.
  int rc = 0;
  if (db_) checkpoint_nothrow(&rc);
}

void Database::fail(int rc, std::string_view doing) const {
  std::string msg = "state file '" + path_ + "': " + std::string(doing) + ": ";
  // sqlite3_errmsg describes the most recent failure on this connection; errstr the code.
  const char* detail = db_ && sqlite3_extended_errcode(db_.get()) == rc ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  msg += detail ? detail : "unknown error";
  throw Error(rc, msg);
}

void Database::corrupt(std::string_view what) const {
  throw Error(SQLITE_CORRUPT, "state file '" + path_ + "': corrupt " + std::string(what));
}

void Database::exec(const char* sql) {
  if (int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) fail(rc, sql);
}

Query Database::query(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      fail(rc, "prepare");
    }
    it = cache_.emplace(std::string(sql), Cached{std::unique_ptr<sqlite3_stmt, Finalize>(stmt), false}).first;
  }
  if (it->second.in_use) throw std::logic_error("sqlite: statement already in use: " + it->first);
  it->second.in_use = true;
  return Query(*this, it->second.stmt.get(), &it->second.in_use);
}

std::int64_t Database::pragma_int(const char* name) {
  auto q = query(std::string("PRAGMA ") + name);
  if (!q.step()) fail(SQLITE_ERROR, name);
  return q.int64(0);
}

// ---- transactions ----

Database::Section::Section(Database& db) : db_(db), outermost_(!db.explicit_ && db.depth_ == 0) {
  if (db.explicit_ && sqlite3_get_autocommit(db.db_.get()))
    throw std::logic_error("sqlite: the open transaction was rolled back by an earlier error");
  db.exec(outermost_ ? "BEGIN IMMEDIATE" : "SAVEPOINT section");
  ++db.depth_;
}

void Database::Section::done() {
  db_.exec(outermost_ ? "COMMIT" : "RELEASE section");
  done_ = true;
  --db_.depth_;
  if (outermost_) db_.after_commit();
}

Database::Section::~Section() {
  if (done_) return;
  --db_.depth_;
  sqlite3* h = db_.db_.get();
  if (sqlite3_get_autocommit(h)) return;  // SQLite already rolled everything back
  if (outermost_)
    sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
  else
    sqlite3_exec(h, "ROLLBACK TO section; RELEASE section", nullptr, nullptr, nullptr);
}

void Database::begin() {
  if (explicit_ || depth_ > 0) throw std::logic_error("sqlite: a transaction is already open (no nesting)");
  exec("BEGIN IMMEDIATE");
  explicit_ = true;
}

void Database::commit() {
  if (!explicit_) throw std::logic_error("sqlite: no transaction to commit");
  if (sqlite3_get_autocommit(db_.get())) {
    explicit_ = false;
    throw Error(SQLITE_ABORT, "state file '" + path_ + "': the transaction was rolled back by an earlier error");
  }
  exec("COMMIT");  // on failure the transaction stays open for rollback()
  explicit_ = false;
  after_commit();
}

void Database::rollback() noexcept {
  if (!sqlite3_get_autocommit(db_.get())) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  explicit_ = false;
  depth_ = 0;
}

void Database::after_commit() noexcept {
  int rc = 0;
  if (options_.checkpoint_after_commit) checkpoint_nothrow(&rc);  // best effort: the data is committed
}

bool Database::checkpoint_nothrow(int* rc) noexcept {
  // No busy waiting: a reader in another process must not stall our writes.
  sqlite3_busy_timeout(db_.get(), 0);
  *rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  sqlite3_busy_timeout(db_.get(), options_.busy_timeout_ms);
  return *rc == SQLITE_OK;
}

bool Database::checkpoint() {
  if (explicit_ || depth_ > 0) throw std::logic_error("sqlite: checkpoint inside a transaction");
  int rc = 0;
  if (checkpoint_nothrow(&rc)) return true;
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) return false;
  fail(rc, "checkpoint");
}

}  // namespace multiend::client::sqlite
