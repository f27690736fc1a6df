// insert_baseline: the floor for the component's archive write. A minimal libpqxx program that
// writes the rows the component writes per message — one `messages` row carrying the stanza
// text, one `archive` row per recipient archive (3 recipients + the sender = 4) — into the
// same schema (run the component's migrations into a schema of its own, see --schema), on the
// same PostgreSQL, in the two cheapest plain ways:
//   insert: 100 messages per transaction; one multi-row INSERT … RETURNING id into messages,
//           one multi-row INSERT into archive, COMMIT;
//   copy:   1,000 messages per transaction; ids reserved with one nextval() query, then COPY
//           (pqxx::stream_to) into messages and into archive, COMMIT.
//   component_sql: the component's own statement pattern for the same rows, 100 per
//           transaction, without XMPP (see ComponentSql below) — to split the gap.
// No coverage check, no duplicate detection, no XMPP: only the rows. Stanza texts are random
// base64 of --stanza-bytes characters (pass the component's measured average), generated
// before the clock starts. Prints one JSON object with messages/s per method (median of
// --rounds) and the durability settings the server ran with.
//
//   insert_baseline --database-url URL [--schema bench_baseline] [--messages 20000] [--rounds 3]
//                   [--stanza-bytes 2900] [--users 100] [--insert-batch 100] [--copy-batch 1000]
//                   [--methods insert,copy,component_sql] [--keep]
//   insert_baseline --database-url URL --mam-ids FILE [--queries 1500] [--mam-warmup 100]
//                   [--mam-users 1000] [--mam-user-prefix user] [--user-domain localhost] [--page 50]
//     the MAM baseline (see mam_sql below): the component's page SQL alone, p50/p99 per page.
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Row {
  std::string sender_bare, sender_full, origin_id, stanza;
  std::string owners[4];
};

std::string b64(std::size_t n_bytes) {
  std::vector<unsigned char> raw(n_bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string out(sodium_base64_encoded_len(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), raw.data(), raw.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::vector<Row> make_rows(std::size_t n, std::size_t stanza_bytes, std::uint32_t users, const std::string& tag) {
  std::vector<Row> rows(n);
  for (std::size_t i = 0; i < n; ++i) {
    Row& r = rows[i];
    const std::uint32_t s = randombytes_uniform(users);
    std::set<std::uint32_t> picked{s};
    r.sender_bare = "base" + std::to_string(s + 1) + "@localhost";
    r.sender_full = r.sender_bare + "/dev1";
    r.origin_id = tag + "-" + std::to_string(i);
    for (int k = 0; k < 3; ++k) {
      std::uint32_t u;
      do u = randombytes_uniform(users);
      while (!picked.insert(u).second);
      r.owners[k] = "base" + std::to_string(u + 1) + "@localhost";
    }
    r.owners[3] = r.sender_bare;
    // Shaped like a stored stanza: markup around random base64, exactly stanza_bytes long.
    std::string head = "<message xmlns='jabber:client' from='" + r.sender_full +
                       "' to='archive.localhost' type='normal' id='" + r.origin_id +
                       "'><encrypted xmlns='urn:xmpp:omemo:2'><payload>";
    std::string tail = "</payload></encrypted></message>";
    const std::size_t fill = stanza_bytes > head.size() + tail.size() ? stanza_bytes - head.size() - tail.size() : 4;
    std::string body = b64(fill * 3 / 4 + 3);
    body.resize(fill);
    r.stanza = head + body + tail;
  }
  return rows;
}

void write_insert(pqxx::connection& c, const std::vector<Row>& rows, std::size_t b, std::size_t e) {
  pqxx::work tx(c);
  std::string sql = "INSERT INTO messages (sender_bare, sender_full, origin_id, stanza) VALUES ";
  for (std::size_t i = b; i < e; ++i) {
    if (i > b) sql += ", ";
    sql += "(" + tx.quote(rows[i].sender_bare) + ", " + tx.quote(rows[i].sender_full) + ", " +
           tx.quote(rows[i].origin_id) + ", " + tx.quote(rows[i].stanza) + ")";
  }
  sql += " RETURNING id";
  pqxx::result ids = tx.exec(sql);
  if (ids.size() != e - b) throw std::runtime_error("INSERT returned " + std::to_string(ids.size()) + " ids");
  std::string arch = "INSERT INTO archive (owner, message_id) VALUES ";
  for (std::size_t i = b; i < e; ++i) {
    const std::string id = ids[static_cast<pqxx::result::size_type>(i - b)][0].c_str();
    for (const auto& o : rows[i].owners) {
      if (arch.back() != ' ') arch += ", ";
      arch += "(" + tx.quote(o) + ", " + id + ")";
    }
  }
  tx.exec0(arch);
  tx.commit();
}

void write_copy(pqxx::connection& c, const std::vector<Row>& rows, std::size_t b, std::size_t e) {
  pqxx::work tx(c);
  pqxx::result ids = tx.exec("SELECT nextval('messages_id_seq') FROM generate_series(1, " + std::to_string(e - b) + ")");
  std::vector<std::int64_t> id(e - b);
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = ids[static_cast<pqxx::result::size_type>(i)][0].as<std::int64_t>();
  {
    pqxx::stream_to s(tx, "messages", std::vector<std::string>{"id", "sender_bare", "sender_full", "origin_id", "stanza"});
    for (std::size_t i = b; i < e; ++i)
      s << std::make_tuple(id[i - b], rows[i].sender_bare, rows[i].sender_full, rows[i].origin_id, rows[i].stanza);
    s.complete();
  }
  {
    pqxx::stream_to s(tx, "archive", std::vector<std::string>{"owner", "message_id"});
    for (std::size_t i = b; i < e; ++i)
      for (const auto& o : rows[i].owners) s << std::make_tuple(o, id[i - b]);
    s.complete();
  }
  tx.commit();
}

// CPU seconds of every process named "postgres", and of this process (for µs per message).
double postgres_cpu_seconds() {
  double sum = 0;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(entry.path() / "stat");
    std::string line;
    if (!f || !std::getline(f, line)) continue;
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (line.substr(open + 1, close - open - 1) != "postgres") continue;
    std::istringstream in(line.substr(close + 2));
    std::vector<std::string> fields;
    std::string x;
    while (in >> x) fields.push_back(x);
    if (fields.size() >= 13) sum += (std::stod(fields[11]) + std::stod(fields[12])) / tick;
  }
  return sum;
}

double self_cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// The MAM baseline: the page query the component runs for an RSM page (archive JOIN messages on
// the owner's index, 51 rows for a page of 50, stanza text included), one statement in
// autocommit, one at a time, for the same mix of pages as component_load --mode mam: the last
// page of a random user, the page after / before a random id of a random archive.
json mam_sql(pqxx::connection& c, const std::string& ids_file, std::size_t queries, std::size_t warmup,
             std::uint32_t users, const std::string& prefix, const std::string& domain, std::uint32_t page) {
  std::vector<std::pair<std::string, std::int64_t>> ids;
  {
    std::ifstream f(ids_file);
    std::string o;
    std::int64_t id;
    while (f >> o >> id) ids.emplace_back(o + "@" + domain, id);
  }
  if (ids.empty()) throw std::runtime_error("no ids in " + ids_file);
  const char* kinds[] = {"last_page", "after_random_id", "before_random_id"};
  std::map<std::string, std::vector<double>> by_kind;
  std::vector<double> all;
  std::size_t rows_total = 0;
  const std::string cols =
      "SELECT a.message_id, (extract(epoch FROM m.stored_at) * 1000000)::bigint, m.stanza FROM archive a "
      "JOIN messages m ON m.id = a.message_id WHERE a.owner = ";
  pqxx::nontransaction tx(c);
  for (std::size_t q = 0; q < warmup + queries; ++q) {
    const int kind = static_cast<int>(q % 3);
    std::string sql;
    if (kind == 0) {
      const std::string owner = prefix + std::to_string(randombytes_uniform(users) + 1) + "@" + domain;
      sql = cols + tx.quote(owner) + " ORDER BY a.message_id DESC LIMIT " + std::to_string(page + 1);
    } else {
      const auto& [owner, id] = ids[randombytes_uniform(static_cast<std::uint32_t>(ids.size()))];
      sql = cols + tx.quote(owner) + " AND a.message_id " + (kind == 1 ? "> " : "< ") + std::to_string(id) +
            " ORDER BY a.message_id " + (kind == 1 ? "ASC" : "DESC") + " LIMIT " + std::to_string(page + 1);
    }
    const auto t0 = Clock::now();
    pqxx::result r = tx.exec(sql);
    std::size_t bytes = 0;
    for (const auto& row : r) bytes += row[2].size();  // touch the rows, as a server would
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (q < warmup) continue;
    (void)bytes;
    rows_total += std::min<std::size_t>(r.size(), page);
    all.push_back(ms);
    by_kind[kinds[kind]].push_back(ms);
  }
  auto summary = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) {
      std::size_t rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
      return v.empty() ? 0.0 : std::round(v[std::clamp<std::size_t>(rank, 1, v.size()) - 1] * 1000) / 1000;
    };
    return json{{"n", v.size()}, {"p50_ms", pct(0.5)}, {"p90_ms", pct(0.9)}, {"p99_ms", pct(0.99)},
                {"max_ms", v.empty() ? 0.0 : std::round(v.back() * 1000) / 1000}};
  };
  json out = summary(all);
  out["mode"] = "mam-sql";
  out["page_max"] = page;
  out["results_per_page_avg"] = all.empty() ? 0.0 : static_cast<double>(rows_total) / static_cast<double>(all.size());
  for (auto& [k, v] : by_kind) out["by_kind"][k] = summary(v);
  return out;
}

// The component's own statements for the same rows (server/db/archive_store.cpp insert_batch,
// mark_fanned_out): per batch, the coverage read of the recipients' device lists, INSERT … ON
// CONFLICT DO NOTHING RETURNING into messages, INSERT … ON CONFLICT DO NOTHING into archive,
// COMMIT; and every 200 ms one UPDATE marking the messages written since as fanned out. No
// XMPP and no other CPU load on the machine: the gap to `insert` is the cost of the statement
// pattern, the gap to the component is everything else.
struct ComponentSql {
  std::vector<std::int64_t> marks;
  Clock::time_point last_mark = Clock::now();

  void batch(pqxx::connection& c, const std::vector<Row>& rows, std::size_t b, std::size_t e) {
    pqxx::work tx(c);
    std::set<std::string> owners;
    for (std::size_t i = b; i < e; ++i) owners.insert(std::begin(rows[i].owners), std::end(rows[i].owners));
    std::string in;
    for (const auto& o : owners) in += (in.empty() ? "" : ", ") + tx.quote(o);
    tx.exec("SELECT owner, device_id FROM devices WHERE owner IN (" + in + ")");
    std::string values;
    for (std::size_t i = b; i < e; ++i) {
      if (!values.empty()) values += ", ";
      values += "(" + tx.quote(rows[i].sender_bare) + ", " + tx.quote(rows[i].sender_full) + ", " +
                tx.quote(rows[i].origin_id) + ", " + tx.quote(rows[i].stanza) + ")";
    }
    pqxx::result ins = tx.exec(
        "INSERT INTO messages AS m (sender_bare, sender_full, origin_id, stanza) VALUES " + values +
        " ON CONFLICT (sender_bare, origin_id) DO NOTHING RETURNING m.id, m.sender_bare, m.origin_id, "
        "(extract(epoch FROM m.stored_at) * 1000000)::bigint");
    std::map<std::pair<std::string, std::string>, std::int64_t> ids;
    for (const auto& row : ins) ids[{row[1].as<std::string>(), row[2].as<std::string>()}] = row[0].as<std::int64_t>();
    std::string arch;
    for (std::size_t i = b; i < e; ++i) {
      const std::int64_t id = ids.at({rows[i].sender_bare, rows[i].origin_id});
      marks.push_back(id);
      for (const auto& o : rows[i].owners) arch += (arch.empty() ? "(" : ", (") + tx.quote(o) + ", " + std::to_string(id) + ")";
    }
    tx.exec0("INSERT INTO archive (owner, message_id) VALUES " + arch + " ON CONFLICT DO NOTHING");
    tx.commit();
    if (Clock::now() - last_mark >= std::chrono::milliseconds(200)) flush(c);
  }
  void flush(pqxx::connection& c) {
    last_mark = Clock::now();
    if (marks.empty()) return;
    pqxx::work tx(c);
    std::string in;
    for (auto id : marks) in += (in.empty() ? "" : ", ") + std::to_string(id);
    tx.exec0("UPDATE messages SET fanned_out = true WHERE id IN (" + in + ")");
    tx.commit();
    marks.clear();
  }
};

// Device lists for the baseline's users (2 devices each), so the coverage read finds rows as
// the component's does.
void make_devices(pqxx::connection& c, std::uint32_t users) {
  pqxx::work tx(c);
  tx.exec0("INSERT INTO owners (owner) SELECT 'base' || u || '@localhost' FROM generate_series(1, " +
           std::to_string(users) + ") u ON CONFLICT DO NOTHING");
  tx.exec0("INSERT INTO devices (owner, device_id) SELECT 'base' || u || '@localhost', 2 * u + d FROM generate_series(1, " +
           std::to_string(users) + ") u, generate_series(0, 1) d ON CONFLICT DO NOTHING");
  tx.commit();
}

std::string arg(int argc, char** argv, const std::string& key, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + key) return argv[i + 1];
  return def;
}
bool flag(int argc, char** argv, const std::string& key) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == "--" + key) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  try {
    const char* env_url = std::getenv("MULTIEND_DATABASE_URL");
    const std::string url = arg(argc, argv, "database-url", env_url ? env_url : "");
    if (url.empty()) throw std::invalid_argument("--database-url or MULTIEND_DATABASE_URL");
    const std::string schema = arg(argc, argv, "schema", "bench_baseline");
    const std::size_t n = std::stoul(arg(argc, argv, "messages", "20000"));
    const std::size_t rounds = std::stoul(arg(argc, argv, "rounds", "3"));
    const std::size_t stanza_bytes = std::stoul(arg(argc, argv, "stanza-bytes", "2900"));
    const auto users = static_cast<std::uint32_t>(std::stoul(arg(argc, argv, "users", "100")));
    const std::size_t insert_batch = std::stoul(arg(argc, argv, "insert-batch", "100"));
    const std::size_t copy_batch = std::stoul(arg(argc, argv, "copy-batch", "1000"));
    const std::string methods = arg(argc, argv, "methods", "insert,copy,component_sql");
    if (users < 4 || n == 0 || rounds == 0 || insert_batch == 0 || copy_batch == 0)
      throw std::invalid_argument("bad sizes");

    pqxx::connection c(url);
    if (const std::string ids_file = arg(argc, argv, "mam-ids", ""); !ids_file.empty()) {
      json out = mam_sql(c, ids_file, std::stoul(arg(argc, argv, "queries", "1500")),
                         std::stoul(arg(argc, argv, "mam-warmup", "100")),
                         static_cast<std::uint32_t>(std::stoul(arg(argc, argv, "mam-users", "1000"))),
                         arg(argc, argv, "mam-user-prefix", "user"), arg(argc, argv, "user-domain", "localhost"),
                         static_cast<std::uint32_t>(std::stoul(arg(argc, argv, "page", "50"))));
      std::cout << out.dump() << std::endl;
      return 0;
    }
    {
      pqxx::nontransaction tx(c);
      tx.exec0("SET search_path TO " + tx.quote_name(schema));
      // The component's migrations must have created the tables in this schema.
      if (tx.exec1("SELECT to_regclass('messages') IS NOT NULL AND to_regclass('archive') IS NOT NULL "
                   "AND current_schema() = " + tx.quote(schema))[0].as<bool>() == false)
        throw std::runtime_error("schema " + schema + " has no messages/archive tables (run the migrations into it)");
    }
    json out;
    {
      pqxx::nontransaction tx(c);
      for (const char* s : {"fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers"})
        out["settings"][s] = tx.exec1(std::string("SHOW ") + s)[0].c_str();
    }
    out["schema"] = schema;
    out["messages_per_round"] = n;
    out["rounds"] = rounds;
    out["stanza_bytes"] = stanza_bytes;
    out["archive_rows_per_message"] = 4;
    out["insert_batch"] = insert_batch;
    out["copy_batch"] = copy_batch;

    // Rounds outside, methods inside: drift on a noisy machine hits every method alike.
    const std::vector<std::string> all_methods = {"insert", "copy", "component_sql"};
    std::vector<std::string> chosen;
    for (const auto& m : all_methods)
      if (methods.find(m) != std::string::npos) chosen.push_back(m);
    if (methods.find("component_sql") != std::string::npos) make_devices(c, users);
    std::map<std::string, std::vector<double>> rates, pg_us, self_us;
    std::size_t tag = 0;
    for (std::size_t r = 0; r < rounds; ++r) {
      for (const auto& method : chosen) {
        const auto rows = make_rows(n, stanza_bytes, users, "b" + std::to_string(::getpid()) + "-" + std::to_string(tag++));
        const std::size_t batch = method == "copy" ? copy_batch : insert_batch;
        ComponentSql replay;
        const double pg0 = postgres_cpu_seconds(), self0 = self_cpu_seconds();
        const auto t0 = Clock::now();
        for (std::size_t b = 0; b < n; b += batch) {
          const std::size_t e = std::min(n, b + batch);
          if (method == "insert") write_insert(c, rows, b, e);
          else if (method == "copy") write_copy(c, rows, b, e);
          else replay.batch(c, rows, b, e);
        }
        if (method == "component_sql") replay.flush(c);
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        rates[method].push_back(std::round(static_cast<double>(n) / secs));
        pg_us[method].push_back(std::round((postgres_cpu_seconds() - pg0) * 1e7 / static_cast<double>(n)) / 10);
        self_us[method].push_back(std::round((self_cpu_seconds() - self0) * 1e7 / static_cast<double>(n)) / 10);
        std::cerr << "insert_baseline: round " << r + 1 << " " << method << ": " << rates[method].back() << " messages/s\n";
      }
    }
    for (const auto& method : chosen) {
      json j;
      j["per_round"] = rates[method];
      j["postgres_cpu_us_per_message"] = pg_us[method];
      j["client_cpu_us_per_message"] = self_us[method];
      auto sorted = rates[method];
      std::sort(sorted.begin(), sorted.end());
      j["messages_per_s"] = sorted[sorted.size() / 2];
      out[method] = j;
    }
    if (!flag(argc, argv, "keep")) {
      pqxx::work tx(c);
      tx.exec0("TRUNCATE archive, messages, devices, owners CASCADE");
      tx.commit();
    }
    std::cout << out.dump() << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "insert_baseline: " << e.what() << "\n";
    std::cout << json{{"error", e.what()}}.dump() << std::endl;
    return 1;
  }
}
