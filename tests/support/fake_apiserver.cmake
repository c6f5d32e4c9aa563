# Self-test of the fake Kubernetes API server used by pprofd's discovery tests.
# Included from tests/CMakeLists.txt (which does find_package(Python3 ... Interpreter)).
# Optional real-client checks run when `kubectl` / the Python `kubernetes` package are
# installed (Debian: kubernetes-client, python3-kubernetes); otherwise they are skipped.
add_test(NAME fake_apiserver_selftest
         COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/support/test_fake_apiserver.py -v)
set_tests_properties(fake_apiserver_selftest PROPERTIES TIMEOUT 180 LABELS integration)
