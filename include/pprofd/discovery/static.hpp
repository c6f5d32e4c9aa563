#pragma once
// Static targets from the config, as target groups (source "static/<index>").

#include "pprofd/config/config.hpp"
#include "pprofd/model/target.hpp"

#include <vector>

namespace pprofd::discovery {

// The enabled profile types of the config, as what a target pulls.
std::vector<model::TargetProfile> default_profiles(const config::Config& config);

// One group per `discovery.static` entry. Each target gets the entry's labels, `instance` set to
// its address and `service_name` defaulting to "unknown_service". When the previous config had
// more entries, the surplus sources are returned as empty groups so the manager removes them.
std::vector<model::TargetGroup> static_target_groups(const config::Config& config,
                                                     std::size_t previous_group_count = 0);

}  // namespace pprofd::discovery
