#pragma once
// Expected failures are values: functions that can fail on their input return Result<T>.

#include <boost/system/result.hpp>

#include <string>
#include <utility>

namespace pprofd {

// Not constructible from a string on purpose: Result<std::string> must stay unambiguous.
struct Error {
  Error() = default;
  std::string message;
};

inline Error make_error(std::string message) {
  Error e;
  e.message = std::move(message);
  return e;
}

// Found by ADL when Result<T>::value() is called on an error; that is a programming bug.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace pprofd
