# Quantity: Parse/ParseJson/FromDouble/FromRatio never crash and round-trip through ToString.
kpiscale_add_fuzz_target(quantity SOURCE ${CMAKE_CURRENT_LIST_DIR}/quantity_fuzz.cc
                         LIBS kpiscale::common)
