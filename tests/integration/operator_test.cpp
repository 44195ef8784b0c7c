// The operator surface against a live server: every CLI command in both output modes, keys
// and providers lifecycle without restarts, the batch API, actor stats, and secret hygiene.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <iterator>
#include <regex>
#include <sstream>

namespace json = boost::json;
using namespace emr::testing;

namespace {

struct operator_surface : ::testing::Test {
  scratch_dir dir;
  fake_provider fake{dir, {"--latency-ms", "5"}};
  emr_server emr{dir};

  std::vector<std::string> admin_flags() const {
    return {"--server", emr.base_url(), "--admin-secret", admin_secret};
  }

  cli_result cli(std::vector<std::string> args) const {
    auto flags = admin_flags();
    args.insert(args.end(), flags.begin(), flags.end());
    return run_cli(args);
  }

  json::value cli_json(std::vector<std::string> args) const {
    args.push_back("--json");
    auto r = cli(args);
    EXPECT_EQ(r.code, 0) << r.err;
    json::error_code ec;
    auto v = json::parse(r.out, ec);
    EXPECT_FALSE(ec) << r.out;
    return v;
  }
};

// The whitespace-separated cells of the table row that starts with `first_cell`.
std::vector<std::string> table_row(const std::string& table, const std::string& first_cell) {
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream cells(line);
    std::vector<std::string> row{std::istream_iterator<std::string>(cells), {}};
    if (!row.empty() && row.front() == first_cell)
      return row;
  }
  return {};
}

std::string last_line(const std::string& s) {
  auto t = s;
  while (!t.empty() && t.back() == '\n')
    t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

} // namespace

TEST_F(operator_surface, keys_commands_in_both_modes) {
  auto created = cli({"keys", "create", "--name", "alpha"});
  ASSERT_EQ(created.code, 0) << created.err;
  auto key = last_line(created.out);
  EXPECT_EQ(created.out, key + "\n") << "the key must be the only stdout line";
  EXPECT_TRUE(key.starts_with("emr_"));
  auto created_json = cli_json({"keys", "create", "--name", "beta; DROP TABLE caller_keys; --"});
  EXPECT_TRUE(created_json.at("key").as_string().starts_with("emr_"));
  auto beta_id = created_json.at("id").as_int64();

  auto listed = cli({"keys", "list"});
  EXPECT_EQ(listed.code, 0);
  EXPECT_NE(listed.out.find("alpha"), std::string::npos);
  EXPECT_NE(listed.out.find("beta; DROP TABLE caller_keys; --"), std::string::npos);
  auto listed_json = cli_json({"keys", "list"});
  EXPECT_EQ(listed_json.at("keys").as_array().size(), 2u);

  EXPECT_EQ(cli_json({"keys", "revoke", std::to_string(beta_id)}).at("revoked").as_bool(), true);
  auto after = emr.admin("GET", "/admin/keys").json();
  for (const auto& k : after.at("keys").as_array())
    EXPECT_EQ(k.at("revoked").as_bool(), k.at("id").as_int64() == beta_id);
  EXPECT_NE(cli({"keys", "revoke", "9999"}).code, 0);

  auto alpha_id = listed_json.at("keys").at(0).at("id").as_int64();
  auto rotated = cli_json({"keys", "rotate", std::to_string(alpha_id)});
  EXPECT_NE(rotated.at("key").as_string(), key);
  EXPECT_EQ(rotated.at("name").as_string(), "alpha");
  auto rotated_human = cli({"keys", "rotate", std::to_string(rotated.at("id").as_int64())});
  EXPECT_EQ(rotated_human.code, 0) << rotated_human.err;
  EXPECT_TRUE(last_line(rotated_human.out).starts_with("emr_"));
}

TEST_F(operator_surface, revoked_and_rotated_keys_stop_working_at_once) {
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto created = emr.admin("POST", "/admin/keys", R"({"name":"svc"})").json();
  std::string key{created.at("key").as_string()};
  auto id = created.at("id").as_int64();
  auto body = R"({"input":"hi","provider":"voyage"})";
  ASSERT_EQ(emr.embed(key, body).status, 200); // cached after this
  auto rotated = emr.admin("POST", "/admin/keys/" + std::to_string(id) + "/rotate").json();
  std::string fresh{rotated.at("key").as_string()};
  EXPECT_EQ(emr.embed(key, body).status, 401);
  EXPECT_EQ(emr.embed(fresh, body).status, 200);
  auto fresh_id = rotated.at("id").as_int64();
  EXPECT_EQ(emr.admin("DELETE", "/admin/keys/" + std::to_string(fresh_id)).status, 200);
  auto revoked = emr.embed(fresh, body);
  EXPECT_EQ(revoked.status, 401);
  EXPECT_EQ(revoked.json().at("error").at("type").as_string(), "authentication_error");
  EXPECT_EQ(emr.admin("DELETE", "/admin/keys/424242").status, 404);
  // A key id is the whole path segment: "<id>abc" must not revoke key <id>.
  auto alias = emr.admin("POST", "/admin/keys", R"({"name":"alias"})").json();
  auto alias_id = std::to_string(alias.at("id").as_int64());
  EXPECT_EQ(emr.admin("DELETE", "/admin/keys/" + alias_id + "abc").status, 404);
  EXPECT_EQ(emr.embed(std::string{alias.at("key").as_string()}, body).status, 200);
}

TEST_F(operator_surface, providers_commands_in_both_modes) {
  auto added = cli({"providers", "add", "--name", "voyage", "--type", "voyage", "--api-key-env",
                    provider_key_env, "--endpoint", fake.url("/v1/embeddings"), "--model",
                    "voyage-3.5", "--max-batch", "64", "--rpm", "3000", "--tpm", "1000000"});
  ASSERT_EQ(added.code, 0) << added.err;
  auto added_json =
      cli_json({"providers", "add", "--name", "cohere", "--type", "cohere", "--api-key-env",
                provider_key_env, "--endpoint", fake.url("/v2/embed"), "--model", "embed-v4.0"});
  EXPECT_EQ(added_json.at("name").as_string(), "cohere");
  auto duplicate = cli({"providers", "add", "--name", "voyage", "--type", "voyage", "--api-key-env",
                        "X", "--endpoint", fake.url("/v1/embeddings"), "--model", "voyage-3.5"});
  EXPECT_NE(duplicate.code, 0);
  EXPECT_NE(duplicate.err.find("409"), std::string::npos) << duplicate.err;
  auto bad_type = cli({"providers", "add", "--name", "x", "--type", "gemini", "--api-key-env", "X",
                       "--endpoint", "http://127.0.0.1:1/", "--model", "m"});
  EXPECT_NE(bad_type.code, 0);

  auto listed = cli({"providers", "list"});
  EXPECT_EQ(listed.code, 0);
  EXPECT_NE(listed.out.find("voyage-3.5"), std::string::npos);
  EXPECT_EQ(table_row(listed.out, "NAME"),
            (std::vector<std::string>{"NAME", "TYPE", "MODEL", "ENDPOINT", "KEY", "ENV", "MAX",
                                      "BATCH", "RPM", "TPM", "STATE"}));
  EXPECT_EQ(table_row(listed.out, "voyage"),
            (std::vector<std::string>{"voyage", "voyage", "voyage-3.5", fake.url("/v1/embeddings"),
                                      provider_key_env, "64", "3000", "1000000", "enabled"}));
  EXPECT_EQ(table_row(listed.out, "cohere"),
            (std::vector<std::string>{"cohere", "cohere", "embed-v4.0", fake.url("/v2/embed"),
                                      provider_key_env, "default", "-", "-", "enabled"}));
  auto listed_json = cli_json({"providers", "list"});
  ASSERT_EQ(listed_json.at("providers").as_array().size(), 2u);
  for (const auto& p : listed_json.at("providers").as_array()) {
    EXPECT_EQ(p.at("api_key_env").as_string(), provider_key_env);
    EXPECT_TRUE(p.at("api_key_set").as_bool());
  }
  EXPECT_EQ(listed_json.at("providers").at(1).at("requests_per_minute").as_int64(), 3000);
  EXPECT_EQ(listed_json.at("providers").at(1).at("tokens_per_minute").as_int64(), 1'000'000);
  EXPECT_EQ(listed_json.at("providers").at(0).at("requests_per_minute").as_int64(), 0);

  // 0 clears one limit and keeps the other; the CLI refuses what the server would.
  auto cleared = cli_json({"providers", "update", "voyage", "--rpm", "0", "--tpm", "5000"});
  EXPECT_EQ(cleared.at("requests_per_minute").as_int64(), 0);
  EXPECT_EQ(cleared.at("tokens_per_minute").as_int64(), 5000);
  EXPECT_EQ(cleared.at("max_batch").as_int64(), 64);
  auto negative = cli({"providers", "update", "voyage", "--rpm", "-1"});
  EXPECT_NE(negative.code, 0);
  EXPECT_NE(negative.err.find("--rpm"), std::string::npos) << negative.err;
  EXPECT_NE(cli({"providers", "update", "voyage", "--tpm", "10000000001"}).code, 0);
  EXPECT_EQ(cli_json({"providers", "update", "voyage", "--rpm", "600"})
                .at("tokens_per_minute")
                .as_int64(),
            5000);
  EXPECT_EQ(table_row(cli({"providers", "list"}).out, "voyage").at(6), "600");

  EXPECT_EQ(cli({"providers", "update", "voyage", "--max-batch", "32"}).code, 0);
  auto updated = emr.admin("GET", "/admin/providers").json();
  EXPECT_EQ(updated.at("providers").at(1).at("max_batch").as_int64(), 32);
  EXPECT_EQ(cli_json({"providers", "update", "voyage", "--disable"}).at("enabled").as_bool(),
            false);
  auto key = emr.create_key();
  auto disabled = emr.embed(key, R"({"input":"x","provider":"voyage"})");
  EXPECT_EQ(disabled.status, 400);
  EXPECT_NE(disabled.body.find("voyage"), std::string::npos);
  EXPECT_EQ(cli({"providers", "update", "voyage", "--enable"}).code, 0);
  EXPECT_EQ(emr.embed(key, R"({"input":"x","provider":"voyage"})").status, 200);

  auto tested = cli({"providers", "test", "voyage"});
  EXPECT_EQ(tested.code, 0) << tested.err;
  EXPECT_NE(tested.out.find("1024 dimensions"), std::string::npos) << tested.out;
  auto tested_json = cli_json({"providers", "test", "cohere"});
  EXPECT_EQ(tested_json.at("dimensions").as_int64(), 1536);

  EXPECT_EQ(cli({"providers", "remove", "cohere"}).code, 0);
  EXPECT_EQ(cli_json({"providers", "remove", "voyage"}).at("removed").as_bool(), true);
  EXPECT_EQ(emr.admin("GET", "/admin/providers").json().at("providers").as_array().size(), 0u);
  EXPECT_NE(cli({"providers", "remove", "voyage"}).code, 0);
}

// A name or id is one path segment whatever it holds: `a?b` must not reach `a`, `x%41` not `xA`,
// `h#sh` not `h`.
TEST_F(operator_surface, commands_act_on_the_provider_or_key_named_and_no_other) {
  for (std::string name : {"a?b", "a", "x%41", "xA", "h#sh", "h", "sp ace", "sp"})
    ASSERT_EQ(emr.add_provider(name, "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 64), 201)
        << name;
  auto max_batch_of = [&] {
    std::map<std::string, std::int64_t> max_batch;
    auto listed = emr.admin("GET", "/admin/providers").json();
    for (const auto& p : listed.at("providers").as_array())
      max_batch[std::string{p.at("name").as_string()}] = p.at("max_batch").as_int64();
    return max_batch;
  };

  auto updated = cli({"providers", "update", "a?b", "--max-batch", "7"});
  EXPECT_EQ(updated.code, 0) << updated.err;
  auto hashed = cli({"providers", "update", "h#sh", "--max-batch", "9"});
  EXPECT_EQ(hashed.code, 0) << hashed.err;
  auto spaced = cli({"providers", "update", "sp ace", "--max-batch", "11"});
  EXPECT_EQ(spaced.code, 0) << spaced.err;
  auto tested = cli_json({"providers", "test", "a?b"});
  EXPECT_EQ(tested.at("dimensions").as_int64(), 1024);
  auto removed = cli({"providers", "remove", "x%41"});
  EXPECT_EQ(removed.code, 0) << removed.err;
  EXPECT_EQ(
      max_batch_of(),
      (std::map<std::string, std::int64_t>{
          {"a?b", 7}, {"a", 64}, {"xA", 64}, {"h#sh", 9}, {"h", 64}, {"sp ace", 11}, {"sp", 64}}));

  auto created = emr.admin("POST", "/admin/keys", R"({"name":"kept"})").json();
  auto id = std::to_string(created.at("id").as_int64());
  auto revoked = cli({"keys", "revoke", id + "?x"});
  EXPECT_EQ(revoked.code, 1);
  EXPECT_NE(revoked.err.find("(HTTP 404)"), std::string::npos) << revoked.err;
  EXPECT_FALSE(emr.admin("GET", "/admin/keys").json().at("keys").at(0).at("revoked").as_bool());
}

TEST_F(operator_surface, status_and_health_commands_in_both_modes) {
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto key = emr.create_key();
  ASSERT_EQ(emr.embed(key, R"({"input":["a","b"],"provider":"voyage"})").status, 200);
  auto status = cli({"status"});
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("COMPRESSION"), std::string::npos);
  auto status_json = cli_json({"status"});
  EXPECT_EQ(status_json.at("providers").as_int64(), 1);
  EXPECT_EQ(status_json.at("active_keys").as_int64(), 1);
  EXPECT_EQ(status_json.at("requests_served").as_int64(), 1);
  EXPECT_EQ(status_json.at("upstream_calls").to_number<double>(), 1.0);
  auto actors = cli({"status", "--actors"});
  EXPECT_NE(actors.out.find("MAILBOX"), std::string::npos) << actors.out;
  auto health = cli({"health"});
  EXPECT_EQ(health.code, 0);
  EXPECT_NE(health.out.find("healthy"), std::string::npos) << health.out;
  auto health_json = cli_json({"health"});
  EXPECT_EQ(health_json.at("providers").at("voyage").at("state").as_string(), "healthy");
}

TEST(cli_errors, an_unreachable_server_is_one_clear_line) {
  auto r = run_cli({"keys", "list", "--server", "http://127.0.0.1:1", "--admin-secret", "x"});
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err, "emr: server not reachable at http://127.0.0.1:1\n");
}

// docs/configuration.md: every command exits 0 on success and 1 with one line `emr: <message>`.
// A command line the parser refuses is no exception; --help and --version still exit 0.
TEST(cli_errors, a_refused_command_line_exits_1_with_one_line) {
  struct refusal {
    std::vector<std::string> args;
    std::string err;
  };
  for (const auto& [args, err] : std::vector<refusal>{
           {{}, "emr: A subcommand is required\n"},
           {{"keys", "create"}, "emr: --name is required\n"},
           {{"keys", "create", "--name", "n", "--rpm", "-5"},
            "emr: --rpm: Value -5 not in range 0 to 10000000\n"},
           {{"keys", "create", "--name", "n", "--rpm", "abc"},
            "emr: --rpm: Value abc not in range 0 to 10000000\n"},
           {{"keys", "list", "--bogus"}, "emr: The following argument was not expected: --bogus\n"},
       }) {
    auto r = run_cli(args);
    EXPECT_EQ(r.code, 1) << args.size();
    EXPECT_EQ(r.err, err);
    EXPECT_EQ(r.out, "");
  }
  auto help = run_cli({"keys", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("create"), std::string::npos) << help.out;
  auto version = run_cli({"--version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_TRUE(version.out.starts_with("emr ")) << version.out;
}

// A --server that is not emr (or a proxy answering for itself) answers without emr's error body.
TEST(cli_errors, an_answer_that_is_not_emrs_says_so) {
  scratch_dir dir;
  fake_provider not_emr{dir};
  auto r = run_cli({"keys", "list", "--server", not_emr.url("/"), "--admin-secret", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "emr: unexpected HTTP 404 from " + not_emr.url("/admin/keys") +
                       " (is this an emr server?)\n");
}

// A wrong --from must come out of `emr store migrate` byte for byte, mode and all: the source is
// only read, and what is not an emr store is refused before anything is copied.
TEST(store_migrate, a_source_that_is_not_an_emr_store_is_refused_and_left_as_it_was) {
  scratch_dir dir;
  auto victim = dir.path / "victim.toml";
  auto empty = dir.path / "empty.db";
  std::ofstream{victim} << "[server]\nbind = \"127.0.0.1:3200\"\n";
  std::ofstream{empty};
  auto missing = dir.path / "missing.db";
  for (const auto& file : {victim, empty})
    std::filesystem::permissions(
        file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                  std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  auto bytes_of = [](const std::filesystem::path& file) {
    std::ifstream in{file, std::ios::binary};
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  };
  auto before = bytes_of(victim);
  auto to = std::string{"postgresql://emr@127.0.0.1:1/emr"};
  auto not_sqlite = run_cli({"store", "migrate", "--from", victim.string(), "--to", to});
  EXPECT_EQ(not_sqlite.code, 1);
  EXPECT_EQ(not_sqlite.err,
            "emr: sqlite_store: read " + victim.string() + ": file is not a database\n");
  auto blank = run_cli({"store", "migrate", "--from", empty.string(), "--to", to});
  EXPECT_EQ(blank.code, 1);
  EXPECT_EQ(blank.err, "emr: sqlite_store: " + empty.string() + " is empty, not an emr store\n");
  auto absent = run_cli({"store", "migrate", "--from", missing.string(), "--to", to});
  EXPECT_EQ(absent.code, 1);
  EXPECT_EQ(absent.err,
            "emr: sqlite_store: cannot read " + missing.string() + ": No such file or directory\n");

  EXPECT_EQ(bytes_of(victim), before);
  EXPECT_EQ(bytes_of(empty), "");
  EXPECT_FALSE(std::filesystem::exists(missing));
  for (const auto& file : {victim, empty}) {
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                  std::filesystem::perms::group_read | std::filesystem::perms::others_read)
        << file;
    for (const char* suffix : {"-wal", "-shm", "-journal"})
      EXPECT_FALSE(std::filesystem::exists(file.string() + suffix)) << file << suffix;
  }
}

// A secret mounted from a file ends in a line break. The server and the CLI both drop blanks
// around it, so the same bytes authenticate; one with a control character inside is refused by
// both with a line saying so.
TEST(admin_secret, blanks_around_it_are_dropped_by_server_and_cli_alike) {
  scratch_dir dir;
  emr_server emr{dir, {}, {{"EMR_ADMIN_SECRET", std::string{admin_secret} + " \r\n"}}};
  EXPECT_EQ(emr.admin("GET", "/admin/keys").status, 200);
  auto from_env = run_cli({"keys", "list", "--server", emr.base_url(), "--json"},
                          {{"EMR_ADMIN_SECRET", "\t" + std::string{admin_secret} + "\n"}});
  EXPECT_EQ(from_env.code, 0) << from_env.err;
  EXPECT_EQ(from_env.out, "{\"keys\":[]}\n");
  auto from_flag = run_cli({"keys", "list", "--server", emr.base_url(), "--json", "--admin-secret",
                            std::string{admin_secret} + "\n"});
  EXPECT_EQ(from_flag.code, 0) << from_flag.err;
  EXPECT_EQ(from_flag.out, "{\"keys\":[]}\n");

  auto broken = run_cli({"keys", "list", "--server", emr.base_url(), "--admin-secret",
                         "integration-admin\nsecret-0123456789"});
  EXPECT_EQ(broken.code, 1);
  EXPECT_EQ(broken.err, "emr: --admin-secret holds a control character inside (a line break, "
                        "a tab); the admin secret must be one line of printable characters\n");
  auto refused = run_cli({"serve", "--config", emr.config_path.string()},
                         {{"EMR_ADMIN_SECRET", "integration-admin\r\nsecret-0123456789"}});
  EXPECT_EQ(refused.code, 1);
  EXPECT_EQ(refused.err, "emr: EMR_ADMIN_SECRET holds a control character inside (a line "
                         "break, a tab); the admin secret must be one line of printable "
                         "characters\n");
}

TEST(config_commands, validate_reports_every_problem_with_its_line_and_show_fills_defaults) {
  scratch_dir dir;
  auto path = (dir.path / "bad.toml").string();
  std::ofstream{path}
      << "[server]\nbind = \"127.0.0.1:3200\"\nthreads = \"many\"\n[batching]\nwindow_ms = -5\n"
         "[nonsense]\nkey = 1\n";
  auto r = run_cli({"config", "validate", "--config", path});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find(path + ":3:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(path + ":5:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(path + ":7:"), std::string::npos) << r.out;
  auto as_json = run_cli({"config", "validate", "--config", path, "--json"});
  EXPECT_NE(as_json.code, 0);
  auto report = json::parse(as_json.out);
  EXPECT_EQ(report.at("valid").as_bool(), false);
  EXPECT_EQ(report.at("problems").as_array().size(), 3u);
  auto good = (dir.path / "good.toml").string();
  std::ofstream{good} << "[batching]\nwindow_ms = 20\n";
  auto shown = run_cli({"config", "show", "--config", good, "--json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  auto j = json::parse(shown.out);
  EXPECT_EQ(j.at("batching").at("window_ms").as_int64(), 20);
  EXPECT_EQ(j.at("server").at("bind").as_string(), "127.0.0.1:3200");
  auto human = run_cli({"config", "show", "--config", good});
  EXPECT_NE(human.out.find("window_ms = 20"), std::string::npos) << human.out;
  auto valid = run_cli({"config", "validate", "--config", good, "--json"});
  EXPECT_EQ(valid.code, 0);
  EXPECT_EQ(json::parse(valid.out).at("valid").as_bool(), true);
}

TEST_F(operator_surface, adding_and_removing_providers_under_load_loses_no_request) {
  ASSERT_EQ(emr.add_provider("first", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  ASSERT_EQ(emr.add_provider("second", "voyage", fake.url("/v1/embeddings"), "voyage-3-large"),
            201);
  auto key = emr.create_key();
  auto load = std::async(std::launch::async, [&] {
    return emr::load::closed_loop(
        {emr.base_url(), "/v1/embeddings", key, {{"provider", "\"first\""}}, {}}, 20, 30,
        [](std::size_t w, std::size_t i) {
          return emr::load::caller{{"w" + std::to_string(w) + " i" + std::to_string(i)}};
        },
        emr::load::expectation{"voyage-3.5"});
  });
  ASSERT_EQ(emr.add_provider("third", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  ASSERT_EQ(emr.admin("DELETE", "/admin/providers/second").status, 200);
  auto results = load.get();
  ASSERT_EQ(results.size(), 600u);
  for (const auto& r : results)
    ASSERT_TRUE(r.status == 200 && r.vectors_ok) << r.status << " " << r.error;
  EXPECT_EQ(emr.embed(key, R"({"input":"x","provider":"third"})").status, 200);
  EXPECT_EQ(emr.embed(key, R"({"input":"x","provider":"second"})").status, 400);
}

TEST_F(operator_surface, a_batch_of_twenty_costs_one_upstream_call_and_keeps_order) {
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto key = emr.create_key();
  json::array requests;
  for (int i = 0; i < 20; ++i)
    requests.push_back(json::object{{"id", std::to_string(i)},
                                    {"input", json::array{"text " + std::to_string(i)}},
                                    {"provider", "voyage"}});
  requests.push_back(json::object{{"id", "lost"}, {"input", "x"}, {"provider", "nowhere"}});
  auto a = http_call(emr.port(), "POST", "/v1/embeddings/batch",
                     json::serialize(json::object{{"requests", requests}}),
                     {{"Authorization", "Bearer " + key}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto answer = a.json();
  const auto& results = answer.at("results").as_array();
  ASSERT_EQ(results.size(), 21u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(results[i].at("id").as_string(), std::to_string(i));
    EXPECT_EQ(results[i].at("status").as_int64(), 200);
    EXPECT_TRUE(is_fakes_vector(results[i].at("response").at("data").at(0).at("embedding"),
                                "voyage-3.5", "text " + std::to_string(i)));
  }
  EXPECT_EQ(results[20].at("status").as_int64(), 400);
  EXPECT_NE(results[20].at("error").at("message").as_string().find("nowhere"), std::string::npos);
  EXPECT_EQ(fake.stats().at("texts").as_int64(), 20);
  EXPECT_EQ(fake.stats().at("calls").as_int64(), 1);
}

TEST_F(operator_surface, admin_stats_agree_with_what_the_fake_counted) {
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 64),
            201);
  auto key = emr.create_key();
  std::vector<emr::load::caller> callers(300);
  for (std::size_t i = 0; i < callers.size(); ++i)
    callers[i].texts = {"stat " + std::to_string(i), "more " + std::to_string(i)};
  auto results = emr::load::fire_concurrent(
      {emr.base_url(), "/v1/embeddings", key, {{"provider", "\"voyage\""}}, {}}, callers,
      emr::load::expectation{"voyage-3.5"});
  for (const auto& r : results)
    ASSERT_TRUE(r.vectors_ok) << r.error;
  auto fake_stats = fake.stats();
  auto stats = emr.stats();
  const auto& batcher = stats.at("providers").at(0).as_object();
  EXPECT_EQ(batcher.at("batches_flushed").as_int64(), fake_stats.at("calls").as_int64());
  EXPECT_EQ(batcher.at("upstream_attempts").as_int64(), fake_stats.at("calls").as_int64());
  EXPECT_EQ(batcher.at("texts_sent").as_int64(), fake_stats.at("texts").as_int64());
  EXPECT_EQ(batcher.at("texts_flushed").as_int64(), 600);
  EXPECT_EQ(batcher.at("chunks_received").as_int64(), 300);
  EXPECT_EQ(stats.at("health").at("voyage").at("requests").as_int64(),
            fake_stats.at("calls").as_int64());
  EXPECT_EQ(stats.at("request_actors_live").as_int64(), 0);
}

TEST_F(operator_surface, an_idle_server_reports_a_steady_actor_count) {
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  // An answered call means the batcher has spawned its upstream workers.
  ASSERT_EQ(emr.embed(emr.create_key(), R"({"input":"x","provider":"voyage"})").status, 200);
  // The caller's request actor answers before it exits; on a busy machine its thread may be
  // preempted in between, so the baseline waits for it to be gone.
  auto stats = emr.stats();
  for (int i = 0; i < 500 && stats.at("request_actors_live").as_int64() != 0; ++i)
    stats = emr.stats();
  ASSERT_EQ(stats.at("request_actors_live").as_int64(), 0);
  auto baseline = stats.at("actors_running").as_int64();
  // Every stats query spawns an actor of its own to ask the others; neither it nor the previous
  // query's (which may still be exiting) may be counted.
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(emr.stats().at("actors_running").as_int64(), baseline) << "query " << i;
}

TEST_F(operator_surface, no_response_log_or_stat_contains_a_secret) {
  ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
  auto created = emr.admin("POST", "/admin/keys", R"({"name":"leak-check"})").json();
  std::string key{created.at("key").as_string()};
  auto secret = key.substr(key.rfind('_') + 1);
  // The creation answer is the one place the key may appear; everything after is checked.
  std::vector<std::string> seen;
  auto record = [&](const http_answer& a) {
    seen.push_back(a.body);
    for (const auto& [k, v] : a.headers)
      seen.push_back(k + ": " + v);
  };
  record(emr.embed(key, R"({"input":"x","provider":"voyage"})"));
  record(emr.embed(key + "x", R"({"input":"x","provider":"voyage"})"));
  for (auto path : {"/admin/keys", "/admin/providers", "/admin/config", "/admin/stats"})
    record(emr.admin("GET", path));
  for (auto path : {"/health", "/health/providers", "/status"})
    record(http_call(emr.port(), "GET", path));
  record(emr.admin("POST", "/admin/providers/voyage/test"));
  ASSERT_EQ(emr.stop(), 0);
  seen.push_back(emr.process().log());
  // The store keeps the hash; nothing else may show it, nor the secret, nor the provider key.
  for (const auto& text : seen) {
    EXPECT_EQ(text.find(secret), std::string::npos) << text.substr(0, 300);
    EXPECT_EQ(text.find("sk-test-provider-key-4f1e"), std::string::npos) << text.substr(0, 300);
    EXPECT_EQ(text.find("$argon2id$"), std::string::npos) << text.substr(0, 300);
  }
}
