#pragma once
// The profile types pprofd knows (design §3 `profiles:` keys and §5 `__name__`).

#include <array>
#include <string_view>

namespace pprofd::model {

enum class ProfileKind {
  process_cpu,
  memory,
  goroutine,
  mutex,
  block,
  godeltaprof_memory,
  godeltaprof_mutex,
  godeltaprof_block,
};

struct ProfileTypeInfo {
  ProfileKind kind;
  std::string_view name;  // config key and default `__name__`
  std::string_view
      forwarded_name;  // `__name__` sent to sinks (godeltaprof_* become their base type)
  std::string_view default_path;
  bool default_enabled;
  bool cumulative;   // counters that pprofd can turn into deltas (`delta: true`)
  bool godeltaprof;  // the target itself already serves deltas
  bool duration;     // pulled with ?seconds= (the request lasts the profile's duration)
};

inline constexpr std::array<ProfileTypeInfo, 8> profile_types{{
    {ProfileKind::process_cpu, "process_cpu", "process_cpu", "/debug/pprof/profile", true, false,
     false, true},
    {ProfileKind::memory, "memory", "memory", "/debug/pprof/allocs", true, true, false, false},
    {ProfileKind::goroutine, "goroutine", "goroutine", "/debug/pprof/goroutine", true, false, false,
     false},
    {ProfileKind::mutex, "mutex", "mutex", "/debug/pprof/mutex", true, true, false, false},
    {ProfileKind::block, "block", "block", "/debug/pprof/block", true, true, false, false},
    {ProfileKind::godeltaprof_memory, "godeltaprof_memory", "memory", "/debug/pprof/delta_heap",
     false, false, true, false},
    {ProfileKind::godeltaprof_mutex, "godeltaprof_mutex", "mutex", "/debug/pprof/delta_mutex",
     false, false, true, false},
    {ProfileKind::godeltaprof_block, "godeltaprof_block", "block", "/debug/pprof/delta_block",
     false, false, true, false},
}};

constexpr const ProfileTypeInfo& info(ProfileKind kind) {
  return profile_types[static_cast<std::size_t>(kind)];
}

constexpr const ProfileTypeInfo* find_profile_type(std::string_view name) {
  for (const auto& t : profile_types)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace pprofd::model
