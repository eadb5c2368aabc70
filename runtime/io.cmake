# nnc_io: safetensors files and training checkpoints (runtime/safetensors.c,
# runtime/checkpoint.c), a run's locks and metrics file (runtime/runfiles.c), and their tests in
# tests/io/. Included from the root CMakeLists.txt
# after nnc_runtime is defined. Tests:
#   io_safetensors  writer/reader round trips, hand-built reference files, every error path
#   io_checkpoint   SHA-256 vectors, round trip, corruption, version/plan/shape checks, atomicity
#   io_python       an independent Python (struct + json + hashlib) reader and writer agree
#                   with ours, byte for byte; registered only where /usr/bin/python3 exists
#   io_torch        the same through torch.frombuffer; skips (77) where torch is not installed
#
# Libraries (Debian packages, scripts/setup.sh): nettle (nettle-dev) hashes checkpoints, jansson
# (libjansson-dev) parses safetensors headers. NNC_NETTLE_LIB and NNC_JANSSON_LIB may name the
# static archives (scripts/device-pack.sh does).
find_library(NNC_NETTLE_LIB nettle)
find_path(NNC_NETTLE_INCLUDE nettle/sha2.h)
if(NOT NNC_NETTLE_LIB OR NOT NNC_NETTLE_INCLUDE)
  message(FATAL_ERROR "nnc: nettle not found (SHA-256 of checkpoints): apt-get install nettle-dev, "
    "or run scripts/setup.sh")
endif()
find_library(NNC_JANSSON_LIB jansson)
find_path(NNC_JANSSON_INCLUDE jansson.h)
if(NOT NNC_JANSSON_LIB OR NOT NNC_JANSSON_INCLUDE)
  message(FATAL_ERROR "nnc: jansson not found (safetensors headers): apt-get install "
    "libjansson-dev, or run scripts/setup.sh")
endif()

add_library(nnc_io STATIC
  ${CMAKE_SOURCE_DIR}/runtime/safetensors.c
  ${CMAKE_SOURCE_DIR}/runtime/checkpoint.c
  ${CMAKE_SOURCE_DIR}/runtime/runfiles.c)
target_include_directories(nnc_io PUBLIC ${NNC_NETTLE_INCLUDE} PRIVATE ${NNC_JANSSON_INCLUDE})
target_link_libraries(nnc_io PUBLIC nnc_runtime ${NNC_NETTLE_LIB} ${NNC_JANSSON_LIB})

add_executable(test_io_safetensors ${CMAKE_SOURCE_DIR}/tests/io/test_safetensors.c)
target_link_libraries(test_io_safetensors PRIVATE nnc_io)
add_test(NAME io_safetensors COMMAND test_io_safetensors)

add_executable(test_io_checkpoint ${CMAKE_SOURCE_DIR}/tests/io/test_checkpoint.c)
target_link_libraries(test_io_checkpoint PRIVATE nnc_io)
add_test(NAME io_checkpoint COMMAND test_io_checkpoint)

add_executable(io_tool ${CMAKE_SOURCE_DIR}/tests/io/io_tool.c)
target_link_libraries(io_tool PRIVATE nnc_io nnc_half m)
if(EXISTS /usr/bin/python3)
  add_test(NAME io_python
    COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/io/crosscheck.py $<TARGET_FILE:io_tool>)
  add_test(NAME io_torch
    COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/io/crosscheck.py --torch $<TARGET_FILE:io_tool>)
  set_tests_properties(io_torch PROPERTIES SKIP_RETURN_CODE 77)
endif()

# The reader under libFuzzer (tests/fuzz/fuzz_safetensors.c, scripts/fuzz.sh safetensors).
if(NNC_FUZZ)
  add_executable(fuzz_safetensors ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_safetensors.c)
  target_compile_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer)
  target_include_directories(fuzz_safetensors PRIVATE ${NNC_JANSSON_INCLUDE})
  target_link_libraries(fuzz_safetensors PRIVATE nnc_io)
endif()
