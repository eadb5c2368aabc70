# CPU backend: nnc_cpu (kernels in fp32 and a double reference, the thread pool, the Philox RNG)
# and its tests. Included from the root CMakeLists.txt right after nnc_runtime is defined.
# Needs OpenBLAS (Debian: libopenblas-dev, which scripts/setup.sh installs); its cblas.h also
# declares openblas_set_num_threads, so the OpenBLAS include directory is searched first.
find_package(Threads REQUIRED)
find_library(NNC_OPENBLAS_LIB openblas)
find_path(NNC_OPENBLAS_INCLUDE cblas.h
  PATH_SUFFIXES x86_64-linux-gnu/openblas-pthread aarch64-linux-gnu/openblas-pthread openblas)
if(NOT NNC_OPENBLAS_LIB OR NOT NNC_OPENBLAS_INCLUDE)
  message(FATAL_ERROR "nnc: OpenBLAS not found (the CPU backend needs it); "
    "install libopenblas-dev or run scripts/setup.sh")
endif()

add_library(nnc_cpu STATIC
  ${CMAKE_SOURCE_DIR}/runtime/cpu/threads.c
  ${CMAKE_SOURCE_DIR}/runtime/cpu/rng.c
  ${CMAKE_SOURCE_DIR}/runtime/cpu/kernels.c
  ${CMAKE_SOURCE_DIR}/runtime/cpu/kernels_f32.c
  ${CMAKE_SOURCE_DIR}/runtime/cpu/kernels_f64.c
  ${CMAKE_SOURCE_DIR}/runtime/cpu/acc16.c)
target_include_directories(nnc_cpu PUBLIC ${CMAKE_SOURCE_DIR} ${NNC_OPENBLAS_INCLUDE})
target_link_libraries(nnc_cpu PUBLIC nnc_runtime ${NNC_OPENBLAS_LIB} Threads::Threads m)
# acc16.c (fp16-accumulation kernels) uses nnc_half, which runtime/half.cmake defines after
# this file is included; CMake resolves target names at generate time, so naming it here works.
target_link_libraries(nnc_cpu PUBLIC nnc_half)
# -O3 lets GCC vectorize the elementwise, pooling and depthwise loops (its -O2 cost model
# mostly does not). Results are unchanged: without -ffast-math no floating-point sum is
# reassociated. Debug builds (the sanitizer runs) keep their own flags.
target_compile_options(nnc_cpu PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O3>)
# One test binary, one CTest entry per group (all named cpu_*, so `ctest -R cpu` runs them).
enable_testing()
add_executable(test_cpu_kernels ${CMAKE_SOURCE_DIR}/runtime/cpu/test_kernels.c)
target_link_libraries(test_cpu_kernels PRIVATE nnc_cpu)
foreach(group rng reference gradcheck precision optim determinism workspace)
  add_test(NAME cpu_${group} COMMAND test_cpu_kernels ${group})
  set_tests_properties(cpu_${group} PROPERTIES TIMEOUT 60)
endforeach()
# The fp16-accumulation kernels (acc16.h): rounding, bit-exact references, the fp16 model,
# thread determinism and the error bound against f32 (about 1 s). `test_acc16 all` also checks
# the rounding on all 2^32 floats (not registered).
add_executable(test_acc16 ${CMAKE_SOURCE_DIR}/runtime/cpu/test_acc16.c)
target_link_libraries(test_acc16 PRIVATE nnc_cpu nnc_half m)
add_test(NAME cpu_acc16 COMMAND test_acc16)
set_tests_properties(cpu_acc16 PROPERTIES TIMEOUT 60)
