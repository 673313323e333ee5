# LabelSelector: Parse and FromJson never crash; ToString round-trips; Matches is consistent.
kpiscale_add_fuzz_target(label_selector SOURCE ${CMAKE_CURRENT_LIST_DIR}/label_selector_fuzz.cc
                         LIBS kpiscale::common)
