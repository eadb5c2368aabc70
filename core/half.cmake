# IEEE 754 binary16 (fp16): the library nnc_half (core/half.c: scalar and bulk conversions,
# F16C fast paths picked at run time, in-place rounding, classification counters) and its tests
# (tests/half/test_half.c). Included from the root CMakeLists.txt after nnc_core is defined.
#   half      known values, all 65536 halves, a structured 2^24.3-float set against an
#             independent oracle, F16C vs portable bit for bit on that set and on a dense
#             2^26 sample of all floats, bulk tails, classification (~1 s; ~2 s sanitized)
#   half_all  the same, then F16C vs portable on all 2^32 floats (~6.5 s); skips (77) without
#             F16C; not registered in the sanitizer build, where it takes ~20 s and finds
#             nothing the sampled run under the sanitizers does not
add_library(nnc_half STATIC ${CMAKE_SOURCE_DIR}/core/half.c)
target_link_libraries(nnc_half PUBLIC nnc_core)

add_executable(test_half ${CMAKE_SOURCE_DIR}/tests/half/test_half.c)
target_link_libraries(test_half PRIVATE nnc_half m)
add_test(NAME half COMMAND test_half)
set_tests_properties(half PROPERTIES LABELS half TIMEOUT 60)
if(NOT NNC_SANITIZE)
  add_test(NAME half_all COMMAND test_half --all)
  set_tests_properties(half_all PROPERTIES LABELS half SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
#   sround    stochastic rounding to fp16 (runtime/sround.h, shared with the GPU's update
#             kernels): neighbours only, the exact chance of rounding up, unbiased means
add_executable(test_sround ${CMAKE_SOURCE_DIR}/tests/half/test_sround.c)
target_include_directories(test_sround PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(test_sround PRIVATE nnc_half m)
add_test(NAME sround COMMAND test_sround)
set_tests_properties(sround PROPERTIES LABELS half TIMEOUT 60)
