#pragma once
// Value checks shared by the config sections. Each returns the problem, or nullopt when valid.

#include <optional>
#include <string>
#include <string_view>

namespace pprofd::config::detail {

// A hostname, or an IPv4 address when the text is only digits and dots.
std::optional<std::string> check_host(std::string_view host);
// Loose: scheme http or https, a valid host, optional port; path and query are not inspected.
std::optional<std::string> check_http_url(std::string_view url);
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved for pprofd's own labels).
std::optional<std::string> check_label_name(std::string_view name);
// An HTTP token (RFC 9110 §5.6.2).
std::optional<std::string> check_header_name(std::string_view name);
// A DNS-1123 label, as Kubernetes requires for namespace names.
std::optional<std::string> check_namespace(std::string_view name);

}  // namespace pprofd::config::detail
