#include "validate.hpp"

#include "pprofd/config/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace pprofd::config {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_ipv4(std::string_view host) {
  in_addr addr{};
  return inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
}

bool is_ipv6(std::string_view host) {
  // A zone (fe80::1%eth0) is legal in an address but inet_pton does not take it.
  const std::size_t zone = host.find('%');
  if (zone != std::string_view::npos) {
    if (zone + 1 == host.size()) return false;
    host = host.substr(0, zone);
  }
  in6_addr addr{};
  return inet_pton(AF_INET6, std::string(host).c_str(), &addr) == 1;
}

std::optional<HostPort> fail(std::string* why, std::string message) {
  if (why != nullptr) *why = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<HostPort> parse_host_port(std::string_view address, std::string* why,
                                        bool allow_port_zero) {
  if (address.empty()) return fail(why, "empty address (expected host:port)");
  if (std::any_of(address.begin(), address.end(), is_space))
    return fail(why, "must not contain spaces");
  if (address.find("://") != std::string_view::npos)
    return fail(why, "must be host:port without a scheme");
  if (address.find('/') != std::string_view::npos)
    return fail(why, "must be host:port without a path");

  std::string_view host;
  std::string_view port;
  if (address.front() == '[') {
    const std::size_t close = address.find(']');
    if (close == std::string_view::npos) return fail(why, "missing \"]\" after IPv6 address");
    host = address.substr(1, close - 1);
    const std::string_view rest = address.substr(close + 1);
    if (rest.empty()) return fail(why, "missing port (expected [ipv6]:port)");
    if (rest.front() != ':') return fail(why, "unexpected text after \"]\" (expected [ipv6]:port)");
    port = rest.substr(1);
    if (!is_ipv6(host)) return fail(why, "invalid IPv6 address \"" + std::string(host) + "\"");
  } else {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return fail(why, "missing port (expected host:port)");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return fail(why, "IPv6 addresses must be in brackets, e.g. [::1]:6060");
    if (host.empty()) return fail(why, "missing host (expected host:port)");
    if (auto problem = detail::check_host(host)) return fail(why, *problem);
  }

  if (port.empty()) return fail(why, "missing port (expected host:port)");
  const char* range = allow_port_zero ? "0-65535" : "1-65535";
  if (!std::all_of(port.begin(), port.end(), is_digit))
    return fail(why, std::string("port must be a number ") + range);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || ptr != port.data() + port.size() || value > 65535 ||
      (value == 0 && !allow_port_zero))
    return fail(why, std::string("port must be ") + range);
  return HostPort{std::string(host), static_cast<std::uint16_t>(value)};
}

namespace detail {

std::optional<std::string> check_host(std::string_view host) {
  const std::string quoted = "\"" + std::string(host) + "\"";
  if (host.empty()) return "missing host";
  if (std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; })) {
    if (!is_ipv4(host)) return "invalid IPv4 address " + quoted;
    return std::nullopt;
  }
  // One trailing dot is a fully qualified name.
  if (host.back() == '.') host.remove_suffix(1);
  if (host.size() > 253) return "host name " + quoted + " is longer than 253 characters";
  while (true) {
    const std::size_t dot = host.find('.');
    const std::string_view label = host.substr(0, dot);
    if (label.empty() || label.size() > 63)
      return "invalid host name " + quoted + " (empty or over-long part)";
    if (label.front() == '-' || label.back() == '-')
      return "invalid host name " + quoted + " (a part starts or ends with \"-\")";
    for (char c : label)
      if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
        return "invalid host name " + quoted + " (unexpected character '" + std::string(1, c) +
               "')";
    if (dot == std::string_view::npos) return std::nullopt;
    host.remove_prefix(dot + 1);
  }
}

std::optional<std::string> check_http_url(std::string_view url) {
  if (url.empty()) return "must not be empty";
  if (std::any_of(url.begin(), url.end(), is_space)) return "must not contain spaces";
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "must start with http:// or https://";
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return "scheme \"" + std::string(scheme) + "\" is not supported (use http or https)";
  std::string_view authority = url.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  if (authority.empty()) return "missing host in \"" + std::string(url) + "\"";

  const bool bracketed = authority.front() == '[';
  const std::size_t close = bracketed ? authority.find(']') : 0;
  const bool has_port = bracketed
                            ? (close != std::string_view::npos && close + 1 < authority.size())
                            : authority.find(':') != std::string_view::npos;
  if (has_port) {
    std::string why;
    if (!parse_host_port(authority, &why)) return why;
    return std::nullopt;
  }
  if (bracketed) {
    if (close == std::string_view::npos || !is_ipv6(authority.substr(1, close - 1)))
      return "invalid IPv6 address \"" + std::string(authority) + "\"";
    return std::nullopt;
  }
  return check_host(authority);
}

std::optional<std::string> check_label_name(std::string_view name) {
  const std::string quoted = "\"" + std::string(name) + "\"";
  bool ok = !name.empty() && !is_digit(name.front());
  for (char c : name) ok = ok && (is_alpha(c) || is_digit(c) || c == '_');
  if (!ok) return "invalid label name " + quoted + ": must match [a-zA-Z_][a-zA-Z0-9_]*";
  if (name.starts_with("__"))
    return "invalid label name " + quoted + ": names starting with \"__\" are reserved";
  return std::nullopt;
}

std::optional<std::string> check_header_name(std::string_view name) {
  constexpr std::string_view token_punct = "!#$%&'*+-.^_`|~";
  bool ok = !name.empty();
  for (char c : name)
    ok = ok && (is_alpha(c) || is_digit(c) || token_punct.find(c) != std::string_view::npos);
  if (!ok) return "invalid HTTP header name \"" + std::string(name) + "\"";
  return std::nullopt;
}

std::optional<std::string> check_namespace(std::string_view name) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c); };
  bool ok =
      !name.empty() && name.size() <= 63 && lower_alnum(name.front()) && lower_alnum(name.back());
  for (char c : name) ok = ok && (lower_alnum(c) || c == '-');
  if (!ok)
    return "invalid namespace name \"" + std::string(name) +
           "\": must be lower-case letters, digits and \"-\", at most 63 characters";
  return std::nullopt;
}

}  // namespace detail
}  // namespace pprofd::config
