#include "storage/fleet_ledger.hpp"

#include "storage/postgres_changes.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace emr {

namespace {

constexpr const char* database_now = "extract(epoch from clock_timestamp())::double precision";

} // namespace

// A grant must be quick or not at all: a replica that died holding a bucket's row lock, or a
// database too slow to answer, must not hold every replica's grants for long. Each then spends
// its share alone until the ledger answers in time again. The server's timeouts end a statement
// that waits there, with a clean error on a connection that stays open; the connection's
// deadline, half a second longer since its clock starts before the server's, ends the wait for a
// server that does not answer at all.
fleet_ledger::fleet_ledger(std::string url, std::string replica)
    : db_(std::move(url), 3,
          "-c lock_timeout=2000 -c statement_timeout=2500 "
          "-c idle_in_transaction_session_timeout=5000"),
      replica_(std::move(replica)) {}

fleet_ledger::~fleet_ledger() {
  try {
    pg::checked(db_.open(), "DELETE FROM fleet_replicas WHERE id = $1", "leave the fleet",
                pg::parameters{}.text(replica_));
  } catch (const storage_error&) {
    // Out of reach: the others count this replica gone once it has been silent long enough.
  }
}

std::size_t fleet_ledger::heartbeat() {
  auto& db = db_.open();
  pg::checked(db,
              fmt::format("INSERT INTO fleet_replicas (id, seen_at) VALUES ($1, {})"
                          " ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at",
                          database_now),
              "say this replica is alive", pg::parameters{}.text(replica_));
  // Replicas that stopped without leaving are forgotten after an hour.
  auto alive = pg::checked(db,
                           fmt::format("WITH gone AS (DELETE FROM fleet_replicas WHERE seen_at"
                                       " < {0} - 3600) SELECT count(*) FROM fleet_replicas"
                                       " WHERE seen_at > {0} - $1",
                                       database_now),
                           "count the replicas", pg::parameters{}.real(replica_silence_s));
  replicas_ = static_cast<std::size_t>(std::max<std::int64_t>(1, alive.integer(0, 0)));
  return replicas_;
}

budget_grant fleet_ledger::grant(const budget_ask& ask) {
  auto& db = db_.open();
  pg::transaction t(db, "take a budget grant");
  // A new bucket starts full, as a provider's own limit does.
  pg::checked(db,
              fmt::format("INSERT INTO provider_budgets (provider, requests_level, tokens_level,"
                          " filled_at) VALUES ($1, $2, $3, {}) ON CONFLICT (provider) DO NOTHING",
                          database_now),
              "start a budget",
              pg::parameters{}
                  .text(ask.provider)
                  .real(shared_capacity(ask.requests_per_minute))
                  .real(shared_capacity(ask.tokens_per_minute)));
  auto r = pg::checked(db,
                       fmt::format("SELECT requests_level, tokens_level, filled_at, paused_until,"
                                   " {} FROM provider_budgets WHERE provider = $1 FOR UPDATE",
                                   database_now),
                       "read a budget", pg::parameters{}.text(ask.provider));
  budget_row row{r.real(0, 0), r.real(0, 1), r.real(0, 2), r.real(0, 3)};
  auto g = take_grant(row, r.real(0, 4), ask, replicas_);
  pg::checked(db,
              "UPDATE provider_budgets SET requests_level = $2, tokens_level = $3, filled_at = $4"
              " WHERE provider = $1",
              "spend a budget",
              pg::parameters{}
                  .text(ask.provider)
                  .real(row.requests_level)
                  .real(row.tokens_level)
                  .real(row.filled_at));
  t.commit();
  return g;
}

void fleet_ledger::pause(const std::string& provider, double seconds) {
  auto& db = db_.open();
  pg::transaction t(db, "pause a provider");
  pg::checked(db,
              fmt::format("UPDATE provider_budgets SET paused_until = greatest(paused_until,"
                          " {} + $2) WHERE provider = $1",
                          database_now),
              "pause a provider", pg::parameters{}.text(provider).real(seconds));
  pg::checked(db, "SELECT pg_notify($1, $2)", "announce a pause",
              pg::parameters{}.text(change_channel).text(topic_name(change_topic::pauses)));
  t.commit();
}

std::vector<std::pair<std::string, double>> fleet_ledger::pauses() {
  auto r = pg::checked(db_.open(),
                       fmt::format("SELECT provider, paused_until - {0} FROM provider_budgets"
                                   " WHERE paused_until > {0}",
                                   database_now),
                       "read the pauses");
  std::vector<std::pair<std::string, double>> out;
  for (int i = 0; i < r.rows(); ++i)
    out.emplace_back(r.text(i, 0), r.real(i, 1));
  return out;
}

} // namespace emr
