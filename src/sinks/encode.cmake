target_sources(pprofd_sinks PRIVATE ${CMAKE_CURRENT_LIST_DIR}/encode.cpp)
target_link_libraries(pprofd_sinks PUBLIC pprofd_proto pprofd_pprof)
