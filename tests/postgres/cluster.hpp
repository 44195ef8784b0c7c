#pragma once
// The PostgreSQL cluster the CTest fixture `postgres` starts for the tests that need one
// (tests/postgres/cluster.sh), and a fresh database in it for each test.

#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace emr::testing {

/// Runs `sql` on the database at `url`; the error text when it failed, else empty.
inline std::string run_sql(const std::string& url, const std::string& sql) {
  auto* db = PQconnectdb(url.c_str());
  std::string error;
  if (PQstatus(db) != CONNECTION_OK) {
    error = PQerrorMessage(db);
  } else {
    auto* r = PQexec(db, sql.c_str());
    auto status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(db);
  return error;
}

#ifdef EMR_POSTGRES_CLUSTER_SCRIPT
/// Takes the fixture's cluster `down` or brings it back `up` (an outage, for tests that run
/// alone); true when that worked.
inline bool postgres_cluster(const std::string& action) {
  auto command = std::string{EMR_POSTGRES_CLUSTER_SCRIPT} + " " + action + " " + EMR_POSTGRES_STATE;
  return std::system(command.c_str()) == 0;
}
#endif

/// A database of its own in the fixture's cluster, dropped with it.
class postgres_database {
public:
  postgres_database() {
    std::ifstream state{EMR_POSTGRES_STATE};
    std::getline(state, admin_url_);
    if (admin_url_.empty()) {
      error_ = "no PostgreSQL cluster: run through ctest, whose fixture starts it";
      return;
    }
    static std::atomic<int> counter{0};
    name_ = "emr_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    error_ = run_sql(admin_url_, "CREATE DATABASE " + name_);
    url_ = admin_url_.substr(0, admin_url_.rfind('/') + 1) + name_;
  }
  ~postgres_database() {
    if (!name_.empty())
      run_sql(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  postgres_database(const postgres_database&) = delete;
  postgres_database& operator=(const postgres_database&) = delete;

  /// Empty when the database is ready.
  const std::string& error() const { return error_; }
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  /// The cluster's own `postgres` database, for what a test does behind the store's back.
  const std::string& admin_url() const { return admin_url_; }

private:
  std::string admin_url_, name_, url_, error_;
};

} // namespace emr::testing
