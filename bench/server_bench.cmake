# The server benchmarks: tshare-bench (the load generator, installed), cq_server (a minimal
# completion-queue server of tshare.v1.Shares/Get, the baseline for tshared's callback
# server), their unit tests, and the bench/compare.sh smoke test.

# etcd's KV and Watch API (the subset tshare-bench uses), only for the benchmark.
set(etcd_gen_dir "${CMAKE_CURRENT_BINARY_DIR}/etcd_gen")
set(etcd_proto_dir "${CMAKE_CURRENT_SOURCE_DIR}/etcd")
file(MAKE_DIRECTORY "${etcd_gen_dir}")
set(etcd_generated
  "${etcd_gen_dir}/mvccpb/kv.pb.cc" "${etcd_gen_dir}/mvccpb/kv.pb.h"
  "${etcd_gen_dir}/etcdserverpb/rpc.pb.cc" "${etcd_gen_dir}/etcdserverpb/rpc.pb.h"
  "${etcd_gen_dir}/etcdserverpb/rpc.grpc.pb.cc" "${etcd_gen_dir}/etcdserverpb/rpc.grpc.pb.h")
add_custom_command(
  OUTPUT ${etcd_generated}
  COMMAND protobuf::protoc
  ARGS --cpp_out "${etcd_gen_dir}" --grpc_out "${etcd_gen_dir}"
       --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
       -I "${etcd_proto_dir}" mvccpb/kv.proto etcdserverpb/rpc.proto
  WORKING_DIRECTORY "${etcd_proto_dir}"
  DEPENDS "${etcd_proto_dir}/mvccpb/kv.proto" "${etcd_proto_dir}/etcdserverpb/rpc.proto"
          protobuf::protoc gRPC::grpc_cpp_plugin
  COMMENT "Generating etcd's KV and Watch messages and stubs (benchmark only)")
add_library(tshare_bench_etcd_proto STATIC ${etcd_generated})
target_include_directories(tshare_bench_etcd_proto PUBLIC "${etcd_gen_dir}")
target_link_libraries(tshare_bench_etcd_proto PUBLIC protobuf::libprotobuf gRPC::grpc++)

add_library(tshare_bench_resp STATIC resp.cc)
target_include_directories(tshare_bench_resp PUBLIC "${PROJECT_SOURCE_DIR}")
target_link_libraries(tshare_bench_resp PUBLIC absl::status absl::statusor absl::strings)

add_executable(tshare-bench tshare_bench.cc)
target_include_directories(tshare-bench PRIVATE "${PROJECT_SOURCE_DIR}")
target_link_libraries(tshare-bench PRIVATE
  tshare::proto tshare_bench_etcd_proto tshare_bench_resp gRPC::grpc++
  absl::flags absl::flags_parse absl::flags_usage absl::status absl::statusor
  absl::strings absl::str_format absl::time nlohmann_json::nlohmann_json Threads::Threads)
install(TARGETS tshare-bench RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")

add_executable(cq_server cq_server.cc)
target_include_directories(cq_server PRIVATE "${PROJECT_SOURCE_DIR}")
target_link_libraries(cq_server PRIVATE
  tshare::proto gRPC::grpc++ absl::flags absl::flags_parse absl::flags_usage
  absl::flat_hash_map absl::synchronization absl::strings Threads::Threads)

if(TSHARE_BUILD_TESTS)
  tshare_cc_test(NAME bench_histogram_test SRCS histogram_test.cc DEPS absl::strings
                 LABELS bench)
  tshare_cc_test(NAME bench_resp_test SRCS resp_test.cc DEPS tshare_bench_resp LABELS bench)
  # compare.sh end to end, once, with tiny durations and sizes: proves the tools and the
  # script work against tshared, cq_server, etcd and Redis; asserts no speed.
  add_test(NAME bench_compare_smoke
    COMMAND "${CMAKE_CURRENT_SOURCE_DIR}/compare.sh" --smoke
            --tshared "$<TARGET_FILE:tshared>"
            --bench "$<TARGET_FILE:tshare-bench>"
            --cq-server "$<TARGET_FILE:cq_server>")
  set_tests_properties(bench_compare_smoke PROPERTIES LABELS "bench" TIMEOUT 900
                       RUN_SERIAL TRUE SKIP_RETURN_CODE 77)
endif()
