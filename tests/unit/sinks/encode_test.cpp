#include "pprofd/sinks/encode.hpp"

#include "pprofd/pprof/pprof.hpp"

#include "profile.pb.h"
#include "push.pb.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <regex>
#include <set>

using namespace pprofd;

namespace {

namespace pb = perftools::profiles;

// A small valid pprof with the given sample types and `samples` samples.
std::string make_pprof(const std::vector<std::pair<std::string, std::string>>& types, int samples) {
  pb::Profile p;
  p.add_string_table("");
  auto intern = [&](const std::string& s) {
    for (int i = 0; i < p.string_table_size(); ++i)
      if (p.string_table(i) == s) return static_cast<std::int64_t>(i);
    p.add_string_table(s);
    return static_cast<std::int64_t>(p.string_table_size() - 1);
  };
  for (const auto& [t, u] : types) {
    auto* vt = p.add_sample_type();
    vt->set_type(intern(t));
    vt->set_unit(intern(u));
  }
  auto* fn = p.add_function();
  fn->set_id(1);
  fn->set_name(intern("main.work"));
  auto* loc = p.add_location();
  loc->set_id(1);
  loc->add_line()->set_function_id(1);
  for (int i = 0; i < samples; ++i) {
    auto* s = p.add_sample();
    s->add_location_id(1);
    for (std::size_t v = 0; v < types.size(); ++v) s->add_value(i + 1);
  }
  p.set_time_nanos(1'700'000'015'500'000'000);
  return pprof::gzip(pprof::encode(p));
}

model::ProfilePtr make_profile(model::ProfileKind kind, int samples = 3) {
  auto p = std::make_shared<model::Profile>();
  p->kind = kind;
  const auto name = std::string(model::info(kind).forwarded_name);
  p->labels = {{"__name__", name}, {"__delta__", "false"},        {"__session_id__", "abc"},
               {"__meta_x", "y"},  {"service_name", "shop/cart"}, {"namespace", "shop"},
               {"pod", "cart-1"},  {"instance", "10.0.0.7:6060"}};
  p->target_url = "http://10.0.0.7:6060/debug/pprof/" + name;
  if (kind == model::ProfileKind::mutex || kind == model::ProfileKind::block)
    p->sample_types = {{"contentions", "count"}, {"delay", "nanoseconds"}};
  else if (kind == model::ProfileKind::memory)
    p->sample_types = {{"alloc_objects", "count"},
                       {"alloc_space", "bytes"},
                       {"inuse_objects", "count"},
                       {"inuse_space", "bytes"}};
  else if (kind == model::ProfileKind::process_cpu)
    p->sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
  else
    p->sample_types = {{"goroutine", "count"}};
  p->gzipped = make_pprof(p->sample_types, samples);
  p->time_nanos = 1'700'000'015'500'000'000;
  p->duration_nanos = 15'000'000'000;
  p->sample_count = samples;
  return p;
}

std::map<std::string, std::string> to_map(const push::v1::RawProfileSeries& s) {
  std::map<std::string, std::string> out;
  for (const auto& l : s.labels()) out[l.name()] = l.value();
  return out;
}

struct Part {
  std::map<std::string, std::string> headers;  // lower-case names
  std::string content;
};

// An independent multipart/form-data parser (RFC 7578), so the test does not trust the encoder.
std::vector<Part> parse_multipart(const std::string& content_type, const std::string& body) {
  const std::string prefix = "multipart/form-data; boundary=";
  REQUIRE(content_type.rfind(prefix, 0) == 0);
  const std::string boundary = content_type.substr(prefix.size());
  REQUIRE(!boundary.empty());
  REQUIRE(boundary.size() <= 70);
  const std::string delim = "--" + boundary;
  REQUIRE(body.rfind(delim + "\r\n", 0) == 0);
  REQUIRE(body.size() >= delim.size() + 6);
  REQUIRE(body.substr(body.size() - delim.size() - 6) == "\r\n" + delim + "--\r\n");

  std::vector<Part> parts;
  std::size_t pos = delim.size() + 2;
  while (true) {
    const std::size_t next = body.find("\r\n" + delim, pos);
    REQUIRE(next != std::string::npos);
    const std::string raw = body.substr(pos, next - pos);
    const std::size_t header_end = raw.find("\r\n\r\n");
    REQUIRE(header_end != std::string::npos);
    Part part;
    std::size_t line_start = 0;
    while (line_start < header_end) {
      std::size_t line_end = raw.find("\r\n", line_start);
      if (line_end > header_end) line_end = header_end;
      const std::string line = raw.substr(line_start, line_end - line_start);
      const std::size_t colon = line.find(':');
      REQUIRE(colon != std::string::npos);
      std::string key = line.substr(0, colon);
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      part.headers[key] = line.substr(line.find_first_not_of(' ', colon + 1));
      line_start = line_end + 2;
    }
    part.content = raw.substr(header_end + 4);
    parts.push_back(std::move(part));
    pos = next + 2 + delim.size();
    if (body.compare(pos, 2, "--") == 0) break;
    REQUIRE(body.compare(pos, 2, "\r\n") == 0);
    pos += 2;
  }
  return parts;
}

std::string url_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_of(const std::string& target) {
  std::map<std::string, std::string> out;
  const auto q = target.find('?');
  REQUIRE(q != std::string::npos);
  std::size_t pos = q + 1;
  while (pos <= target.size()) {
    std::size_t amp = target.find('&', pos);
    if (amp == std::string::npos) amp = target.size();
    const std::string kv = target.substr(pos, amp - pos);
    const auto eq = kv.find('=');
    REQUIRE(eq != std::string::npos);
    out[kv.substr(0, eq)] = url_decode(kv.substr(eq + 1));
    pos = amp + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("forwarded labels drop __* names except __name__ and __delta__, sorted", "[encode]") {
  const auto p = make_profile(model::ProfileKind::mutex);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"__delta__", "false"}, {"__name__", "mutex"}, {"instance", "10.0.0.7:6060"},
      {"namespace", "shop"},  {"pod", "cart-1"},     {"service_name", "shop/cart"}};
  CHECK(sinks::forwarded_labels(*p) == expected);
}

TEST_CASE("push request carries one series per profile with labels, raw bytes and a UUID",
          "[encode]") {
  std::vector<model::ProfilePtr> profiles = {make_profile(model::ProfileKind::mutex, 2),
                                             make_profile(model::ProfileKind::process_cpu, 5),
                                             make_profile(model::ProfileKind::goroutine, 1)};
  const auto req = sinks::encode_push(profiles);
  CHECK(req.target == "/push.v1.PusherService/Push");
  CHECK(req.content_type == "application/proto");
  CHECK(req.headers ==
        std::vector<std::pair<std::string, std::string>>{{"Connect-Protocol-Version", "1"}});

  push::v1::PushRequest decoded;
  REQUIRE(decoded.ParseFromString(req.body));
  REQUIRE(decoded.series_size() == 3);
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const auto& series = decoded.series(i);
    CHECK(series.annotations_size() == 0);
    const auto labels = to_map(series);
    CHECK(labels.size() == 6);
    CHECK(labels.at("__name__") == std::string(model::info(profiles[i]->kind).forwarded_name));
    CHECK(labels.at("service_name") == "shop/cart");
    CHECK(labels.count("__session_id__") == 0);
    // Wire order is sorted, as Pyroscope's own clients send it.
    CHECK(series.labels(0).name() == "__delta__");
    REQUIRE(series.samples_size() == 1);
    CHECK(series.samples(0).raw_profile() == profiles[i]->gzipped);
    CHECK(std::regex_match(series.samples(0).id(), uuid));
    ids.insert(series.samples(0).id());

    const auto raw = pprof::gunzip(series.samples(0).raw_profile(), 1 << 20);
    REQUIRE(raw.has_value());
    const auto summary = pprof::inspect(*raw);
    REQUIRE(summary.has_value());
    CHECK(summary->sample_count == static_cast<std::size_t>(profiles[i]->sample_count));
  }
  CHECK(ids.size() == 3);
}

TEST_CASE("push of nothing is an empty request", "[encode]") {
  const auto req = sinks::encode_push({});
  push::v1::PushRequest decoded;
  REQUIRE(decoded.ParseFromString(req.body));
  CHECK(decoded.series_size() == 0);
}

TEST_CASE("ingest query has the normalised name, unix seconds and no format", "[encode]") {
  const auto p = make_profile(model::ProfileKind::mutex);
  const auto req = sinks::encode_ingest(*p);
  CHECK(req.target ==
        "/ingest?name=shop%2Fcart%7Binstance%3D10.0.0.7%3A6060%2Cnamespace%3Dshop%2Cpod%3Dcart-1"
        "%7D&from=1700000000&until=1700000015&spyName=pprofd");
  const auto q = query_of(req.target);
  CHECK(q.at("name") == "shop/cart{instance=10.0.0.7:6060,namespace=shop,pod=cart-1}");
  CHECK(q.count("format") == 0);
  CHECK(req.headers.empty());

  auto instant = std::make_shared<model::Profile>(*p);
  instant->duration_nanos = 0;
  const auto q2 = query_of(sinks::encode_ingest(*instant).target);
  CHECK(q2.at("from") == "1700000015");
  CHECK(q2.at("until") == "1700000015");
}

TEST_CASE("ingest name sanitises what the label-set syntax cannot carry", "[encode]") {
  auto p = std::make_shared<model::Profile>(*make_profile(model::ProfileKind::goroutine));
  p->labels = {{"__name__", "goroutine"},
               {"service_name", "my app:v2"},
               {"team-name", "a,b{c}=d"},
               {"empty", ""},
               {"zone", " eu-1 "}};
  const auto q = query_of(sinks::encode_ingest(*p).target);
  CHECK(q.at("name") == "my_app_v2{team_name=a_b_c__d,zone=eu-1}");

  p->labels.erase("service_name");
  CHECK(query_of(sinks::encode_ingest(*p).target).at("name").rfind("unknown_service{", 0) == 0);
}

TEST_CASE("ingest body is multipart with the profile and a sample_type_config", "[encode]") {
  const auto p = make_profile(model::ProfileKind::mutex);
  const auto req = sinks::encode_ingest(*p);
  const auto parts = parse_multipart(req.content_type, req.body);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].headers.at("content-disposition") ==
        "form-data; name=\"profile\"; filename=\"profile.pprof\"");
  CHECK(parts[0].headers.at("content-type") == "application/octet-stream");
  CHECK(parts[0].content == p->gzipped);
  CHECK(parts[1].headers.at("content-disposition") ==
        "form-data; name=\"sample_type_config\"; filename=\"sample_type_config.json\"");
  CHECK(parts[1].headers.at("content-type") == "application/json");

  const auto config = nlohmann::json::parse(parts[1].content);
  CHECK(config["contentions"]["display-name"] == "mutex_count");
  CHECK(config["contentions"]["units"] == "lock_samples");
  CHECK(config["delay"]["display-name"] == "mutex_duration");
  CHECK(config["delay"]["units"] == "lock_nanoseconds");

  // Two encodings of the same profile use different boundaries.
  CHECK(sinks::encode_ingest(*p).content_type != req.content_type);
}

TEST_CASE("block profiles keep their name through sample_type_config", "[encode]") {
  for (auto kind : {model::ProfileKind::block, model::ProfileKind::godeltaprof_block}) {
    auto p = std::make_shared<model::Profile>(*make_profile(model::ProfileKind::block));
    p->kind = kind;
    const auto req = sinks::encode_ingest(*p);
    const auto parts = parse_multipart(req.content_type, req.body);
    REQUIRE(parts.size() == 2);
    const auto config = nlohmann::json::parse(parts[1].content);
    CHECK(config["contentions"]["display-name"] == "block_count");
    CHECK(config["delay"]["display-name"] == "block_duration");
  }
}

TEST_CASE("sample_type_config covers every sample type of the profile", "[encode]") {
  const auto mem = make_profile(model::ProfileKind::memory);
  auto req = sinks::encode_ingest(*mem);
  auto config = nlohmann::json::parse(parse_multipart(req.content_type, req.body)[1].content);
  CHECK(config.size() == 4);
  CHECK(config["alloc_objects"]["units"] == "objects");
  CHECK(config["alloc_space"]["units"] == "bytes");
  CHECK(config["inuse_objects"]["units"] == "objects");
  CHECK(config["inuse_space"]["units"] == "bytes");
  CHECK(!config["alloc_space"].contains("display-name"));

  auto odd = std::make_shared<model::Profile>(*make_profile(model::ProfileKind::process_cpu));
  odd->sample_types.emplace_back("wall", "nanoseconds");
  req = sinks::encode_ingest(*odd);
  config = nlohmann::json::parse(parse_multipart(req.content_type, req.body)[1].content);
  CHECK(config.size() == 3);
  CHECK(config["cpu"]["units"] == "samples");
  CHECK(config["wall"]["units"] == "nanoseconds");
}

TEST_CASE("profefe query has service, type and doubly encoded labels", "[encode]") {
  auto p = std::make_shared<model::Profile>(*make_profile(model::ProfileKind::godeltaprof_memory));
  const auto req = sinks::encode_profefe(*p);
  REQUIRE(req.has_value());
  CHECK(req->target ==
        "/api/0/profiles?service=shop%2Fcart&type=heap&labels=instance%3D10.0.0.7%253A6060%2C"
        "namespace%3Dshop%2Cpod%3Dcart-1");
  CHECK(req->content_type == "application/octet-stream");
  CHECK(req->body == p->gzipped);

  // A `,` or `=` inside a value survives Profefe's split-then-unescape.
  p->labels.set("pod", "a,b=c");
  const auto labels = query_of(sinks::encode_profefe(*p)->target).at("labels");
  CHECK(labels == "instance=10.0.0.7%3A6060,namespace=shop,pod=a%2Cb%3Dc");
}

TEST_CASE("profefe skips empty profiles", "[encode]") {
  auto p = std::make_shared<model::Profile>(*make_profile(model::ProfileKind::memory));
  p->sample_count = 0;
  CHECK_FALSE(sinks::encode_profefe(*p).has_value());
}

TEST_CASE("profefe types", "[encode]") {
  using K = model::ProfileKind;
  CHECK(sinks::profefe_type(K::process_cpu) == "cpu");
  CHECK(sinks::profefe_type(K::memory) == "heap");
  CHECK(sinks::profefe_type(K::godeltaprof_memory) == "heap");
  CHECK(sinks::profefe_type(K::goroutine) == "goroutine");
  CHECK(sinks::profefe_type(K::mutex) == "mutex");
  CHECK(sinks::profefe_type(K::godeltaprof_mutex) == "mutex");
  CHECK(sinks::profefe_type(K::block) == "block");
  CHECK(sinks::profefe_type(K::godeltaprof_block) == "block");
}

TEST_CASE("error bodies are described for logs", "[encode]") {
  CHECK(sinks::describe_error_body(
            R"j({"code":"invalid_argument","message":"series has too many labels"})j") ==
        "invalid_argument: series has too many labels");
  CHECK(sinks::describe_error_body(R"j({"code":"unavailable"})j") == "unavailable");
  CHECK(sinks::describe_error_body(R"j({"code":429,"message":"rate limited"})j") ==
        "429: rate limited");
  const std::string profefe_error =
      R"j({"code":400,"error":"malformed profile (profile is empty: no samples)"})j";
  CHECK(sinks::describe_error_body(profefe_error) ==
        "malformed profile (profile is empty: no samples)");
  CHECK(sinks::describe_error_body("  upstream connect error\r\n") == "upstream connect error");
  CHECK(sinks::describe_error_body("<html>\n<b>502</b>\x01</html>") == "<html> <b>502</b>?</html>");
  CHECK(sinks::describe_error_body(R"j({"other":1})j") == R"j({"other":1})j");
  CHECK(sinks::describe_error_body("") == "");
  CHECK(sinks::describe_error_body(std::string(2000, 'x')).size() == 512);
}
