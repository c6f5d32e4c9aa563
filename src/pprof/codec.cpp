#include "pprofd/pprof/pprof.hpp"

#include "profile.pb.h"

#include <climits>

namespace pprofd::pprof {

Result<perftools::profiles::Profile> decode(std::string_view raw) {
  if (raw.size() > static_cast<std::size_t>(INT_MAX)) {
    return make_error("pprof: profile larger than 2 GiB");
  }
  perftools::profiles::Profile profile;
  if (!profile.ParseFromArray(raw.data(), static_cast<int>(raw.size()))) {
    return make_error("pprof: not a valid profile.proto message");
  }
  return profile;
}

std::string encode(const perftools::profiles::Profile& profile) {
  return profile.SerializeAsString();
}

}  // namespace pprofd::pprof
