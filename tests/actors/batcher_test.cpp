// The batcher actor on CAF's deterministic test scheduler: what goes into each upstream call and
// which rows each caller gets back. Upstream calls are settled by the test (as a supervisor would):
// the batcher's workers are stand-ins that hold every call, so no attempt answers on its own, and
// nothing here opens a socket or a thread.

#include "actors/batcher.hpp"
#include "tests/actors/actor_fakes.hpp"
#include "tests/actors/batcher_client.hpp"
#include "tools/fake_vectors.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;
using testing::fake_worker_impl;
using testing::mock_health_state;

using testing::client_answer;
using testing::matrix_of;

using batcher_impl = caf::stateful_actor<batcher_state, batcher_actor::base>;
using health_impl = caf::stateful_actor<mock_health_state, health_actor::base>;

struct batcher_test : ::testing::Test, testing::test_system {
  health_actor health;
  batcher_actor batcher;
  std::vector<caf::actor> clients;
  std::vector<caf::actor_addr> supervisors;
  const batch_key key{"voyage-3.5", "", 0};
  std::uint64_t requests_per_minute = 0; ///< the operator's limit for the provider
  std::shared_ptr<arrivals> arriving = std::make_shared<arrivals>(); ///< requests being read
  bool in_fleet = false; ///< the provider's limit is shared with a fleet through `fleet`
  fleet_budget_actor fleet;

  void SetUp() override {
    start_test_system();
    provider_spec spec;
    spec.name = "voy";
    spec.type = provider_type::voyage;
    spec.endpoint = "http://127.0.0.1:9/v1/embeddings"; // never dialled: the workers are fakes
    spec.model = "voyage-3.5";
    spec.api_key_env = "EMR_TEST_NO_SUCH_KEY";
    spec.max_batch = 4;
    spec.requests_per_minute = requests_per_minute;
    batcher_settings settings;
    settings.flush.window = 50ms;
    settings.flush.linger = 1ms;
    settings.flush.coalesce =
        0ns; // a lone chunk goes at once; the policy's own tests cover coalescing
    settings.flush.initial_concurrency = 4;
    settings.flush.max_concurrency = 4;
    settings.upstream.connect_timeout = 1s;
    settings.upstream.read_timeout = 3s;
    settings.arriving = arriving;
    if (in_fleet) {
      fleet = sys->spawn(testing::fleet_stand_in, 0);
      settings.fleet = fleet;
    }
    // Every actor here is spawned with arguments: for a function actor spawned without any,
    // CAF 0.17's factory binds a reference to a null tuple, which UBSan rightly reports.
    health = sys->spawn(testing::mock_health, health_stats{});
    // Real supervisors (pure actors: they time attempts out on the test clock) over fake workers.
    auto factories = real_factories(spec, settings.upstream);
    factories.worker = [](caf::local_actor& owner) {
      return caf::actor_cast<upstream_actor>(owner.spawn(testing::fake_worker, 0));
    };
    batcher = sys->spawn(emr::batcher, spec, settings, health, std::move(factories));
    sched->run();
  }

  void TearDown() override {
    remember_supervisors();
    for (const auto& s : supervisors)
      if (auto hdl = caf::actor_cast<caf::actor>(s))
        caf::anon_send_exit(hdl, caf::exit_reason::kill);
    for (const auto& c : clients)
      caf::anon_send_exit(c, caf::exit_reason::kill);
    sched->run();
    caf::anon_send_exit(batcher, caf::exit_reason::kill);
    caf::anon_send_exit(health, caf::exit_reason::kill);
    if (fleet)
      caf::anon_send_exit(fleet, caf::exit_reason::kill);
    sched->run();
    fleet = nullptr;
    batcher = nullptr;
    health = nullptr;
    clients.clear();
    sys.reset();
  }

  batcher_state& st() {
    return dynamic_cast<batcher_impl&>(*caf::actor_cast<caf::abstract_actor*>(batcher)).state;
  }
  mock_health_state& health_st() {
    return dynamic_cast<health_impl&>(*caf::actor_cast<caf::abstract_actor*>(health)).state;
  }

  void remember_supervisors() {
    for (const auto& [id, actors] : st().actors_of)
      if (std::find(supervisors.begin(), supervisors.end(), actors.supervisor.address()) ==
          supervisors.end())
        supervisors.push_back(actors.supervisor.address());
  }

  std::shared_ptr<client_answer> send(std::vector<std::string> texts, batch_key k) {
    return send_chunk(chunk_request{std::move(k), std::move(texts), "req"});
  }
  std::shared_ptr<client_answer> send(std::vector<std::string> texts) {
    return send(std::move(texts), key);
  }
  std::shared_ptr<client_answer> send_until(std::vector<std::string> texts, clock_time deadline) {
    return send_chunk(chunk_request{key, std::move(texts), "req", deadline});
  }
  std::shared_ptr<client_answer> send_chunk(chunk_request chunk) {
    return testing::ask(*sys, clients, batcher, std::move(chunk));
  }

  // The worker the next call takes: like every worker here, it holds its calls.
  upstream_actor next_worker() { return st().idle_workers.back(); }
  testing::fake_worker_state& worker_st(const upstream_actor& w) {
    return testing::state_of<fake_worker_impl>(w);
  }

  void run() {
    sched->run();
    remember_supervisors();
  }
  void advance(caf::timespan d) {
    sched->advance_time(d);
    run();
  }

  // Batches in flight, by id.
  std::vector<std::uint64_t> batch_ids() {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, b] : st().calls)
      ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  const in_flight_call& batch(std::uint64_t id) { return *st().calls.find(id); }

  // A first, full call: later chunks count as dense arrivals, and no partial call is out to
  // hold them back (the policy sends one partial call at a time).
  void prime() {
    send({"a1", "a2", "a3", "a4"});
    run();
  }

  void complete(std::uint64_t id, shared_matrix m) {
    caf::anon_send(batcher, atom::done::value,
                   batch_outcome{id, std::move(m), std::nullopt, false, false, 1});
    run();
  }
  void refuse(std::uint64_t id, std::int64_t retry_after_ms) {
    batch_outcome refused{id,
                          nullptr,
                          failure{429, "rate_limited", "provider 'voy' answered 429: slow down",
                                  retry_after_ms, "voy"},
                          false,
                          true,
                          3};
    refused.rate_limited = true;
    caf::anon_send(batcher, atom::done::value, std::move(refused));
    run();
  }
  void fail(std::uint64_t id, failure f, bool splittable) {
    caf::anon_send(batcher, atom::done::value,
                   batch_outcome{id, nullptr, std::move(f), splittable, false, 1});
    run();
  }

  batcher_stats status() {
    auto out = std::make_shared<batcher_stats>();
    clients.push_back(sys->spawn(
        [out](caf::event_based_actor* self, batcher_actor b) {
          self->request(b, std::chrono::seconds{3600}, atom::status::value)
              .then([out](const batcher_stats& s) { *out = s; });
        },
        batcher));
    run();
    return *out;
  }

  // A text of about a hundred tokens: enough that a call's size shows in its time.
  static std::string long_text(const std::string& name) { return name + std::string(400, '.'); }

  // Answers calls as a provider of 20 ms a call and 10 us a token would: lone callers' calls of
  // one text, four and one, each followed by a quiet second.
  void teach_call_cost(std::chrono::microseconds per_token = 10us) {
    int taught = 0;
    for (int n : {1, 4, 1}) {
      std::vector<std::string> texts;
      for (int i = 0; i < n; ++i)
        texts.push_back(long_text("teach-" + std::to_string(taught++)));
      send(texts);
      run();
      complete_all(per_token);
      advance(1s);
    }
  }

  // One message of single-text chunks named PREFIX-0.., as a burst of callers queued together.
  std::shared_ptr<client_answer> burst(const std::string& prefix, int callers,
                                       std::vector<std::string>& texts) {
    std::vector<chunk_request> chunks;
    for (int i = 0; i < callers; ++i) {
      texts.push_back(long_text(prefix + "-" + std::to_string(i)));
      chunks.push_back(chunk_request{key, {texts.back()}, prefix});
    }
    return testing::ask_all(*sys, clients, batcher, std::move(chunks));
  }

  // A burst of four callers while no call is out: it leaves as `calls` calls, and each caller
  // gets its own vectors.
  void expect_burst_in_calls(const std::string& prefix, std::size_t calls) {
    std::vector<std::string> texts;
    auto answer = burst(prefix, 4, texts);
    run();
    EXPECT_EQ(batch_ids().size(), calls);
    complete_all();
    expect_each_callers_vectors(*answer, texts);
  }

  // Answers every call out with its own texts' vectors, each when a provider of 20 ms a call and
  // `per_token` a token would.
  void complete_all(std::chrono::microseconds per_token = 10us) {
    std::vector<std::pair<std::chrono::microseconds, std::uint64_t>> due;
    for (auto id : batch_ids())
      due.emplace_back(20ms + batch(id).tokens * per_token, id);
    std::sort(due.begin(), due.end());
    auto waited = 0us;
    for (auto [latency, id] : due) {
      advance(latency - waited);
      waited = latency;
      std::vector<std::string> texts;
      for (const auto& c : batch(id).chunks)
        texts.insert(texts.end(), c.texts.begin(), c.texts.end());
      batch_outcome answered{id, matrix_of(texts, 1), std::nullopt, false, false, 1};
      answered.latency = latency;
      caf::anon_send(batcher, atom::done::value, std::move(answered));
      run();
    }
  }

  static void expect_each_callers_vectors(const client_answer& all,
                                          const std::vector<std::string>& texts) {
    ASSERT_TRUE(all.answered);
    ASSERT_EQ(all.results.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i)
      expect_vectors(client_answer{true, {}, all.results[i], {}}, {texts[i]});
  }

  static void expect_vectors(const client_answer& a, const std::vector<std::string>& texts) {
    ASSERT_TRUE(a.answered);
    ASSERT_FALSE(a.result.error) << a.result.error->message;
    ASSERT_TRUE(a.result.matrix);
    ASSERT_EQ(a.result.rows.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      auto expected = fake::fake_vector("voyage-3.5", "", texts[i], 8);
      std::vector<float> got(a.result.matrix->row(a.result.rows[i]),
                             a.result.matrix->row(a.result.rows[i]) + a.result.matrix->dims);
      EXPECT_EQ(got, expected) << "text " << texts[i];
    }
  }
};

TEST_F(batcher_test, attaches_to_health_on_start) {
  EXPECT_EQ(health_st().attached, (std::vector<std::string>{"voy"}));
  EXPECT_EQ(st().idle_workers.size(), 4u);
}

TEST_F(batcher_test, a_lone_chunk_goes_at_once) {
  auto a = send({"a", "b"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(batch(1).chunks.size(), 1u);
  EXPECT_EQ(batch(1).rows, (std::vector<std::vector<std::uint32_t>>{{0, 1}}));
  EXPECT_EQ(batch(1).key, key);
  EXPECT_EQ(st().queues.texts(), 0u);
  EXPECT_FALSE(a->answered);
}

TEST_F(batcher_test, dense_chunks_hold_for_company_then_share_one_call) {
  prime();
  ASSERT_EQ(batch_ids().size(), 1u);
  auto b = send({"b", "c"});
  auto c = send({"d"});
  run();
  EXPECT_EQ(batch_ids().size(), 1u) << "held for company";
  EXPECT_EQ(st().queues.texts(), 3u);
  EXPECT_TRUE(st().policy.holding());
  advance(999us);
  EXPECT_EQ(batch_ids().size(), 1u);
  advance(1us);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(batch(2).chunks.size(), 2u);
  EXPECT_EQ(batch(2).rows, (std::vector<std::vector<std::uint32_t>>{{0, 1}, {2}}));
  EXPECT_EQ(st().queues.texts(), 0u);
  EXPECT_FALSE(b->answered);
  EXPECT_FALSE(c->answered);
}

TEST_F(batcher_test, one_messages_chunks_are_queued_together_and_share_one_call) {
  // A batch request's sub-requests arrive as one message. Alone, a first chunk goes at once (the
  // fixture has no coalescing); in one message, all are queued before the batcher decides.
  auto all = testing::ask_all(*sys, clients, batcher,
                              {chunk_request{key, {"s1"}, "sub-1"},
                               chunk_request{key, {"s2", "s1"}, "sub-2"},
                               chunk_request{key, {"s3"}, "sub-3"}});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(batch(1).chunks.size(), 3u);
  EXPECT_EQ(batch(1).rows, (std::vector<std::vector<std::uint32_t>>{{0}, {1, 0}, {2}}));
  EXPECT_FALSE(all->answered);
  complete(1, matrix_of({"s1", "s2", "s3"}, 3));
  ASSERT_TRUE(all->answered);
  ASSERT_EQ(all->results.size(), 3u);
  for (const auto& r : all->results)
    EXPECT_EQ(r.matrix, all->results.front().matrix) << "one call answered them all";
  client_answer second{true, {}, all->results[1], {}};
  client_answer third{true, {}, all->results[2], {}};
  expect_vectors(*all, {"s1"});
  expect_vectors(second, {"s2", "s1"});
  expect_vectors(third, {"s3"});
}

TEST_F(batcher_test, a_message_is_answered_once_its_last_chunk_is_each_in_its_place) {
  send({"old"});
  run();
  complete(1, matrix_of({"old"}, 1));
  batch_key query{"voyage-3.5", "query", 0};
  auto all = testing::ask_all(*sys, clients, batcher,
                              {chunk_request{key, {"new"}, "sub-1"},
                               chunk_request{key, {"old"}, "sub-2"}, // answered from call 1
                               chunk_request{query, {"q"}, "sub-3"},
                               chunk_request{key, {}, "sub-4"}}); // refused at once
  run();
  advance(1ms); // it came right after the first caller: a moment's hold for company
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2, 3})) << "one call per batch key";
  complete(2, matrix_of({"new"}, 1));
  EXPECT_FALSE(all->answered) << "the query's call is still out";
  complete(3, matrix_of({"q"}, 1));
  ASSERT_TRUE(all->answered);
  ASSERT_EQ(all->results.size(), 4u);
  expect_vectors(*all, {"new"});
  client_answer reused{true, {}, all->results[1], {}};
  expect_vectors(reused, {"old"});
  ASSERT_TRUE(all->results[2].matrix);
  EXPECT_EQ(all->results[2].rows, (std::vector<std::uint32_t>{0}));
  ASSERT_TRUE(all->results[3].error);
  EXPECT_EQ(all->results[3].error->status, 400);
  EXPECT_TRUE(st().free_messages.size() == st().messages.size()) << "every message answered";
}

TEST_F(batcher_test, a_busy_spells_first_batch_goes_as_two_calls_when_tokens_cost_time) {
  teach_call_cost();
  EXPECT_NEAR(st().cost.ns_per_token(), 10'000, 100);
  auto calls_before = batch_ids().size();
  ASSERT_EQ(calls_before, 0u);
  std::vector<std::string> first;
  auto a = burst("a", 4, first);
  run();
  // Four texts of 100 tokens cost 4 ms in one call; two calls save 2 ms, against the 1.05 ms (a
  // twentieth of a 21 ms call) a further call must save. A third would save 0.67 ms more, but a
  // batch goes as two calls at most.
  auto ids = batch_ids();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(batch(ids[0]).chunks.size(), 2u);
  EXPECT_EQ(batch(ids[1]).chunks.size(), 2u);
  EXPECT_EQ(status().calls_spread, 1u);

  // With calls out, the spell has begun: the next batch goes whole.
  std::vector<std::string> second;
  auto b = burst("b", 4, second);
  run();
  ids = batch_ids();
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(batch(ids.back()).chunks.size(), 4u);
  complete_all();
  expect_each_callers_vectors(*a, first);
  expect_each_callers_vectors(*b, second);

  // Every call is back, but one started moments ago: steady load, whose every round would pay
  // for further calls again, gets full calls.
  std::vector<std::string> third;
  auto c = burst("c", 4, third);
  run();
  ASSERT_EQ(batch_ids().size(), 1u);
  complete_all();
  expect_each_callers_vectors(*c, third);

  // Quiet for four typical calls: the next burst opens a spell of its own.
  advance(4 * st().cost.typical());
  expect_burst_in_calls("d", 2);
  EXPECT_EQ(status().calls_spread, 2u);
}

TEST_F(batcher_test, a_busy_spells_first_batch_goes_whole_while_a_further_full_call_is_read) {
  teach_call_cost();
  // Four requests (a full call here) wait for an HTTP thread: the burst is at least twice this
  // batch, and its later calls carry the rest.
  std::vector<arrivals::in_transit> queued;
  for (int i = 0; i < 4; ++i)
    queued.push_back(arriving->arrive());
  expect_burst_in_calls("a", 1);
  EXPECT_EQ(status().calls_spread, 0u);

  // Three: fewer than a further call's worth. The next spell's first batch is spread again.
  queued.pop_back();
  advance(4 * st().cost.typical());
  expect_burst_in_calls("b", 2);
  EXPECT_EQ(status().calls_spread, 1u);
}

TEST_F(batcher_test, a_provider_whose_calls_take_as_long_at_any_size_gets_full_calls) {
  teach_call_cost(0us);
  std::vector<std::string> texts;
  auto a = burst("a", 4, texts);
  run();
  ASSERT_EQ(batch_ids().size(), 1u);
  EXPECT_EQ(status().calls_spread, 0u);
  complete_all(0us);
  expect_each_callers_vectors(*a, texts);
}

TEST_F(batcher_test, a_full_call_goes_without_waiting) {
  prime();
  send({"b", "c"});
  run();
  EXPECT_EQ(batch_ids().size(), 1u);
  send({"d", "e"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(batch(2).rows, (std::vector<std::vector<std::uint32_t>>{{0, 1}, {2, 3}}));
}

TEST_F(batcher_test, a_chunk_that_does_not_fit_waits_for_the_next_call) {
  prime();
  send({"b", "c", "d"});
  send({"e", "f"});
  run();
  // b,c,d is not full alone, but e,f cannot join it: the queue is full and goes now.
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(batch(2).chunks.size(), 1u);
  EXPECT_EQ(batch(2).chunks.front().texts, (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(st().queues.texts(), 2u);
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(batch(3).chunks.front().texts, (std::vector<std::string>{"e", "f"}));
}

TEST_F(batcher_test, while_every_slot_is_busy_chunks_wait_and_a_freed_slot_takes_them_together) {
  for (const char* t : {"a", "b", "c", "d"}) // four full calls: the window of four is busy
    send({std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"});
  run();
  ASSERT_EQ(batch_ids().size(), 4u);
  auto e = send({"e"});
  auto f = send({"f", "g"});
  run();
  advance(50ms); // even past the window: there is no slot to send with
  EXPECT_EQ(batch_ids().size(), 4u);
  EXPECT_EQ(st().queues.texts(), 3u);
  complete(1, matrix_of({"a1", "a2", "a3", "a4"}, 4));
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(batch(5).chunks.size(), 2u) << "the freed slot carries everything queued";
  EXPECT_EQ(batch(5).rows, (std::vector<std::vector<std::uint32_t>>{{0}, {1, 2}}));
  complete(5, matrix_of({"e", "f", "g"}, 3));
  expect_vectors(*e, {"e"});
  expect_vectors(*f, {"f", "g"});
}

TEST_F(batcher_test, callers_sharing_texts_fill_one_call_counted_in_distinct_texts) {
  for (const char* t : {"a", "b", "c", "d"}) // four full calls: the window of four is busy
    send({std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"});
  run();
  ASSERT_EQ(batch_ids().size(), 4u);
  // Ten callers, eleven texts asked for, four distinct: one call of four texts carries them all.
  std::vector<std::shared_ptr<client_answer>> callers;
  for (int i = 0; i < 9; ++i)
    callers.push_back(send({i % 2 ? "p" : "q"}));
  callers.push_back(send({"q", "r", "s"}));
  auto next = send({"t"}); // a fifth distinct text: the next call's
  run();
  EXPECT_EQ(st().queues.texts(), 13u);
  complete(1, matrix_of({"a1", "a2", "a3", "a4"}, 4));
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(batch(5).chunks.size(), 10u);
  EXPECT_EQ(batch(5).row_of.size(), 4u);
  EXPECT_EQ(st().queues.texts(), 1u);
  complete(5, matrix_of({"q", "p", "r", "s"}, 4));
  for (int i = 0; i < 9; ++i)
    expect_vectors(*callers[i], {i % 2 ? "p" : "q"});
  expect_vectors(*callers[9], {"q", "r", "s"});
  EXPECT_FALSE(next->answered);
}

TEST_F(batcher_test, a_call_never_exceeds_the_token_cap) {
  // Each text is estimated at 120,001 tokens: two fit voyage-3.5's 320K a call, three do not.
  const std::string t1(360'000, 'x'), t2(360'000, 'y'), t3(360'000, 'z');
  prime();
  send({t1});
  send({t2});
  send({t3});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2})) << "two texts fill the call's tokens";
  EXPECT_EQ(batch(2).chunks.size(), 2u);
  EXPECT_EQ(st().queues.texts(), 1u);
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(batch(3).chunks.front().texts, (std::vector<std::string>{t3}));
}

TEST_F(batcher_test, different_batch_keys_never_share_a_call) {
  prime();
  batch_key query{"voyage-3.5", "query", 0};
  batch_key document{"voyage-3.5", "document", 0};
  batch_key small{"voyage-3.5", "query", 256};
  send({"q1"}, query);
  send({"d1"}, document);
  send({"s1"}, small);
  send({"q2"}, query);
  run();
  advance(1ms);
  ASSERT_EQ(batch_ids().size(), 4u);
  std::map<std::string, std::pair<batch_key, std::size_t>> by_first_text;
  for (auto id : batch_ids())
    for (const auto& chunk : batch(id).chunks)
      by_first_text[chunk.texts.front()] = {batch(id).key, batch(id).chunks.size()};
  EXPECT_EQ(by_first_text["q1"].first, query);
  EXPECT_EQ(by_first_text["q2"].first, query);
  EXPECT_EQ(by_first_text["q1"].second, 2u);
  EXPECT_EQ(by_first_text["d1"].first, document);
  EXPECT_EQ(by_first_text["d1"].second, 1u);
  EXPECT_EQ(by_first_text["s1"].first, small);
  EXPECT_EQ(by_first_text["s1"].second, 1u);
}

TEST_F(batcher_test, identical_texts_are_sent_once_and_each_caller_gets_its_own_rows) {
  auto a = send({"x"});
  run();
  auto b = send({"x", "y"});
  // Five texts asked, four distinct: the call is full and goes at once.
  auto c = send({"zzzzzz", "x", "w"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(batch(2).rows, (std::vector<std::vector<std::uint32_t>>{{0, 1}, {2, 0, 3}}));
  // The upstream call carries x, y, zzzzzz, w once each: rows 0..3.
  complete(2, matrix_of({"x", "y", "zzzzzz", "w"}, 35));
  ASSERT_TRUE(b->answered);
  ASSERT_TRUE(c->answered);
  EXPECT_FALSE(a->answered);
  expect_vectors(*b, {"x", "y"});
  expect_vectors(*c, {"zzzzzz", "x", "w"});
  EXPECT_EQ(b->result.matrix, c->result.matrix) << "one shared matrix, no copy per caller";
  // Token usage is shared by estimated tokens: 2 of 7 and 5 of 7.
  EXPECT_EQ(b->result.tokens, 10);
  EXPECT_EQ(c->result.tokens, 25);
  complete(1, matrix_of({"x"}, 1));
  expect_vectors(*a, {"x"});
  EXPECT_TRUE(st().calls.empty());
  EXPECT_EQ(st().idle_workers.size(), 4u);

  auto s = status();
  EXPECT_EQ(s.chunks_received, 3u);
  EXPECT_EQ(s.batches_flushed, 2u);
  EXPECT_EQ(s.texts_flushed, 6u);
  EXPECT_EQ(s.texts_sent, 5u);
  EXPECT_EQ(s.largest_call_texts, 4u);
  EXPECT_DOUBLE_EQ(s.compression, 1.5);
  EXPECT_EQ(s.upstream_attempts, 2u);
  EXPECT_EQ(s.queued_texts, 0u);
  EXPECT_EQ(s.in_flight_calls, 0u);
  EXPECT_EQ(s.batches_failed, 0u);
}

TEST_F(batcher_test, a_chunk_whose_texts_are_already_out_joins_that_call) {
  auto a = send({"x", "y"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  auto b = send({"y"});
  auto c = send({"y", "x"});
  auto d = send({"x", "z"}); // z is not out: this one waits for a call of its own
  run();
  EXPECT_EQ(batch(1).chunks.size(), 3u);
  EXPECT_EQ(batch(1).rows, (std::vector<std::vector<std::uint32_t>>{{0, 1}, {1}, {1, 0}}));
  EXPECT_EQ(st().queues.texts(), 2u);
  complete(1, matrix_of({"x", "y"}, 4));
  expect_vectors(*a, {"x", "y"});
  expect_vectors(*b, {"y"});
  expect_vectors(*c, {"y", "x"});
  EXPECT_FALSE(d->answered);
  auto s = status();
  EXPECT_EQ(s.chunks_joined, 2u);
  EXPECT_EQ(s.texts_sent, 2u);
}

TEST_F(batcher_test, texts_a_call_just_answered_are_answered_again_without_a_call) {
  auto a = send({"x", "y"});
  run();
  complete(1, matrix_of({"x", "y"}, 4));
  expect_vectors(*a, {"x", "y"});
  auto b = send({"y", "x"});
  run();
  expect_vectors(*b, {"y", "x"});
  EXPECT_EQ(b->result.tokens, a->result.tokens) << "the same texts' share of that call's usage";
  EXPECT_EQ(b->result.matrix, a->result.matrix);
  EXPECT_TRUE(st().calls.empty());
  advance(1000ms); // reuse_ms has passed: the same texts need a call again
  auto c = send({"x"});
  run();
  EXPECT_FALSE(c->answered);
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(status().chunks_reused, 1u);
}

TEST_F(batcher_test, a_text_kept_from_two_calls_answers_from_the_newer_once_the_older_expires) {
  auto a = send({"x", "y"});
  run();
  complete(1, matrix_of({"x", "y"}, 4));
  advance(500ms);
  auto b = send({"x", "z"}); // "x" alone was kept: no reuse for "z", so a call
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2}));
  complete(2, matrix_of({"x", "z"}, 4));
  expect_vectors(*b, {"x", "z"});
  advance(600ms); // the first call's vectors expire, the second's are kept
  auto c = send({"x"});
  run();
  expect_vectors(*c, {"x"});
  EXPECT_EQ(c->result.matrix, b->result.matrix);
  auto d = send({"y"});
  run();
  EXPECT_FALSE(d->answered) << "only the expired call carried y";
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(status().chunks_reused, 1u);
}

TEST_F(batcher_test, a_failed_call_fails_every_chunk_in_it) {
  prime();
  auto b = send({"b"});
  auto c = send({"c"});
  run();
  advance(1ms);
  fail(2, failure{502, "provider_error", "provider 'voy' answered 500: boom", -1, "voy"}, false);
  for (auto* r : {b.get(), c.get()}) {
    ASSERT_TRUE(r->answered);
    ASSERT_TRUE(r->result.error);
    EXPECT_EQ(r->result.error->status, 502);
    EXPECT_EQ(r->result.error->message, "provider 'voy' answered 500: boom");
    EXPECT_FALSE(r->result.matrix);
  }
  EXPECT_EQ(status().batches_failed, 1u);
}

TEST_F(batcher_test, a_rejected_call_is_split_until_the_culprit_is_alone) {
  prime();
  auto good = send({"good"});
  auto bad = send({"bad"});
  run();
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2}));
  fail(2, failure{400, "invalid_request", "provider 'voy' answered 400: too long", -1, "voy"},
       true);
  EXPECT_FALSE(good->answered);
  EXPECT_FALSE(bad->answered);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 3, 4})) << "halves are sent at once";
  EXPECT_EQ(batch(3).chunks.front().texts, (std::vector<std::string>{"good"}));
  EXPECT_EQ(batch(4).chunks.front().texts, (std::vector<std::string>{"bad"}));
  fail(4, failure{400, "invalid_request", "provider 'voy' answered 400: too long", -1, "voy"},
       true);
  ASSERT_TRUE(bad->answered);
  ASSERT_TRUE(bad->result.error);
  EXPECT_EQ(bad->result.error->status, 400);
  complete(3, matrix_of({"good"}, 2));
  expect_vectors(*good, {"good"});
  auto s = status();
  EXPECT_EQ(s.batches_split, 1u);
  EXPECT_EQ(s.batches_failed, 1u);
}

TEST_F(batcher_test, sin_bin_fails_queued_chunks_and_refuses_new_ones) {
  prime();
  auto held = send({"b"});
  send({"c"});
  run();
  ASSERT_EQ(st().queues.texts(), 2u);
  auto now = sched->clock().now();
  caf::anon_send(batcher, atom::condition::value, provider_condition{true, now + 30s, {}});
  run();
  ASSERT_TRUE(held->answered);
  ASSERT_TRUE(held->result.error);
  EXPECT_EQ(held->result.error->status, 503);
  EXPECT_EQ(held->result.error->type, "provider_unavailable");
  EXPECT_EQ(held->result.error->retry_after_ms, 30'000);
  EXPECT_EQ(st().queues.texts(), 0u);
  auto late = send({"d"});
  run();
  ASSERT_TRUE(late->answered);
  ASSERT_TRUE(late->result.error);
  EXPECT_EQ(late->result.error->status, 503);
  EXPECT_EQ(late->result.error->retry_after_ms, 30'000);
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{1})) << "the call in flight is left to finish";
}

TEST_F(batcher_test, a_rate_limit_pause_holds_flushes_until_it_ends) {
  auto now = sched->clock().now();
  caf::anon_send(batcher, atom::condition::value, provider_condition{false, {}, now + 2s});
  run();
  prime();
  EXPECT_TRUE(st().calls.empty());
  advance(1999ms);
  EXPECT_TRUE(st().calls.empty());
  advance(1ms);
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
}

TEST_F(batcher_test, chunks_beyond_the_limits_are_refused_at_once) {
  auto big = send({"a", "b", "c", "d", "e"});
  auto empty = send({});
  auto long_text = send({std::string(1'000'000, 'x')}); // ~333k tokens > voyage-3.5's 320k
  run();
  for (auto* r : {big.get(), empty.get(), long_text.get()}) {
    ASSERT_TRUE(r->answered);
    ASSERT_TRUE(r->result.error);
    EXPECT_EQ(r->result.error->status, 400);
    EXPECT_EQ(r->result.error->type, "invalid_request");
  }
  EXPECT_TRUE(st().calls.empty());
  EXPECT_EQ(status().chunks_received, 0u);
}

TEST_F(batcher_test, drain_flushes_held_chunks_at_once_and_refuses_new_ones) {
  prime();
  send({"b"});
  run();
  EXPECT_EQ(batch_ids().size(), 1u);
  caf::anon_send(batcher, atom::drain::value);
  run();
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2}));
  auto late = send({"c"});
  run();
  ASSERT_TRUE(late->answered);
  ASSERT_TRUE(late->result.error);
  EXPECT_EQ(late->result.error->status, 400);
}

TEST_F(batcher_test, a_pause_longer_than_a_callers_wait_refuses_its_chunk_at_once) {
  auto now = sched->clock().now();
  caf::anon_send(batcher, atom::condition::value, provider_condition{false, {}, now + 2s});
  run();
  auto hasty = send_until({"a"}, now + 1s);
  auto patient = send_until({"b"}, now + 3s);
  run();
  ASSERT_TRUE(hasty->answered) << "told at once, while another provider still has time";
  ASSERT_TRUE(hasty->result.error);
  EXPECT_EQ(hasty->result.error->status, 429);
  EXPECT_EQ(hasty->result.error->type, "rate_limited");
  EXPECT_EQ(hasty->result.error->retry_after_ms, 2000);
  EXPECT_FALSE(patient->answered) << "its caller waits past the pause: it queues";
  advance(2s);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(batch(1).chunks.front().texts, (std::vector<std::string>{"b"}));
  EXPECT_EQ(status().chunks_refused_paused, 1u);
}

TEST_F(batcher_test, a_pause_fails_the_queued_chunks_that_cannot_outlast_it) {
  for (const char* t : {"a", "b", "c", "d"}) // every slot busy: later chunks queue
    send({std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"});
  run();
  auto now = sched->clock().now();
  auto hasty = send_until({"e"}, now + 1s);
  auto patient = send_until({"f"}, now + 10s);
  run();
  caf::anon_send(batcher, atom::condition::value, provider_condition{false, {}, now + 5s});
  run();
  ASSERT_TRUE(hasty->answered);
  ASSERT_TRUE(hasty->result.error);
  EXPECT_EQ(hasty->result.error->status, 429);
  EXPECT_EQ(hasty->result.error->retry_after_ms, 5000);
  EXPECT_FALSE(patient->answered);
  EXPECT_EQ(st().queues.texts(), 1u);
}

TEST_F(batcher_test, a_queued_chunk_whose_caller_stopped_waiting_is_dropped_and_never_sent) {
  for (const char* t : {"a", "b", "c", "d"})
    send({std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"});
  run();
  auto gone = send_until({"e"}, sched->clock().now() + 100ms);
  auto stays = send({"f"});
  run();
  advance(99ms);
  EXPECT_FALSE(gone->answered);
  advance(1ms);
  ASSERT_TRUE(gone->answered) << "answered at its deadline, not held until a slot frees";
  ASSERT_TRUE(gone->result.error);
  EXPECT_EQ(gone->result.error->status, 504);
  EXPECT_EQ(st().queues.texts(), 1u);
  complete(1, matrix_of({"a1", "a2", "a3", "a4"}, 4));
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(batch(5).chunks.size(), 1u) << "the freed slot carries only the caller still waiting";
  EXPECT_EQ(batch(5).chunks.front().texts, (std::vector<std::string>{"f"}));
  EXPECT_FALSE(stays->answered);
  EXPECT_EQ(status().chunks_expired, 1u);
}

TEST_F(batcher_test, a_chunk_joins_a_call_carrying_its_texts_whatever_its_deadline) {
  auto now = sched->clock().now();
  send_until({"x"}, now + 100ms);
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  send_until({"x"}, now + 50ms);
  send_until({"x"}, now + 1s);
  run();
  EXPECT_EQ(batch(1).chunks.size(), 3u);
  EXPECT_TRUE(batch(1).callers_wait_until == now + 1s)
      << "its retries may go on for as long as the latest caller waits";
  advance(50ms);
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{1})) << "no second call for the same text";
}

TEST_F(batcher_test, a_worker_blocked_past_the_backstop_gets_no_calls_until_it_answers) {
  auto hung = next_worker();
  auto a = send({"a"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  ASSERT_EQ(st().actors_of.at(1).worker, hung);
  EXPECT_EQ(worker_st(hung).calls.size(), 1u);
  advance(7s); // connect_timeout + 2 x read_timeout: the supervisor gives up on the worker
  ASSERT_TRUE(a->answered);
  ASSERT_TRUE(a->result.error);
  EXPECT_EQ(a->result.error->status, 502);
  auto s = status();
  EXPECT_EQ(s.blocked_workers, 1u);
  EXPECT_EQ(s.workers, 5u) << "a replacement keeps four workers usable";
  EXPECT_EQ(st().idle_workers.size(), 4u);
  EXPECT_EQ(std::count(st().idle_workers.begin(), st().idle_workers.end(), hung), 0);
  advance(30s);
  EXPECT_EQ(worker_st(hung).calls.size(), 1u) << "no retry queued behind the blocked call";
  // The timeout halved the call window to two: both calls go to other workers.
  for (const char* t : {"b", "c"})
    send({std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"});
  run();
  ASSERT_EQ(batch_ids().size(), 2u);
  for (auto id : batch_ids())
    EXPECT_NE(st().actors_of.at(id).worker, hung);
  caf::anon_send(caf::actor_cast<caf::actor>(hung), testing::release_atom::value, upstream_reply{});
  run();
  s = status();
  EXPECT_EQ(s.blocked_workers, 0u);
  EXPECT_EQ(s.workers, 4u) << "the replacement stays; the extra worker retires";
  EXPECT_EQ(std::count(st().all_workers.begin(), st().all_workers.end(), hung), 0);
}

TEST_F(batcher_test, workers_that_die_blocked_are_replaced_and_the_queue_moves_again) {
  // Five calls hang past the backstop, one after another: replacements keep four workers usable
  // until the bound of twice that many, so the fifth leaves three.
  std::vector<upstream_actor> hung;
  for (int i = 0; i < 5; ++i) {
    hung.push_back(next_worker());
    send({"hang " + std::to_string(i)});
    run();
    advance(7s);
  }
  auto s = status();
  ASSERT_EQ(s.blocked_workers, 5u);
  ASSERT_EQ(s.workers, 8u) << "no more threads than twice the concurrency";
  for (const auto& worker : hung)
    caf::anon_send(caf::actor_cast<caf::actor>(worker), testing::crash_atom::value);
  run();
  s = status();
  EXPECT_EQ(s.blocked_workers, 0u);
  EXPECT_EQ(s.workers, 4u) << "the dead are replaced up to four usable workers";
  EXPECT_EQ(st().idle_workers.size(), 4u);
  auto after = send({"after"});
  run();
  ASSERT_EQ(batch_ids().size(), 1u) << "a caller's chunk still finds a worker";
  EXPECT_EQ(std::count(hung.begin(), hung.end(), st().actors_of.at(batch_ids().front()).worker), 0);
  EXPECT_FALSE(after->answered);
}

} // namespace
} // namespace emr

namespace emr {
namespace {

TEST_F(batcher_test, a_burst_goes_when_its_arrivals_stop_though_a_partial_call_is_out) {
  prime();
  send({"b"});
  run();
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2})) << "a partial call is out";
  auto c = send({"c"});
  auto d = send({"d"});
  run();
  EXPECT_EQ(batch_ids().size(), 2u) << "the burst is still arriving";
  advance(st().policy.hold_gap());
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2, 3}))
      << "sent once the arrivals stopped, not when the partial call returns";
  EXPECT_EQ(batch(3).chunks.size(), 2u);
  complete(3, matrix_of({"c", "d"}, 2));
  expect_vectors(*c, {"c"});
  expect_vectors(*d, {"d"});
}

TEST_F(batcher_test, a_partial_batch_waits_while_other_requests_are_still_being_read) {
  auto reading = std::make_unique<arrivals::entry>(*arriving);
  auto a = send({"a"});
  run();
  EXPECT_TRUE(batch_ids().empty()) << "another request is on its way in";
  advance(10ms);
  EXPECT_TRUE(batch_ids().empty());
  auto b = send({"b"});
  run();
  EXPECT_TRUE(batch_ids().empty());
  reading.reset();
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}))
      << "sent at the next look once nothing is being read";
  EXPECT_EQ(batch(1).chunks.size(), 2u);
  complete(1, matrix_of({"a", "b"}, 2));
  expect_vectors(*a, {"a"});
  expect_vectors(*b, {"b"});
}

TEST_F(batcher_test, requests_being_read_hold_a_batch_no_longer_than_the_window) {
  arrivals::entry reading{*arriving};
  auto a = send({"a"});
  run();
  advance(49ms);
  EXPECT_TRUE(batch_ids().empty());
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  complete(1, matrix_of({"a"}, 2));
  expect_vectors(*a, {"a"});
}

struct paced_batcher_test : batcher_test {
  void SetUp() override {
    requests_per_minute = 60; // a burst of 6 calls, then one every 1.11 s
    batcher_test::SetUp();
  }
};

TEST_F(paced_batcher_test, calls_fill_up_and_are_paced_as_the_budget_runs_out) {
  for (const char* t : {"a", "b", "c", "d"})
    send({std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2, 3, 4})) << "the burst goes at once";
  for (std::uint64_t id = 1; id <= 4; ++id)
    complete(id, matrix_of({"x1", "x2", "x3", "x4"}, 4));
  auto s = status();
  EXPECT_EQ(s.requests_per_minute, 60u);
  EXPECT_EQ(s.requests_limit_source, "operator");
  EXPECT_EQ(s.requests_left, 56);
  EXPECT_EQ(s.flush_threshold, 2u) << "a third of the burst left: calls of at least 2 texts";
  // A lone text now waits for company, up to the window.
  auto lone = send({"e"});
  run();
  advance(49ms);
  EXPECT_EQ(st().calls.size(), 0u);
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{5}));
  complete(5, matrix_of({"e"}, 5));
  expect_vectors(*lone, {"e"});
  EXPECT_EQ(status().flush_threshold, 3u);
  send({"f1", "f2", "f3", "f4"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{6})) << "the budget's last call";
  complete(6, matrix_of({"f1", "f2", "f3", "f4"}, 6));
  // Spent: the next call waits for the bucket, past the window.
  auto paced = send({"g1", "g2", "g3", "g4"});
  run();
  EXPECT_TRUE(st().calls.empty());
  EXPECT_GT(status().paced_for_ms, 1000);
  advance(1000ms);
  EXPECT_TRUE(st().calls.empty());
  advance(112ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{7}));
  complete(7, matrix_of({"g1", "g2", "g3", "g4"}, 7));
  expect_vectors(*paced, {"g1", "g2", "g3", "g4"});
}

TEST_F(batcher_test, a_call_refused_past_the_retries_goes_back_to_the_head_of_its_queue) {
  auto now = sched->clock().now();
  auto both = testing::ask_all(
      *sys, clients, batcher,
      {chunk_request{key, {"a"}, "patient"}, chunk_request{key, {"b"}, "hasty", now + 1s}});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  refuse(1, 2000);
  // The provider asked for two seconds: the hasty caller cannot wait that long and hears it now;
  // the patient one is queued again.
  EXPECT_FALSE(both->answered);
  auto s = status();
  EXPECT_EQ(s.batches_requeued, 1u);
  EXPECT_EQ(s.batches_failed, 0u);
  EXPECT_EQ(s.queued_callers, 0u) << "put back ahead of the queues";
  EXPECT_TRUE(st().queues.waiting());
  advance(1999ms);
  EXPECT_TRUE(st().calls.empty());
  advance(1ms);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2})) << "sent again once the wait is over";
  ASSERT_EQ(batch(2).chunks.size(), 1u);
  EXPECT_EQ(batch(2).chunks.front().texts, (std::vector<std::string>{"a"}));
  complete(2, matrix_of({"a"}, 2));
  ASSERT_TRUE(both->answered);
  ASSERT_EQ(both->results.size(), 2u);
  ASSERT_TRUE(both->results[1].error);
  EXPECT_EQ(both->results[1].error->status, 429);
  EXPECT_EQ(both->results[1].error->retry_after_ms, 2000);
  client_answer patient{true, {}, both->results[0], {}};
  expect_vectors(patient, {"a"});
}

TEST_F(batcher_test, a_call_refused_without_a_named_wait_rests_a_second_before_going_again) {
  send({"a"});
  run();
  refuse(1, -1);
  advance(999ms);
  EXPECT_TRUE(st().calls.empty());
  advance(1ms);
  EXPECT_EQ(batch_ids(), (std::vector<std::uint64_t>{2}));
}

TEST_F(batcher_test, an_answers_rate_limit_headers_set_the_limits_in_force) {
  send({"a"});
  run();
  batch_outcome answered{1, matrix_of({"a"}, 1), std::nullopt, false, false, 1};
  answered.limits.limit_requests = 100;
  answered.limits.remaining_requests = 99;
  answered.limits.limit_tokens = 50'000;
  answered.limits.remaining_tokens = 49'990;
  caf::anon_send(batcher, atom::done::value, std::move(answered));
  run();
  auto s = status();
  EXPECT_EQ(s.requests_per_minute, 100u);
  EXPECT_EQ(s.requests_limit_source, "headers");
  EXPECT_EQ(s.requests_left, 99);
  EXPECT_EQ(s.tokens_per_minute, 50'000u);
  EXPECT_EQ(s.tokens_limit_source, "headers");
  EXPECT_EQ(s.flush_threshold, 1u);
}

struct fleet_batcher_test : batcher_test {
  void SetUp() override {
    requests_per_minute = 600;
    in_fleet = true;
    batcher_test::SetUp();
  }
  testing::fleet_stand_in_state& fleet_st() {
    return testing::state_of<
        caf::stateful_actor<testing::fleet_stand_in_state, fleet_budget_actor::base>>(fleet);
  }
  void will_grant(std::uint64_t requests, double ready_in_s = 0) {
    budget_grant g;
    g.requests = requests;
    g.ready_in_s = ready_in_s;
    g.replicas = 3;
    fleet_st().answers.push_back(g);
  }
};

TEST_F(fleet_batcher_test, calls_go_only_as_far_as_the_fleet_grants_them) {
  will_grant(2);
  will_grant(0, 0.5);
  will_grant(1);
  std::vector<std::shared_ptr<client_answer>> callers;
  for (const char* t : {"a", "b", "c"})
    callers.push_back(send(
        {std::string(t) + "1", std::string(t) + "2", std::string(t) + "3", std::string(t) + "4"}));
  run();
  ASSERT_GE(fleet_st().asks.size(), 1u);
  EXPECT_EQ(fleet_st().asks[0].provider, "voy");
  EXPECT_EQ(fleet_st().asks[0].requests_per_minute, 600u);
  EXPECT_EQ(fleet_st().asks[0].requests, 1u) << "asked as the first caller's call was queued";
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2})) << "two granted, two sent";
  EXPECT_EQ(fleet_st().asks.size(), 2u) << "asked again once the grant was spent";
  EXPECT_EQ(status().paced_for_ms, 500) << "the fleet's bucket holds a call again in 0.5 s";
  advance(499ms);
  EXPECT_EQ(batch_ids().size(), 2u);
  advance(1ms);
  EXPECT_EQ(fleet_st().asks.size(), 3u);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1, 2, 3}));
  auto s = status();
  EXPECT_EQ(s.budget_sharing, "fleet");
  EXPECT_EQ(s.fleet_replicas, 3u);
  EXPECT_EQ(s.fleet_grants, 3u);
  for (std::uint64_t id = 1; id <= 3; ++id)
    complete(id, matrix_of(batch(id).chunks.front().texts, id));
  for (auto& c : callers)
    EXPECT_TRUE(c->answered);
}

TEST_F(fleet_batcher_test, out_of_reach_it_spends_a_third_of_the_limit_alone_starting_empty) {
  // No grant scripted: the ledger is out of reach.
  auto a = send({"a"});
  run();
  auto s = status();
  EXPECT_EQ(s.budget_sharing, "fleet offline");
  EXPECT_EQ(s.requests_per_minute, 200u) << "a third of 600, the fleet being 3 (the last count)";
  EXPECT_EQ(batch_ids().size(), 0u) << "no burst: the shared bucket's may be spent already";
  advance(std::chrono::milliseconds{334}); // 180 a minute refill one call in 333.3 ms
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  complete(1, matrix_of({"a"}, 1));
  expect_vectors(*a, {"a"});
}

TEST_F(fleet_batcher_test, a_refusal_pauses_the_fleet_and_its_callers_go_on_the_next_grant) {
  will_grant(2);
  auto a = send({"a"});
  run();
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1}));
  refuse(1, 2000);
  ASSERT_EQ(fleet_st().pauses.size(), 1u);
  EXPECT_EQ(fleet_st().pauses[0], (std::pair<std::string, double>{"voy", 2.0}));
  // Put back for after the pause, when the grant in hand has expired: a new one is asked then.
  will_grant(1);
  advance(1999ms);
  EXPECT_EQ(fleet_st().asks.size(), 1u) << "none during the pause";
  advance(1ms);
  auto s = status();
  EXPECT_EQ(fleet_st().asks.size(), 2u) << s.budget_sharing << " paced " << s.paced_for_ms;
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{2}));
  complete(2, matrix_of({"a"}, 1));
  expect_vectors(*a, {"a"});
}

TEST_F(fleet_batcher_test, a_pause_another_replica_met_holds_this_one_too) {
  auto now = sched->clock().now();
  caf::anon_send(batcher, atom::pause::value, 5.0);
  run();
  auto hasty = send_until({"b"}, now + 1s);
  auto patient = send_until({"c"}, now + 10s);
  run();
  ASSERT_TRUE(hasty->answered) << "told at once, while another provider still has time";
  ASSERT_TRUE(hasty->result.error);
  EXPECT_EQ(hasty->result.error->status, 429);
  EXPECT_FALSE(patient->answered);
  EXPECT_EQ(batch_ids().size(), 0u);
  EXPECT_GE(status().paused_for_ms, 4900);
  will_grant(1);
  advance(5s);
  ASSERT_EQ(batch_ids(), (std::vector<std::uint64_t>{1})) << "sent once the pause is over";
  complete(1, matrix_of({"c"}, 1));
  expect_vectors(*patient, {"c"});
}

} // namespace
} // namespace emr
