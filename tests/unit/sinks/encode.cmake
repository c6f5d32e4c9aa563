target_sources(unit_sinks PRIVATE ${CMAKE_CURRENT_LIST_DIR}/encode_test.cpp)
