#include "http/waiting_connections.hpp"

#include <algorithm>

namespace emr {

std::optional<std::size_t> request_head_end(std::string_view received) {
  // Every line, the request line included, ends in LF, so the blank CR LF line is the first
  // "\n\r\n" wherever it is.
  auto at = received.find("\n\r\n");
  if (at == std::string_view::npos)
    return std::nullopt;
  return at + 3;
}

void waiting_connections::add(connection c, time_point now) {
  int fd = c.fd;
  held_.insert_or_assign(fd, held{std::move(c), now, 0});
}

waiting_connections::progress waiting_connections::received(int fd, std::string_view bytes,
                                                            time_point now) {
  auto it = held_.find(fd);
  if (it == held_.end())
    return progress::waiting;
  auto& h = it->second;
  if (h.conn.closing)
    return progress::waiting;
  if (h.conn.received.empty())
    h.since = now;
  h.conn.received.append(bytes);
  // A read may bring the head's end and more at once: the limit is on where the head ends.
  if (auto end = head_end(h))
    return *end <= limits_.max_head_bytes ? progress::head_complete : progress::head_too_large;
  return h.conn.received.size() >= limits_.max_head_bytes ? progress::head_too_large
                                                          : progress::waiting;
}

std::optional<std::size_t> waiting_connections::head_end(held& h) {
  // Only the bytes new since the last look (and the two before them) can complete the
  // terminator, so a head sent a byte at a time is still searched once.
  std::string_view all = h.conn.received;
  auto from = h.scanned < 2 ? 0 : h.scanned - 2;
  h.scanned = all.size();
  auto end = request_head_end(all.substr(from));
  if (!end)
    return std::nullopt;
  return from + *end;
}

std::optional<waiting_connections::connection> waiting_connections::take(int fd) {
  auto it = held_.find(fd);
  if (it == held_.end())
    return std::nullopt;
  auto c = std::move(it->second.conn);
  held_.erase(it);
  return c;
}

std::vector<waiting_connections::expiry> waiting_connections::take_expired(time_point now) {
  std::vector<expiry> expired;
  for (auto it = held_.begin(); it != held_.end();) {
    bool head_begun = !it->second.conn.received.empty();
    auto limit = head_begun ? limits_.head_timeout : limits_.idle_timeout;
    if (now - it->second.since < limit) {
      ++it;
      continue;
    }
    expired.push_back({std::move(it->second.conn), head_begun});
    it = held_.erase(it);
  }
  return expired;
}

std::optional<waiting_connections::connection> waiting_connections::take_oldest_idle() {
  auto oldest = held_.end();
  for (auto it = held_.begin(); it != held_.end(); ++it)
    if (it->second.conn.received.empty() &&
        (oldest == held_.end() || it->second.since < oldest->second.since))
      oldest = it;
  if (oldest == held_.end())
    return std::nullopt;
  return take(oldest->first);
}

} // namespace emr
