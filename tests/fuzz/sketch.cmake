# LatencySketch: hostile wire sketches (FromProto) and random Add/Merge/Clear sequences.
kpiscale_add_fuzz_target(sketch SOURCE ${CMAKE_CURRENT_LIST_DIR}/sketch_fuzz.cc
                         LIBS kpiscale::common)
