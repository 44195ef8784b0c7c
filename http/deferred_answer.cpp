#include "http/deferred_answer.hpp"

#include "http/answer_bodies.hpp"
#include "http/api_error.hpp"
#include "http/connection_stream.hpp"

#include <sys/uio.h>

#include <array>

namespace emr {

deferred_answer::deferred_answer(int fd, connection_owner& owner, bool client_closes)
    : fd_(fd), owner_(owner), client_closes_(client_closes) {}

void deferred_answer::request_done(std::string unread, bool read_whole, bool keep) {
  unread_ = std::move(unread);
  read_whole_ = read_whole;
  request_keep_ = keep;
  party_done();
}

void deferred_answer::send(httplib::Response res, bool may_wait) {
  // As httplib 0.11 writes an answer: its headers in their (case-blind) order, with these added.
  answer_keep_ = !client_closes_ && !owner_.stopping();
  if (answer_keep_)
    res.set_header("Keep-Alive", owner_.keep_alive());
  else
    res.set_header("Connection", "close");
  res.set_header("Content-Length", std::to_string(res.body.size()));
  head_ = "HTTP/1.1 " + std::to_string(res.status) + " " + reason_phrase(res.status) + "\r\n";
  for (const auto& [name, value] : res.headers)
    head_ += name + ": " + value + "\r\n";
  head_ += "\r\n";
  body_ = std::move(res.body);
  std::array<iovec, 2> all{iovec{head_.data(), head_.size()}, iovec{body_.data(), body_.size()}};
  std::span<iovec> parts{all};
  bool ok = connection_stream::send_what_fits(fd_, parts);
  if (!ok || parts.empty())
    return written(ok);
  std::size_t left = 0;
  for (const auto& part : parts)
    left += part.iov_len;
  if (may_wait)
    return finish(left);
  // A client that reads slowly: an HTTP thread waits for room, as it would have written it.
  owner_.run_blocking([self = shared_from_this(), left] { self->finish(left); });
}

void deferred_answer::finish(std::size_t left) {
  connection_stream stream{fd_, {}, owner_.write_timeout(), owner_.write_timeout()};
  auto sent = head_.size() + body_.size() - left;
  bool ok = true;
  if (sent < head_.size())
    ok = stream.write(head_.data() + sent, head_.size() - sent) >= 0;
  auto body_sent = sent > head_.size() ? sent - head_.size() : 0;
  ok =
      ok && stream.write(body_.data() + body_sent, body_.size() - body_sent) >= 0 && stream.flush();
  written(ok);
}

void deferred_answer::written(bool ok) {
  answer_bodies().give_back(std::move(body_));
  answer_keep_ = answer_keep_ && ok;
  answer_failed_ = !ok;
  party_done();
}

void deferred_answer::party_done() {
  if (parties_.fetch_sub(1, std::memory_order_acq_rel) != 1)
    return;
  owner_.carry_on(fd_,
                  {std::move(unread_), read_whole_, request_keep_ && answer_keep_, answer_failed_});
}

deferral_offer*& current_deferral_offer() {
  thread_local deferral_offer* offer = nullptr;
  return offer;
}

std::shared_ptr<deferred_answer> defer_answer(const httplib::Request& req) {
  auto offer = current_deferral_offer();
  // HTTP/1.0 has its own keep-alive rules, which httplib applies; emr answers go uncompressed
  // (the server drops Accept-Encoding), so httplib would add nothing else.
  if (!offer || offer->taken || req.version != "HTTP/1.1" || !offer->take())
    return nullptr;
  auto connection = req.get_header_value("Connection");
  bool client_closes = connection == "close" || connection == "Close";
  offer->taken = std::make_shared<deferred_answer>(offer->fd, *offer->owner, client_closes);
  return offer->taken;
}

} // namespace emr
