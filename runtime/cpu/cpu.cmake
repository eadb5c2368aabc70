# CPU backend: nnc_cpu (kernels in fp32 and a double reference, the thread pool, the Philox RNG);
# its tests are in tests/cpu/. Included from the root CMakeLists.txt after nnc_runtime is defined.
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
# acc16.c (fp16-accumulation kernels) uses nnc_half (core/half.cmake).
target_link_libraries(nnc_cpu PUBLIC nnc_half)
# -O3 lets GCC vectorize the elementwise, pooling and depthwise loops (its -O2 cost model
# mostly does not). Results are unchanged: without -ffast-math no floating-point sum is
# reassociated. Debug builds (the sanitizer runs) keep their own flags.
target_compile_options(nnc_cpu PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O3>)
# Its tests are in tests/cpu/ (registered by tests/CMakeLists.txt).
