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
# oneDNN (Debian: libdnnl-dev, which scripts/setup.sh installs) runs the f32 convolutions
# (runtime/cpu/conv_dnnl.c); without it, or with -DNNC_DNNL=OFF (the static device binaries:
# Debian has no static libdnnl), the im2col kernels do. Its OpenMP threads follow the thread
# count nnc is given.
option(NNC_DNNL "convolutions through oneDNN when libdnnl is found" ON)
if(NNC_DNNL)
  find_library(NNC_DNNL_LIB dnnl)
  find_path(NNC_DNNL_INCLUDE dnnl.h PATH_SUFFIXES oneapi/dnnl)
  # omp.h and libgomp (for omp_set_num_threads: Debian's libdnnl runs on GCC's OpenMP) are
  # GCC's, also when clang compiles (the sanitizer builds)
  execute_process(COMMAND gcc -print-file-name=include OUTPUT_VARIABLE NNC_GCC_INCLUDE
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND gcc -print-file-name=libgomp.so OUTPUT_VARIABLE NNC_GCC_GOMP
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  find_path(NNC_OMP_INCLUDE omp.h PATHS ${NNC_GCC_INCLUDE} NO_DEFAULT_PATH)
  if(EXISTS "${NNC_GCC_GOMP}")
    set(NNC_GOMP_LIB "${NNC_GCC_GOMP}")
  endif()
endif()
if(NNC_DNNL AND NNC_DNNL_LIB AND NNC_DNNL_INCLUDE AND NNC_GOMP_LIB AND NNC_OMP_INCLUDE)
  target_sources(nnc_cpu PRIVATE ${CMAKE_SOURCE_DIR}/runtime/cpu/conv_dnnl.c)
  target_include_directories(nnc_cpu PRIVATE ${NNC_DNNL_INCLUDE} ${NNC_OMP_INCLUDE})
  target_compile_definitions(nnc_cpu PUBLIC NNC_HAVE_DNNL)
  target_link_libraries(nnc_cpu PUBLIC ${NNC_DNNL_LIB} ${NNC_GOMP_LIB})
  # the thread pool becomes OpenMP's team, the one oneDNN runs on (threads.c)
  set_source_files_properties(${CMAKE_SOURCE_DIR}/runtime/cpu/threads.c PROPERTIES COMPILE_OPTIONS -fopenmp)
  message(STATUS "nnc: f32 convolutions through oneDNN (${NNC_DNNL_LIB})")
else()
  message(STATUS "nnc: no oneDNN (libdnnl-dev); f32 convolutions through im2col and OpenBLAS")
endif()
# Its tests are in tests/cpu/ (registered by tests/CMakeLists.txt).
