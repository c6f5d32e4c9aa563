#include "pprofd/discovery/static.hpp"

namespace pprofd::discovery {

std::vector<model::TargetProfile> default_profiles(const config::Config& config) {
  std::vector<model::TargetProfile> out;
  for (const auto& profile : config.profiles)
    if (profile.enabled) out.push_back({profile.kind, profile.path});
  return out;
}

std::vector<model::TargetGroup> static_target_groups(const config::Config& config,
                                                     std::size_t previous_group_count) {
  const auto profiles = default_profiles(config);
  std::vector<model::TargetGroup> groups;
  const std::size_t count = std::max(config.static_configs.size(), previous_group_count);
  for (std::size_t i = 0; i < count; ++i) {
    model::TargetGroup group{"static/" + std::to_string(i), {}};
    if (i < config.static_configs.size()) {
      const auto& entry = config.static_configs[i];
      for (const auto& address : entry.targets) {
        model::Target target;
        target.scheme = entry.scheme;
        target.address = address;
        target.labels = entry.labels;
        target.labels.set_if_absent(model::label_instance, address);
        target.labels.set_if_absent(model::label_service_name, "unknown_service");
        target.profiles = profiles;
        group.targets.push_back(std::move(target));
      }
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

}  // namespace pprofd::discovery
