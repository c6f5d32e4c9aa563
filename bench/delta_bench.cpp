// Cost of one cumulative profile through pprofd's delta path, stage by stage:
//   gunzip -> inspect (the scrape-time validation) -> DeltaComputer::apply -> gzip -1.
//
//   delta_bench DIR [--min-seconds S]
//
// A second table compares gzip levels on the medium delta output (CPU against bytes sent).
//
// DIR holds <size>-base.pb.gz and <size>-next.pb.gz pairs written by bench/gen (two consecutive
// real Go allocs profiles of one process). Every stage is timed with CLOCK_THREAD_CPUTIME_ID
// (CPU time of this thread: no scheduler noise from other processes) and the median over the
// iterations is printed as a markdown table.
//
// apply() is measured in steady state: a computer is seeded once with the baseline profile, and
// every iteration applies the second profile to a fresh copy of that seeded computer (the copy
// is made outside the timed region). So each timed call does exactly what a scrape does in
// production: diff against a baseline of the same size and emit a delta. Alternating the two
// profiles instead would make every other call a `reset` (counters going down), which is not
// the common path.

#include "pprofd/pprof/delta.hpp"
#include "pprofd/pprof/pprof.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace pp = pprofd::pprof;

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "delta_bench: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "delta_bench: %s\n", what.c_str());
  std::exit(1);
}

// Runs `setup` (untimed) then `body` (timed) until both at least min_iterations ran and
// min_seconds of CPU time were spent in `body`; returns the median of the timed runs in µs.
double median_us(double min_seconds, const std::function<void()>& setup,
                 const std::function<void()>& body) {
  constexpr std::size_t min_iterations = 15;
  constexpr std::size_t max_iterations = 20000;
  std::vector<double> samples;
  double spent = 0;
  while (samples.size() < max_iterations &&
         (samples.size() < min_iterations || spent < min_seconds * 1e6)) {
    setup();
    const double start = thread_cpu_us();
    body();
    const double took = thread_cpu_us() - start;
    samples.push_back(took);
    spent += took;
  }
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(samples.size() / 2),
                   samples.end());
  return samples[samples.size() / 2];
}

std::string fmt_us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, us < 100 ? "%.1f" : "%.0f", us);
  return buf;
}

std::string fmt_kb(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(bytes) / 1000.0);
  return buf;
}

template <class T>
T must(pprofd::Result<T> r, const std::string& what) {
  if (!r) fail(what + ": " + r.error().message);
  return std::move(*r);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: delta_bench DIR [--min-seconds S]\n");
    return 2;
  }
  const std::string dir = argv[1];
  double min_seconds = 1.0;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string_view(argv[i]) == "--min-seconds") min_seconds = std::atof(argv[i + 1]);
  }
  constexpr std::size_t limit = std::size_t{1} << 30;

  std::printf(
      "| profile | gzipped | uncompressed | samples | delta samples | delta out | gunzip µs | "
      "inspect µs | apply µs | gzip -1 µs | total µs | baseline state |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const char* size : {"small", "medium", "large"}) {
    const std::string base_gz = read_file(dir + "/" + size + "-base.pb.gz");
    const std::string next_gz = read_file(dir + "/" + size + "-next.pb.gz");
    const std::string base = must(pp::gunzip(base_gz, limit), "gunzip base");
    const std::string next = must(pp::gunzip(next_gz, limit), "gunzip next");
    const pp::Summary summary = must(pp::inspect(next), "inspect next");

    pp::DeltaComputer seeded;
    if (must(seeded.apply(base), "apply base").status != pp::DeltaStatus::first) {
      fail("baseline was not taken as the first profile");
    }
    pp::DeltaComputer probe = seeded;
    const pp::DeltaOutput delta = must(probe.apply(next), "apply next");
    if (delta.status != pp::DeltaStatus::emitted) fail(std::string(size) + ": no delta emitted");
    const pp::Summary delta_summary = must(pp::inspect(delta.profile), "inspect delta");
    const std::string delta_gz = pp::gzip(delta.profile, 1);

    const auto nothing = [] {};
    std::size_t keep = 0;  // results feed this so no call can be optimised away
    const double t_gunzip = median_us(min_seconds, nothing,
                                      [&] { keep += must(pp::gunzip(next_gz, limit), "").size(); });
    const double t_inspect =
        median_us(min_seconds, nothing, [&] { keep += must(pp::inspect(next), "").sample_count; });
    pp::DeltaComputer work;
    const double t_apply = median_us(
        min_seconds, [&] { work = seeded; },
        [&] { keep += must(work.apply(next), "").profile.size(); });
    const double t_gzip =
        median_us(min_seconds, nothing, [&] { keep += pp::gzip(delta.profile, 1).size(); });
    const double t_total = median_us(
        min_seconds, [&] { work = seeded; },
        [&] {
          const std::string raw = must(pp::gunzip(next_gz, limit), "");
          keep += must(pp::inspect(raw), "").sample_count;
          keep += pp::gzip(must(work.apply(raw), "").profile, 1).size();
        });
    if (keep == 0) fail("nothing measured");

    std::printf("| %s | %s | %s | %zu | %zu | %s | %s | %s | %s | %s | %s | %s |\n", size,
                fmt_kb(next_gz.size()).c_str(), fmt_kb(next.size()).c_str(), summary.sample_count,
                delta_summary.sample_count, fmt_kb(delta_gz.size()).c_str(),
                fmt_us(t_gunzip).c_str(), fmt_us(t_inspect).c_str(), fmt_us(t_apply).c_str(),
                fmt_us(t_gzip).c_str(), fmt_us(t_total).c_str(),
                fmt_kb(seeded.state_bytes()).c_str());
    std::fflush(stdout);
  }

  // Which gzip level the delta output should get: CPU against bytes on the wire to the sink.
  {
    const std::string base = must(pp::gunzip(read_file(dir + "/medium-base.pb.gz"), limit), "");
    const std::string next = must(pp::gunzip(read_file(dir + "/medium-next.pb.gz"), limit), "");
    pp::DeltaComputer d;
    must(d.apply(base), "apply base");
    const std::string delta = must(d.apply(next), "apply next").profile;
    std::printf("\nmedium delta output, %s uncompressed:\n\n| gzip level | µs | bytes | ratio |\n",
                fmt_kb(delta.size()).c_str());
    std::printf("|---:|---:|---:|---:|\n");
    std::size_t keep = 0;
    for (int level : {1, 2, 4, 6, 9}) {
      const std::size_t bytes = pp::gzip(delta, level).size();
      const double t = median_us(
          min_seconds, [] {}, [&] { keep += pp::gzip(delta, level).size(); });
      std::printf("| %d | %s | %s | %.1f× |\n", level, fmt_us(t).c_str(), fmt_kb(bytes).c_str(),
                  static_cast<double>(delta.size()) / static_cast<double>(bytes));
    }
    if (keep == 0) fail("nothing measured");
  }
  return 0;
}
